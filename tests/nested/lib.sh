# tests/nested/lib.sh — the check helpers of the nested test scripts (busybox sh), sourced from
# the job folder (scripts/test copies it there beside the binaries).
pass=0; fail=0
ok()     { pass=$((pass+1)); echo "ok - $*"; }
not_ok() { fail=$((fail+1)); echo "not ok - $*"; }
check()  { name=$1; shift; if "$@"; then ok "$name"; else not_ok "$name"; fi; }
has()    { case "$1" in *"$2"*) return 0;; esac; return 1; }       # has TEXT SUBSTRING
val()    { echo "$1" | sed -n "s/^$2 //p" | tail -n1; }                # val TEXT KEY: what follows "KEY "

# The kernel command line of guests under load: no 'quiet' (a dying guest's last words reach
# its log), an oops panics (panic=-1 then reboots: ptvmm exits and the results are missing),
# and an NMI panics with a backtrace: `vm` sends ptvmm SIGUSR1 (an NMI into every vCPU) when a
# guest outlives its time limit, so a hung guest says where it hangs.
GUEST_CMDLINE='console=ttyS0 reboot=k panic=-1 oops=panic unknown_nmi_panic=1'

# next_cpus N: L1 CPUs for a guest's N vCPUs, round robin over CPUs 1.. (CPU 0 is left to the
# rest); one CPU only when L1 has one. Each vCPU thread is pinned (ptvmm --pin-vcpus) because an
# L2 guest whose vCPU thread L1 migrates between its CPUs under load triple-faults in this
# harness (QEMU TCG's emulated SVM; docs/testing.md), whatever the VMM.
next_cpus() {
  _n=$(nproc); _c=$(cat /tmp/.next-cpu 2>/dev/null || echo 0); _out=
  _i=0; while [ $_i -lt "$1" ]; do
    if [ "$_n" -gt 1 ]; then _c=$(( _c % (_n - 1) + 1 )); else _c=0; fi
    _out="$_out${_out:+,}$_c"; _i=$((_i + 1))
  done
  echo "$_c" >/tmp/.next-cpu; echo "$_out"
}

# vm SECONDS VCPUS ARGS...: ./ptvmm --cpus VCPUS ARGS, its vCPUs pinned (next_cpus), with a time
# limit: SIGUSR1 at the limit (the NMI above; the panic then ends the guest), SIGKILL 30 s later.
# A guest that outlived its limit makes vm print a line saying so and return 124, whatever
# ptvmm's own status (the NMI's panic reboots the guest, and a reboot is status 0).
# Run in the background (`vm ... &`), `kill $!` reaches ptvmm: the TERM is forwarded.
vm() {
  _t=$1 _v=$2; shift 2; _s=$(date +%s)
  timeout -s USR1 -k 30 "$_t" ./ptvmm --cpus "$_v" --pin-vcpus "$(next_cpus "$_v")" "$@" &
  _p=$!
  trap 'kill $_p 2>/dev/null' TERM
  wait $_p; _rc=$?
  # A TERM interrupts the first wait; the second one collects ptvmm's own status.
  kill -0 $_p 2>/dev/null && { wait $_p; _rc=$?; }
  trap - TERM
  if [ $(( $(date +%s) - _s )) -ge "$_t" ]; then
    echo "vm: ptvmm outlived its $_t s limit (status $_rc); an NMI asked the guest for a backtrace"
    return 124
  fi
  return $_rc
}
