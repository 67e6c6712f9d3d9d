#!/usr/bin/env bash
# tests/host/nested-harness.sh — scripts/nested's handling of L1's console, with a fake
# qemu-system-x86_64 first in PATH (no L1 boots: each mode prints what a real L1 might, or hangs,
# or dies). The boot watchdog's restarts cannot be provoked with a real L1 (its boot fault is
# intermittent, about one run in 40), so this is where they are tested:
#   normal        ready line, output, exit 3          -> status 3, the output shown
#   garbled       a kernel message in front of ready  -> the message shown, status 0
#   garbled-exit  the ready line torn, the exit line  -> status 5 (the script's), no restart
#   hang-once     silent on the first start           -> "attempt 1 of 3", up on attempt 2, status 0
#   hang          silent always                       -> two restarts, "3 times in a row", 124
#   dies          a last line without newline, gone   -> the line shown, "ended without", 124
# With PTVMM_NESTED_BOOT_LIMIT=2 a run takes at most ~30 s (three 2 s waits, each followed by a
# monitor dump that waits 2 s per sample for a fake that never answers).
# usage: tests/host/nested-harness.sh    (needs the guest image: guest-images/build has run)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/bin" "$T/job"
echo x >"$T/job/x"
echo 'echo from-the-script' >"$T/script.sh"
cat >"$T/bin/qemu-system-x86_64" <<'EOF'
#!/usr/bin/env bash
# a fake L1: what it prints depends on FAKE_MODE; FAKE_DIR/starts counts its starts
n=$(( $(cat "$FAKE_DIR/starts" 2>/dev/null || echo 0) + 1 )); echo $n >"$FAKE_DIR/starts"
case $FAKE_MODE in
  normal) echo early; echo "PTVMM-NESTED-READY 1.50"; echo hello; echo "PTVMM-NESTED-EXIT 3" ;;
  garbled) echo "[    1.0] kvm: msgPTVMM-NESTED-READY 2.00"; echo out; echo "PTVMM-NESTED-EXIT 0" ;;
  garbled-exit) echo "PTVMM-NESTED-RE[    1.0] kvm: msgADY 2.00"; echo out; echo "PTVMM-NESTED-EXIT 5" ;;
  hang-once) [ $n -ge 2 ] || exec sleep 1000
    echo "PTVMM-NESTED-READY 1.00"; echo second-try; echo "PTVMM-NESTED-EXIT 0" ;;
  hang) exec sleep 1000 ;;
  dies) printf 'no newline at the end'; exit 1 ;;
esac
EOF
chmod +x "$T/bin/qemu-system-x86_64"

pass=0 fail=0
check() { local name=$1; shift; if "$@"; then pass=$((pass+1)); echo "ok - $name"; else fail=$((fail+1)); echo "not ok - $name"; fi; }
has() { grep -qF -- "$2" <<<"$1"; }
count() { grep -cF -- "$2" <<<"$1" || true; }
# run MODE: scripts/nested with the fake; sets out (stdout and stderr), rc and starts
run() {
  rm -f "$T/starts"
  set +e
  out=$(FAKE_MODE=$1 FAKE_DIR=$T PTVMM_NESTED_BOOT_LIMIT=2 PATH="$T/bin:$PATH" \
    timeout 120 "$ROOT/scripts/nested" -t 60 "$T/job" "$T/script.sh" 2>&1)
  rc=$?
  set -e
  starts=$(cat "$T/starts" 2>/dev/null || echo 0)
}

run normal
check "normal: the script's status (3), its output and the early line shown, one start ($rc, $starts)" \
  eval '[ $rc = 3 ] && [ $starts = 1 ] && has "$out" hello && has "$out" early && has "$out" "L1 up: "'
run garbled
check "a kernel message in front of the ready line: shown, L1 up, status 0 ($rc)" \
  eval '[ $rc = 0 ] && [ $starts = 1 ] && has "$out" "[    1.0] kvm: msg" && has "$out" "L1 up: " && has "$out" out'
run garbled-exit
check "a torn ready line and then the exit line: the script's status (5), not restarted ($rc, $starts starts)" \
  eval '[ $rc = 5 ] && [ $starts = 1 ] && ! has "$out" "not up"'
run hang-once
check "an L1 silent at its first start is shown and started again, then runs the script ($rc, $starts starts)" \
  eval '[ $rc = 0 ] && [ $starts = 2 ] && has "$out" "L1 was not up after 2 s (attempt 1 of 3" && has "$out" "L1 up (attempt 2 of 3)" && has "$out" second-try'
run hang
check "an L1 that is never up: 3 starts, 2 restarts said, then status 124 ($rc, $starts starts)" \
  eval '[ $rc = 124 ] && [ $starts = 3 ] && [ "$(count "$out" "a new L1 follows")" = 2 ] && has "$out" "3 times in a row; giving up"'
run dies
check "an L1 that ends before it is up: its last line shown, no restart, status 124 ($rc, $starts starts)" \
  eval '[ $rc = 124 ] && [ $starts = 1 ] && has "$out" "no newline at the end" && has "$out" "ended without reporting a status"'
[ "$fail" = 0 ] || printf '%s\n' "--- the last run's output:" "$out"
echo "$pass passed, $fail failed"
exit "$fail"
