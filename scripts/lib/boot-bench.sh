# scripts/lib/boot-bench.sh — boot-time measurement, sourced by a job running inside the nested
# harness's L1 (busybox sh; see scripts/nested and scripts/bench-boot-qemu). POSIX sh, no bashisms.
#
# Time measured: from just before the VMM process is started to the moment the guest's console line
# PTVMM-INIT-START (printed first thing by the guest's /init) is read from the VMM's stdout.
# Clock: /proc/timer_list "now at N nsecs" (ns, CLOCK_MONOTONIC; L1 runs as root), falling back
# to /proc/uptime (10 ms). busybox `date` has no %N, so the clock is read by awk without forking.
#
# Functions:
#   time_to_marker LOG CMD...      run CMD once (stdin /dev/null, stdout+stderr to LOG);
#                                  prints "<ms to marker or -> <ms to exit> <exit status>"
#   bench_vmm NAME RUNS CMD...     run CMD RUNS times; prints "BENCH NAME run i: ..." lines and
#                                  "BENCH NAME median-to-marker X ms ..."; returns 1 if a run failed
#                                  (no marker, no "PTVMM-CMD-EXIT 0" from the guest, or a
#                                  non-zero VMM exit status)
#   boot_bench_main [LIST]         for each "NAME<TAB>COMMAND" line of LIST (default ./vmms.list),
#                                  expand COMMAND with eval ($KERNEL $INITRD $CMDLINE are set from
#                                  ./bench.conf) and bench_vmm it; prints a summary with ratios.

BOOT_BENCH_MARKER=PTVMM-INIT-START

# awk source of now_ns(): monotonic nanoseconds, read without forking.
BOOT_BENCH_AWK_CLOCK='
function now_ns(   l, a, f, ns) {
  f = "/proc/timer_list"; ns = ""
  while ((getline l < f) > 0) if (l ~ /^now at [0-9]+ nsecs/) { split(l, a, " "); ns = a[3]; break }
  close(f)
  if (ns == "") { f = "/proc/uptime"; getline l < f; close(f); split(l, a, " "); ns = a[1] * 1000000000 }
  return ns
}'

boot_bench_now_ns() {
  awk "$BOOT_BENCH_AWK_CLOCK"' BEGIN { printf "%.0f\n", now_ns() }'
}

time_to_marker() {
  _ttm_log=$1
  shift
  _ttm_t0=$(boot_bench_now_ns)
  { "$@" </dev/null 2>&1; echo "PTVMM-BENCH-VMM-EXIT $?"; } | awk -v t0="$_ttm_t0" -v m="$BOOT_BENCH_MARKER" -v logf="$_ttm_log" \
    "$BOOT_BENCH_AWK_CLOCK"'
    !seen && index($0, m) { tm = now_ns(); seen = 1 }
    /^PTVMM-BENCH-VMM-EXIT / { te = now_ns(); st = $2; next }
    { print > logf }
    END {
      if (te == "") { te = now_ns(); st = "?" }
      printf "%s %.1f %s\n", (seen ? sprintf("%.1f", (tm - t0) / 1e6) : "-"), (te - t0) / 1e6, st
    }'
}

boot_bench_median() { # numbers on stdin, one a line -> median
  sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

bench_vmm() {
  _bv_name=$1 _bv_runs=$2
  shift 2
  _bv_dir=/tmp/boot-bench.$_bv_name
  mkdir -p "$_bv_dir"
  : >"$_bv_dir/marker-ms"
  _bv_fail=0 _bv_i=1
  echo "BENCH $_bv_name: $*"
  while [ "$_bv_i" -le "$_bv_runs" ]; do
    _bv_res=$(time_to_marker "$_bv_dir/console.$_bv_i" "$@")
    case $_bv_res in *' '*' '*) ;; *) _bv_res='- - ?' ;; esac
    set -- $_bv_res "$@"
    _bv_mark=$1 _bv_exit=$2 _bv_status=$3
    shift 3
    _bv_guest=$(sed -n 's/.*PTVMM-CMD-EXIT \([0-9]*\).*/\1/p' "$_bv_dir/console.$_bv_i" | tail -1)
    _bv_note=ok
    if [ "$_bv_mark" = - ]; then
      _bv_note="FAILED: no $BOOT_BENCH_MARKER"
    elif [ "$_bv_guest" != 0 ]; then
      _bv_note="FAILED: guest command status '${_bv_guest:-none}'"
    elif [ "$_bv_status" != 0 ]; then
      _bv_note="FAILED: VMM exit status $_bv_status"
    else
      echo "$_bv_mark" >>"$_bv_dir/marker-ms"
    fi
    echo "BENCH $_bv_name run $_bv_i: marker $_bv_mark ms, exit $_bv_exit ms, vmm status $_bv_status, $_bv_note"
    if [ "$_bv_note" != ok ]; then
      _bv_fail=1
      echo "BENCH $_bv_name run $_bv_i console (last 15 lines):"
      tail -n 15 "$_bv_dir/console.$_bv_i" | sed 's/^/    /'
    fi
    _bv_i=$((_bv_i + 1))
  done
  _bv_med=$(boot_bench_median <"$_bv_dir/marker-ms")
  echo "BENCH $_bv_name median-to-marker $_bv_med ms (n=$(wc -l <"$_bv_dir/marker-ms") of $_bv_runs)"
  echo "$_bv_name $_bv_med" >>/tmp/boot-bench.summary
  return $_bv_fail
}

boot_bench_main() {
  _bm_list=${1:-./vmms.list}
  RUNS=5 KERNEL=./bzImage INITRD=./initramfs.cpio.gz CMDLINE='console=ttyS0 quiet panic=-1 -- echo hi'
  [ -f ./bench.conf ] && . ./bench.conf
  export KERNEL INITRD CMDLINE
  : >/tmp/boot-bench.summary
  _bm_rc=0
  while IFS='	' read -r _bm_name _bm_cmd; do
    case $_bm_name in '' | '#'*) continue ;; esac
    eval "set -- $_bm_cmd"
    bench_vmm "$_bm_name" "$RUNS" "$@" || _bm_rc=1
  done <"$_bm_list"
  echo "BENCH summary (median ms from process start to $BOOT_BENCH_MARKER; ratio to the first):"
  awk 'NR == 1 { base = $2 } { r = (base > 0 && $2 != "-") ? sprintf("%.2fx", $2 / base) : "-"; printf "BENCH   %-20s %10s ms  %s\n", $1, $2, r }' /tmp/boot-bench.summary
  return $_bm_rc
}

# mem_overhead NAME CMD... — boots the guest with a command that prints MEM-READY and sleeps,
# then reads the VMM's /proc/PID/smaps: total RSS, the RSS of the largest mapping (guest RAM)
# and the difference (the VMM's own memory). Prints "MEM NAME rss X KiB guest Y KiB overhead Z KiB".
mem_overhead() {
  _mo_name=$1; shift
  _mo_log=/tmp/mem-$_mo_name.log
  "$@" </dev/null >"$_mo_log" 2>&1 &
  _mo_pid=$!
  _mo_i=0
  while ! grep -q '^MEM-READY' "$_mo_log" 2>/dev/null; do
    _mo_i=$((_mo_i + 1))
    if [ "$_mo_i" -gt 600 ] || ! kill -0 "$_mo_pid" 2>/dev/null; then
      echo "MEM $_mo_name FAILED: no MEM-READY from the guest"; tail -n 20 "$_mo_log"
      kill "$_mo_pid" 2>/dev/null; wait "$_mo_pid" 2>/dev/null; return 1
    fi
    sleep 0.1
  done
  sleep 0.5
  awk -v name="$_mo_name" '
    /^Size:/ { size = $2 }
    /^Rss:/  { total += $2; if (size > big) { big = size; guest = $2 } }
    END { printf "MEM %s rss %d KiB guest %d KiB overhead %d KiB\n", name, total, guest, total - guest }
  ' "/proc/$_mo_pid/smaps"
  wait "$_mo_pid" 2>/dev/null
  return 0
}

# mem_overhead_main [LIST] — mem_overhead for every VMM of LIST, with MEM_CMDLINE as the guest
# command line (default: print MEM-READY, then sleep 3 s).
mem_overhead_main() {
  _mm_list=${1:-./vmms.list}
  KERNEL=./bzImage INITRD=./initramfs.cpio.gz
  CMDLINE=${MEM_CMDLINE:-'console=ttyS0 quiet panic=-1 -- echo MEM-READY; sleep 3'}
  export KERNEL INITRD CMDLINE
  _mm_rc=0
  while IFS='	' read -r _mm_name _mm_cmd; do
    case $_mm_name in '' | '#'*) continue ;; esac
    eval "set -- $_mm_cmd"
    mem_overhead "$_mm_name" "$@" || _mm_rc=1
  done <"$_mm_list"
  return $_mm_rc
}
