# tests/nested/lib.sh — the check helpers of the nested test scripts (busybox sh), sourced from
# the job folder (scripts/test copies it there beside the binaries).
pass=0; fail=0
ok()     { pass=$((pass+1)); echo "ok - $*"; }
not_ok() { fail=$((fail+1)); echo "not ok - $*"; }
check()  { name=$1; shift; if "$@"; then ok "$name"; else not_ok "$name"; fi; }
has()    { case "$1" in *"$2"*) return 0;; esac; return 1; }       # has TEXT SUBSTRING
# val TEXT KEY: what follows "KEY " on the last line that has it, at the line's start or after
# a character that cannot be part of a key: a kernel console line printed at the same moment
# can land in front of a guest's marker (guests under load boot without 'quiet').
val()    { echo "$1" | sed -nE "s/^(.*[^A-Za-z0-9_-])?$2 //p" | tail -n1; }
# after_init TEXT: a guest's console from its init on (the boot log before it holds the
# harness's XSAVE warning with a call trace, docs/testing.md; oops checks look after it)
after_init() { echo "$1" | sed -n '/PTVMM-INIT-START/,$p'; }

# The kernel command line of guests under load: no 'quiet' (a dying guest's last words reach
# its log), an oops panics (panic=-1 then reboots: ptvmm exits and the results are missing),
# and an NMI panics with a backtrace: `vm` sends ptvmm SIGUSR1 (an NMI into every vCPU) when a
# guest outlives its time limit, so a hung guest says where it hangs.
GUEST_CMDLINE='console=ttyS0 reboot=k panic=-1 oops=panic unknown_nmi_panic=1'

# claim_cpus N: sets PINS to N L1 CPUs for a guest's vCPUs, each vCPU thread then pinned
# (ptvmm --pin-vcpus): an L2 guest whose vCPU thread L1 migrates between its CPUs under load
# triple-faults in this harness (QEMU TCG's emulated SVM; docs/testing.md), whatever the VMM.
# CPUs 1.. are taken first (CPU 0 is left to the rest), each claimed by an atomic mkdir so that
# guests started at the same time never share one; when all are taken they are shared.
# release_cpus gives back the claims (CLAIMED).
claim_cpus() {
  _n=$(nproc); PINS= CLAIMED=; _k=0
  for _round in claim share; do
    if [ "$_n" -gt 1 ]; then _c=1; else _c=0; fi
    while [ $_c -lt "$_n" ] && [ $_k -lt "$1" ]; do
      if [ $_round = share ]; then
        PINS="$PINS${PINS:+,}$_c"; _k=$((_k + 1))
      elif mkdir "/tmp/.vcpu-on-cpu$_c" 2>/dev/null; then
        PINS="$PINS${PINS:+,}$_c"; CLAIMED="$CLAIMED $_c"; _k=$((_k + 1))
      fi
      _c=$((_c + 1))
    done
  done
}
release_cpus() { for _c in $CLAIMED; do rmdir "/tmp/.vcpu-on-cpu$_c" 2>/dev/null; done; CLAIMED=; }

# vm SECONDS VCPUS ARGS...: ./ptvmm --cpus VCPUS ARGS, its vCPUs pinned (claim_cpus), with a time
# limit: SIGUSR1 at the limit (the NMI above; the panic then ends the guest), SIGKILL 30 s later.
# A guest that outlived its limit makes vm print a line saying so and return 124, whatever
# ptvmm's own status (the NMI's panic reboots the guest, and a reboot is status 0).
# Run in the background (`vm ... &`), `kill $!` reaches ptvmm: the TERM is forwarded.
vm() {
  _t=$1 _v=$2; shift 2; _s=$(date +%s)
  claim_cpus "$_v"
  timeout -s USR1 -k 30 "$_t" ./ptvmm --cpus "$_v" --pin-vcpus "$PINS" "$@" &
  _p=$!
  trap 'kill $_p 2>/dev/null' TERM
  wait $_p; _rc=$?
  # A TERM interrupts the first wait; the second one collects ptvmm's own status.
  kill -0 $_p 2>/dev/null && { wait $_p; _rc=$?; }
  trap - TERM
  release_cpus
  if [ $(( $(date +%s) - _s )) -ge "$_t" ]; then
    echo "vm: ptvmm outlived its $_t s limit (status $_rc); an NMI asked the guest for a backtrace"
    return 124
  fi
  return $_rc
}
