# tests/nested/lib.sh — the shared pieces of the nested test scripts (busybox sh), sourced from
# the job folder (prepare_nested_job in scripts/lib/common.sh copies it there beside the binaries,
# with guest-lib.sh): the check helpers, the guests' kernel command lines and oops patterns,
# packing guest scripts into an initrd, starting ptvmm guests, waiting for a marker in a log.
# A suite reads: write its guests' scripts (guest_script, quoted heredocs), pack_initrd, start the
# guests and host tools (boot_guest, host_rx, host_pktgen), wait for markers (wait_for, await),
# read the consoles (console, val) and check; then report_and_exit.

# --- checks ---------------------------------------------------------------------------------
pass=0; fail=0
# ok NAME / not_ok NAME: count and print one check's result.
ok()     { pass=$((pass+1)); echo "ok - $*"; }
not_ok() { fail=$((fail+1)); echo "not ok - $*"; }
# check NAME COMMAND...: ok NAME when COMMAND succeeds, not_ok NAME otherwise.
check()  { name=$1; shift; if "$@"; then ok "$name"; else not_ok "$name"; fi; }
# has TEXT SUBSTRING: whether TEXT contains SUBSTRING.
has()    { case "$1" in *"$2"*) return 0;; esac; return 1; }
# val TEXT KEY: what follows "KEY " on the last line that has it, at the line's start or after
# a character that cannot be part of a key, up to a kernel message's "[  83.228485] " if one
# follows: a kernel console line printed at the same moment can land in front of a guest's
# marker or right after it on the same line (guests under load boot without 'quiet').
val()    {
  echo "$1" | sed -nE "s/^(.*[^A-Za-z0-9_-])?$2 //p" | sed -E 's/\[ *[0-9]+\.[0-9]+\] .*$//' | tail -n1
}
# after_init TEXT: a guest's console from its init on (the boot log before it holds the
# harness's XSAVE warning with a call trace, docs/testing.md; oops checks look after it)
after_init() { echo "$1" | sed -n '/PTVMM-INIT-START/,$p'; }
# report_and_exit: the suite's last line, "N passed, M failed"; the exit status is M.
report_and_exit() { echo "$pass passed, $fail failed"; exit "$fail"; }

# --- guests' kernel command lines and oops patterns -----------------------------------------
# The kernel command line of guests under load: no 'quiet' (a dying guest's last words reach
# its log), an oops panics (panic=-1 then reboots: ptvmm exits and the results are missing),
# and an NMI panics with a backtrace: `vm` sends ptvmm SIGUSR1 (an NMI into every vCPU) when a
# guest outlives its time limit, so a hung guest says where it hangs.
GUEST_CMDLINE='console=ttyS0 reboot=k panic=-1 oops=panic unknown_nmi_panic=1'
# The kernel command line of the boot checks (linux-boot.sh): quiet, a panic reboots.
BOOT_CMDLINE='console=ttyS0 quiet reboot=k panic=-1'
# What a guest's dmesg must not have (guest-lib.sh's report_bad counts it), written [x]... so
# that the patterns do not match themselves anywhere.
BAD='[O]ops|[B]UG:|[W]ARNING:|[C]all Trace|[G]eneral protection'
# What a guest's console must not have after init (console_oopses): a WARNING there may be
# the harness's, a panic is never.
CONSOLE_OOPS='[B]UG:|[O]ops|[G]eneral protection|[C]all Trace|[K]ernel panic'
# console_oopses TEXT NAME: how many console lines after init match CONSOLE_OOPS, leaving out
# the guest's own NAME-OOPS report lines (report_bad's).
console_oopses() { after_init "$1" | grep -v "^$2-OOPS" | grep -cE "$CONSOLE_OOPS"; }

# --- the VALE switch's shared memory --------------------------------------------------------
# use_shm_dir: ptvmm and pkt-gen put their VALE port files in /tmp/shm (PTVMM_SHM_DIR).
use_shm_dir() { export PTVMM_SHM_DIR=/tmp/shm; mkdir -p "$PTVMM_SHM_DIR"; }
# shm_empty: whether no port file is left in PTVMM_SHM_DIR (every port was removed).
shm_empty() { [ -z "$(ls "$PTVMM_SHM_DIR")" ]; }

# --- guest scripts and initrds ----------------------------------------------------------------
# Guest scripts go into a small cpio archive put in front of the gzipped initramfs (the kernel
# unpacks both; the uncompressed one first keeps the gzip part 4-byte aligned), so that the
# kernel command line only says "-- sh /test/a.sh" (Linux allows 32 init arguments). In the
# guest, /test/lib.sh is guest-lib.sh and /test/vars.sh the host's values given to guest_vars.

# guest_script TREE NAME: stdin (a quoted heredoc) becomes the guest's /test/NAME, in TREE.
guest_script() { mkdir -p "$1/test"; cat >"$1/test/$2"; }
# guest_vars TREE VAR...: the host's values of VAR... as assignments in the guest's /test/vars.sh.
guest_vars() {
  _tree=$1; shift; mkdir -p "$_tree/test"
  for _v in "$@"; do
    eval "_x=\${$_v}"
    printf "%s='%s'\n" "$_v" "$(printf '%s' "$_x" | sed "s/'/'\\\\''/g")"
  done >>"$_tree/test/vars.sh"
}
# pack_initrd TREE OUT: TREE (with guest-lib.sh as /test/lib.sh and BAD in /test/vars.sh) in
# front of initramfs.cpio.gz, as the initrd OUT.
pack_initrd() {
  cp guest-lib.sh "$1/test/lib.sh"
  guest_vars "$1" BAD
  (cd "$1" && find . -mindepth 1 | cpio -o -H newc -R 0:0 2>/dev/null) >"$2.cpio"
  cat "$2.cpio" initramfs.cpio.gz >"$2"
}

# --- starting guests and host tools -----------------------------------------------------------
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

# boot_guest SECONDS INITRD SCRIPT PORT MAC [PTVMM ARGS...]: a 1-vCPU (GUEST_VCPUS if set),
# 256 MiB guest under vm (time limit SECONDS) that runs /test/SCRIPT of INITRD with
# GUEST_CMDLINE, its ptnet NIC on the VALE port PORT with MAC; stdin closed, the console on
# stdout; ptvmm's status.
boot_guest() {
  _lim=$1 _initrd=$2 _script=$3 _port=$4 _mac=$5; shift 5
  vm "$_lim" "${GUEST_VCPUS:-1}" --kernel bzImage --initrd "$_initrd" --memory 256 --netmap "$_port" "$@" \
    --mac "$_mac" --cmdline "$GUEST_CMDLINE -- sh /test/$_script" </dev/null
}

# host_pktgen LOG ARGS...: ./ptvmm-pktgen ARGS on L1 (60 s at most), its output in LOG; its status.
host_pktgen() { _log=$1; shift; timeout 60 ./ptvmm-pktgen "$@" </dev/null >"$_log" 2>&1; }
# host_rx LOG ARGS...: ./ptvmm-pktgen ARGS --slots 8192 (a receiver on a VALE port, 200 s at
# most) in the background, its output in LOG; sets HOST_RX to its pid and returns once it said
# "ready" (20 s at most). The suites count its frames exactly, and L1's vCPUs (3 TCG threads on
# the 2-core machine) are at times descheduled for over 100 ms: VALE's default 1024 slots (51 ms
# at 20 Kpps) then overflowed and the switch dropped frames (2 runs in 33 of one soak); 8192
# hold 410 ms of one-slot frames at that rate and more than any burst a suite sends (guest D's
# 1000 chains of 3 slots take 3000).
host_rx() {
  _log=$1; shift
  timeout 200 ./ptvmm-pktgen "$@" --slots 8192 </dev/null >"$_log" 2>&1 &
  HOST_RX=$!
  wait_for "$_log" ready 20 "$HOST_RX"
}

# --- waiting and reading consoles -------------------------------------------------------------
# wait_for FILE PATTERN SECONDS PID: until FILE has PATTERN, PID is gone or the time is up.
wait_for() {
  _i=0
  while [ $_i -lt "$3" ] && ! grep -q "$2" "$1" && kill -0 "$4" 2>/dev/null; do
    sleep 1; _i=$((_i + 1))
  done
}
# await NAME PID SECONDS: waits up to SECONDS for guest NAME's PID to end by itself, kills it
# (saying so) if it did not; returns its status.
await() {
  _i=0
  while [ $_i -lt "$3" ] && kill -0 "$2" 2>/dev/null; do sleep 1; _i=$((_i + 1)); done
  if kill -0 "$2" 2>/dev/null; then kill "$2"; echo "    (guest $1 still running: killed)"; fi
  wait "$2"
}
# console LOG: a guest's console log without carriage returns.
console() { tr -d '\r' <"$1"; }
# show LABEL: indents stdin as "    LABEL| line" (what the guests and host tools said).
show() { sed "s/^/    $1| /"; }
# ran_through NAME TEXT: whether guest NAME loaded its driver (NAME-INSMOD 0) and its script
# ended with status 0 (init's PTVMM-CMD-EXIT 0), after its console TEXT.
ran_through() { [ "$(val "$2" "$1-INSMOD")" = 0 ] && has "$2" "PTVMM-CMD-EXIT 0"; }
# show_tail NAME TEXT LINES: guest NAME's last LINES console lines, for a guest that failed.
show_tail() {
  echo "    --- guest $1 console (last $3 lines) ---"; echo "$2" | tail -n "$3" | sed 's/^/    | /'
}
