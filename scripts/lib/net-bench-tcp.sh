#!/bin/sh
# scripts/lib/net-bench-tcp.sh — the TCP and cost sections of scripts/lib/net-bench.sh (busybox
# sh in the nested harness's L1), sourced by it after its helpers (err, wait_for, bridge_up,
# ./pinq) and settings (BASE, QEMU, R, S, TCP_SECS, TCP_RAMP, TCP_VARIANTS, TCP_SPIN): tcp_section
# runs every variant's pair of guests and prints the rate, CPU, retransmit and KVM exit tables;
# cost_section times copies and exits in L1 and in a guest (scripts/bench-net describes both).
# --- TCP guest -> guest: two guests per variant, the receiver B booted first --------------------------------
TCP_STREAMS="1 4"
# thread_ticks FILE: "tgid tid comm ticks" (utime + stime in 1/100 s; spaces in comm as _) for every
# thread in L1, and "L1 - busy total" from /proc/stat's cpu line (ticks, busy = all but idle, iowait)
thread_ticks() {
  # grep, not awk, reads the files: busybox awk stops at a thread that ended since the glob
  grep -sH '' /proc/[0-9]*/task/[0-9]*/stat | awk '{ i = index($0, ":"); split(substr($0, 1, i - 1), p, "/")
      l = substr($0, i + 1); o = index(l, "("); c = 0
      for (k = length(l); k > o; k--) if (substr(l, k, 1) == ")") { c = k; break }
      if (c == 0) next
      comm = substr(l, o + 1, c - o - 1); gsub(/ /, "_", comm)
      split(substr(l, c + 2), f, " "); print p[3], p[5], comm, f[12] + f[13] }' >"$1"
  awk '$1 == "cpu" { print "L1 -", $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat >>"$1"
  # L1 KVM's counters of every L2 VM (debugfs: a folder PID-FD per VM), as "KVM PID STAT COUNT"
  for d in /sys/kernel/debug/kvm/[0-9]*-[0-9]*; do
    [ -d "$d" ] || continue
    for f in $KVM_STATS; do [ -r "$d/$f" ] && echo "KVM ${d##*/} $f $(cat "$d/$f")"; done
  done >>"$1"
}
KVM_STATS="exits io_exits mmio_exits halt_exits irq_injections"
mountpoint -q /sys/kernel/debug 2>/dev/null || mount -t debugfs none /sys/kernel/debug 2>/dev/null ||
  echo "net-bench: no debugfs in L1: the TCP section shows no KVM exit counts"
# L1 KVM's exits by reason and vCPU thread: a histogram trigger on the kvm_exit trace event
EXIT_EVENT=/sys/kernel/debug/tracing/events/kvm/kvm_exit
EXIT_HIST="hist:keys=common_pid,exit_reason:vals=hitcount:size=2048"
[ -w "$EXIT_EVENT/trigger" ] && [ -r "$EXIT_EVENT/hist" ] ||
  echo "net-bench: L1 has no kvm_exit histogram (debugfs, CONFIG_HIST_TRIGGERS): the TCP section shows no exit reasons"
# exit_hist_on: a fresh histogram (one a failed variant left on is removed first)
exit_hist_on() {
  [ -w "$EXIT_EVENT/trigger" ] && [ -r "$EXIT_EVENT/hist" ] || return 0
  echo "!$EXIT_HIST" >"$EXIT_EVENT/trigger" 2>/dev/null
  echo "$EXIT_HIST" >"$EXIT_EVENT/trigger"
}
# exit_hist_off NAME: saves the histogram's "tid reason count" lines in res/exits-NAME and removes it
exit_hist_off() {
  [ -w "$EXIT_EVENT/trigger" ] && [ -r "$EXIT_EVENT/hist" ] || return 0
  sed -n 's/.*common_pid: *\([0-9]*\).*exit_reason: *\([0-9]*\).*hitcount: *\([0-9]*\).*/\1 \2 \3/p' \
    "$EXIT_EVENT/hist" >res/exits-$1
  echo "!$EXIT_HIST" >"$EXIT_EVENT/trigger"
}
# exit_rows NAME: res/exits-NAME as "NETBENCH-EXIT|NAME|role|reason|count" rows, each vCPU thread's
# process from the thread lists of both samples (res/cpu-NAME.0 and .1: the receiver's VMM may end
# before the last) and its role from res/cpu-NAME.roles
exit_rows() {
  [ -s res/exits-$1 ] || return 0
  cat res/cpu-$1.0 res/cpu-$1.1 | awk 'NR == FNR { if (NF == 4) tg[$2] = $1; next }
      { print (($1 in tg) ? tg[$1] : "?"), $2, $3 }' - res/exits-$1 | while read -r tg reason n; do
      role=$(sed -n "s/^$tg //p" res/cpu-$1.roles)
      [ -n "$role" ] && echo "${role%%\'*} $reason $n"
    done | awk '{ c[$1 "|" $2] += $3 } END { for (k in c) print k "|" c[k] }' | while IFS='|' read -r role reason n; do
      echo "NETBENCH-EXIT|$1|$role|$reason|$n" | tee -a res/rows
    done
}
# tcp_cpu NAME CONSOLE PID: L1's CPU time per thread over the sender's transfers, from its G-UP to
# its G-TXFRAME (both stream counts, with the pauses between them; the sender's guest waits 2 s
# after G-TXFRAME so that the last sample sees its VMM): every thread with >= 1% of one CPU, as
# NETBENCH-CPU|NAME|thread|process|CPU s|% of one CPU rows, and L1's busy % of all its CPUs.
tcp_cpu() {
  name=$1 con=$2 pid=$3
  wait_for "$con" G-UP 120 "$pid" || { err "tcp $name: the sender did not come up (no CPU sample)"; return 0; }
  exit_hist_on
  read -r t0 _ </proc/uptime; thread_ticks res/cpu-$name.0
  # which process is which, while both VMMs run (the receiver's may end before the last sample)
  for d in /proc/[0-9]*; do
    case $(tr '\0' ' ' 2>/dev/null <"$d/cmdline") in
      *tcp-send*) echo "${d#/proc/} sender's VMM" ;; *tcp-recv*) echo "${d#/proc/} receiver's VMM" ;;
    esac
  done >res/cpu-$name.roles
  wait_for "$con" G-TXFRAME $((2 * TCP_SECS + 200)) "$pid" ||
    { err "tcp $name: no G-TXFRAME for the CPU sample"; exit_hist_off "$name"; return 0; }
  exit_hist_off "$name"
  read -r t1 _ </proc/uptime; thread_ticks res/cpu-$name.1
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  awk -v secs="$secs" 'NR == FNR { t0[$1 " " $2 " " $3] = $4; next }
      $1 == "L1" || $1 == "KVM" { next }
      { k = $1 " " $2 " " $3; d[$1 " " $3] += $4 - (k in t0 ? t0[k] : 0) }
      END { for (k in d) if (d[k] >= secs) printf "%s %.1f\n", k, d[k] / 100 }' \
    res/cpu-$name.0 res/cpu-$name.1 | sort -k3 -n -r | while read -r tg comm cs; do
      case $comm in vhost-[0-9]*) owner=${comm#vhost-} ;; *) owner=$tg ;; esac
      proc=$(sed -n "s/^$owner //p" res/cpu-$name.roles)
      [ -n "$proc" ] || proc=$(tr '\0' ' ' 2>/dev/null <"/proc/$owner/cmdline" | cut -c1-30)
      [ -n "$proc" ] || proc=kernel
      echo "NETBENCH-CPU|$name|$comm|$proc|$cs|$(awk -v c="$cs" -v s="$secs" 'BEGIN { printf "%.0f", c * 100 / s }')" | tee -a res/rows
    done
  # KVM counters per VM: "NETBENCH-KVM|NAME|sender's VMM|exits|io_exits|mmio_exits|halt_exits|irq_injections"
  awk 'NR == FNR { if ($1 == "KVM") t0[$2 " " $3] = $4; next }
      $1 == "KVM" { d[$2] = d[$2] " " ($4 - (($2 " " $3) in t0 ? t0[$2 " " $3] : 0)) }
      END { for (v in d) print v d[v] }' res/cpu-$name.0 res/cpu-$name.1 | while read -r vm c; do
    role=$(sed -n "s/^${vm%%-*} //p" res/cpu-$name.roles)
    [ -n "$role" ] || continue
    echo "NETBENCH-KVM|$name|$role|$(echo $c | tr ' ' '|')" | tee -a res/rows
  done
  exit_rows "$name"
  busy=$(awk '$1 == "L1" { if (NR == FNR) { b = $3; t = $4 } else if ($4 > t) printf "%.0f", ($3 - b) * 100 / ($4 - t) }' \
    res/cpu-$name.0 res/cpu-$name.1)
  echo "NETBENCH-CPUL1|$name|$secs|$(nproc)|${busy:--}" | tee -a res/rows
}
tcp_pair() { # tcp_pair NAME: boot B (receiver) and A (sender) of one variant; consoles in res/tcp-NAME-{a,b}.con
  name=$1 b=res/tcp-$1-b.con a=res/tcp-$1-a.con limit=$((2 * TCP_SECS + 300))
  case $name in
  ptnet-*)
    hdr=1; [ "$name" = ptnet-nohdr ] && hdr=0
    # ptnet-hdr-mq: 2 vCPUs and 2 ring pairs per guest, both guests' vCPUs on R and S;
    # ptnet-hdr-4k: 4096 slots per ring; ptnet-hdr-lossless: both ports lossless
    vm="--cpus 1" rp=$R sp=$S po=offloads
    case $name in
      ptnet-hdr-mq) vm="--cpus 2 --netmap-rings 2" rp=$R,$S sp=$S,$R ;;
      ptnet-hdr-4k) vm="--cpus 1 --netmap-slots 4096" ;;
      ptnet-hdr-lossless) po=offloads,lossless ;;
      ptnet-hdr-spin) vm="--cpus 1 --netmap-tx-spin $TCP_SPIN" ;;
      ptnet-hdr-ps0) hdr=1:0 ;;
    esac
    # every variant on a switch of its own: a port's slots are fixed when it is created
    sw=vale1$(echo "$name" | tr -cd 'a-z' | cut -c1-12)
    timeout $limit ./ptvmm --kernel bzImage --initrd initrd-bench --memory 256 $vm --pin-vcpus $rp --netmap $sw:2,$po \
      --cmdline "$BASE -- sh /bench/g.sh tcp-recv ptnet $hdr 10.0.1.2 $TCP_RAMP $TCP_STREAMS" </dev/null >"$b" 2>&1 & bp=$!
    wait_for "$b" G-UP 120 $bp || err "tcp $name: receiver did not come up"
    timeout $limit ./ptvmm --kernel bzImage --initrd initrd-bench --memory 256 $vm --pin-vcpus $sp --netmap $sw:1,$po \
      --cmdline "$BASE -- sh /bench/g.sh tcp-send ptnet $hdr 10.0.1.1 10.0.1.2 $TCP_SECS $TCP_STREAMS" </dev/null >"$a" 2>&1 & ap=$!
    tcp_cpu "$name" "$a" $ap; wait $ap; arc=$? ;;
  virtio-vhost*)
    vh=${name#virtio-vhost}
    bridge_up
    timeout $limit ./pinq $R $QEMU -netdev "tap,id=n0,ifname=tap4,script=no,downscript=no,vhost=$vh" \
      -device virtio-net-pci,netdev=n0,mac=02:00:00:00:0a:02,romfile= -kernel bzImage -initrd initrd-bench \
      -append "$BASE -- sh /bench/g.sh tcp-recv virtio - 10.0.1.2 $TCP_RAMP $TCP_STREAMS" </dev/null >"$b" 2>&1 & bp=$!
    i=0; while [ $i -lt 100 ] && [ ! -e /sys/class/net/tap4 ]; do sleep 0.1; i=$((i+1)); done
    brctl addif br0 tap4 && ip link set tap4 up || err "tap4 into br0"
    wait_for "$b" G-UP 120 $bp || err "tcp $name: receiver did not come up"
    timeout $limit ./pinq $S $QEMU -netdev "tap,id=n0,ifname=tap3,script=no,downscript=no,vhost=$vh" \
      -device virtio-net-pci,netdev=n0,mac=02:00:00:00:0a:01,romfile= -kernel bzImage -initrd initrd-bench \
      -append "$BASE -- sh /bench/g.sh tcp-send virtio - 10.0.1.1 10.0.1.2 $TCP_SECS $TCP_STREAMS" </dev/null >"$a" 2>&1 & ap=$!
    i=0; while [ $i -lt 100 ] && [ ! -e /sys/class/net/tap3 ]; do sleep 0.1; i=$((i+1)); done
    brctl addif br0 tap3 && ip link set tap3 up || err "tap3 into br0"
    tcp_cpu "$name" "$a" $ap; wait $ap; arc=$? ;;
  esac
  # B ends after its last stream; give it the time to print, then stop it if it hangs
  i=0; while [ $i -lt 60 ] && kill -0 $bp 2>/dev/null; do sleep 1; i=$((i+1)); done
  kill $bp 2>/dev/null; wait $bp; brc=$?
  [ $arc = 0 ] && [ $brc = 0 ] && ! grep -q G-ERROR "$a" "$b" && grep -q TCPS-RESULT "$a" ||
    { err "tcp $name: sender status $arc, receiver status $brc"; tail -n 15 "$a" "$b"; }
}
# tcp_mib VARIANT: the MiB its sender sent, all stream counts (empty without a result)
tcp_mib() {
  tr -d '\r' <res/tcp-$1-a.con | sed -n 's/.*TCPS-RESULT [0-9]* \([0-9]*\) .*/\1/p' |
    awk '{ t += $1 } END { if (t > 0) printf "%.1f", t / 1048576 }'
}
tcp_label() {
  case $1 in
  ptnet-hdr) echo "ptnet, offloads (vnet_hdr=1)" ;;
  ptnet-nohdr) echo "ptnet, no offloads (vnet_hdr=0)" ;;
  ptnet-hdr-mq) echo "ptnet, offloads, 2 vCPUs, 2+2 rings" ;;
  ptnet-hdr-4k) echo "ptnet, offloads, 4096 slots" ;;
  ptnet-hdr-lossless) echo "ptnet, offloads, lossless ports" ;;
  ptnet-hdr-spin) echo "ptnet, offloads, TX spin $TCP_SPIN us" ;;
  ptnet-hdr-ps0) echo "ptnet, offloads, pacing_shift=0" ;;
  virtio-vhost*) echo "virtio-net, vhost=${1#virtio-vhost}" ;;
  esac
}
# cost_section: cpu-cost in L1, then in a ptvmm guest (1 vCPU, pinned as the TCP section's
# receivers); a table of both, NETBENCH-COPY|where|method|bytes|MB/s|ms per MB and
# NETBENCH-EXITCOST|where|count|us each rows.
COST_MIB=${COST_MIB:-32}
cost_section() {
  echo
  echo "net-bench: what copies and exits cost: scripts/lib/cpu-cost.c, $COST_MIB MiB per method and size, in L1 and"
  echo "in a ptvmm guest (L2)"
  ./cpu-cost "$COST_MIB" >res/cost-L1 2>&1 || err "cpu-cost in L1: $(tail -n 1 res/cost-L1)"
  timeout 300 ./ptvmm --kernel bzImage --initrd initrd-bench --memory 256 --cpus 1 --pin-vcpus $R \
    --cmdline "$BASE -- sh /bench/g.sh cost $COST_MIB" </dev/null >res/cost-L2.con 2>&1 ||
    err "the cost guest: ptvmm status $?"
  tr -d '\r' <res/cost-L2.con | grep -E '^(COPY|EXIT) ' >res/cost-L2
  grep -q G-ERROR res/cost-L2.con && err "cpu-cost in L2: $(grep G-ERROR res/cost-L2.con | head -n 1)"
  for w in L1 L2; do
    awk -v w="$w" '$1 == "COPY" { print "NETBENCH-COPY|" w "|" $2 "|" $3 "|" $4 "|" $5 }
      $1 == "EXIT" { print "NETBENCH-EXITCOST|" w "|" $3 "|" $4 }' res/cost-$w | tee -a res/rows
  done
  echo
  printf '| %-8s | %14s | %10s | %10s | %10s | %10s |\n' method "bytes a copy" "L1 MB/s" "L1 ms/MB" "L2 MB/s" "L2 ms/MB"
  echo "|----------|----------------|------------|------------|------------|------------|"
  grep '^NETBENCH-COPY|L1|' res/rows | while IFS='|' read -r _ _ m b r c; do
    l2=$(grep "^NETBENCH-COPY|L2|$m|$b|" res/rows | head -n 1)
    printf '| %-8s | %14s | %10s | %10s | %10s | %10s |\n' "$m" "$b" "$r" "$c" \
      "$(echo "$l2" | cut -d'|' -f5)" "$(echo "$l2" | cut -d'|' -f6)"
  done
  [ -s res/cost-L2 ] || err "no cpu-cost results from the guest"
  for w in L1 L2; do
    grep "^NETBENCH-EXITCOST|$w|" res/rows | while IFS='|' read -r _ _ n us; do
      echo "CPUID in $w: $us us each over $n (in L2 an exit to L1's KVM and back; in L1 no exit)"
    done
  done
}
tcp_section() {
  echo
  echo "net-bench: TCP guest -> guest, streams: $TCP_STREAMS; $TCP_SECS s each, the first $TCP_RAMP s left out"
  echo
  echo "(CPU %: the guest's busy/softirq time in % of all its vCPUs, over the seconds measured; L1's threads"
  echo " follow each variant's rows)"
  echo
  printf '| %-34s | %7s | %13s | %13s | %9s | %8s | %11s | %11s | %8s |\n' "TCP variant" streams "recv Mbit/s" "sent Mbit/s" "tx frame B" "hdr" "send CPU %" "recv CPU %" "retrans"
  echo "|------------------------------------|---------|---------------|---------------|-----------|----------|-------------|-------------|----------|"
  for v in $TCP_VARIANTS; do
    tcp_pair "$v"
    a=$(tr -d '\r' <res/tcp-$v-a.con) b=$(tr -d '\r' <res/tcp-$v-b.con)
    # the guests' own lines into the log (bench-net shows no NETBENCH line, .cache/bench/net.log keeps them)
    echo "$b" | grep -E 'G-|TCPR-' | sed "s/^/NETBENCH-CON|$v|recv| /"
    echo "$a" | grep -E 'G-|TCPS-' | sed "s/^/NETBENCH-CON|$v|send| /"
    hdr=$(echo "$b" | sed -n 's/^G-HDR //p' | head -n 1)
    txf=$(echo "$a" | sed -n 's/^G-TXFRAME //p' | head -n 1)
    for n in $TCP_STREAMS; do
      # TCPR-RESULT streams bytes seconds Mbit/s; TCPS-RESULT streams bytes seconds (anywhere in a
      # console line: a kernel message may share it)
      got=$(echo "$b" | sed -n "s/.*TCPR-RESULT $n [0-9]* [0-9.]* \([0-9.]*\).*/\1/p" | head -n 1)
      sent=$(echo "$a" | sed -n "s/.*TCPS-RESULT $n \([0-9]*\) \([0-9.]*\).*/\1 \2/p" | head -n 1 |
        awk '$2 > 0 { printf "%.1f\n", $1 * 8 / $2 / 1e6 }')
      # TCPS-CPU / TCPR-CPU streams busy softirq system user -> "busy/softirq"
      scpu=$(echo "$a" | sed -n "s/.*TCPS-CPU $n \([0-9.]*\) \([0-9.]*\) .*/\1\/\2/p" | head -n 1)
      rcpu=$(echo "$b" | sed -n "s/.*TCPR-CPU $n \([0-9.]*\) \([0-9.]*\) .*/\1\/\2/p" | head -n 1)
      rtx=$(echo "$a" | sed -n "s/.*G-RETRANS $n \([0-9]*\).*/\1/p" | head -n 1)
      [ -n "$got" ] || err "tcp $v: no result for $n stream(s)"
      printf '| %-34s | %7s | %13s | %13s | %9s | %8s | %11s | %11s | %8s |\n' "$(tcp_label $v)" "$n" "${got:--}" "${sent:--}" \
        "${txf:--}" "${hdr:--}" "${scpu:--}" "${rcpu:--}" "${rtx:--}"
      echo "NETBENCH-TCP|$v|$n|${got:--}|${sent:--}|${txf:--}|${hdr:--}|${scpu:--}|${rcpu:--}|${rtx:--}" | tee -a res/rows
    done
  done
  echo
  echo "L1's threads with >= 5% of one L1 CPU over each sender's run (its G-UP to its last result: both"
  echo "stream counts and the pauses between them), and L1's busy time in % of all its CPUs:"
  echo
  printf '| %-34s | %-30s | %-16s | %7s | %11s |\n' "TCP variant" "L1 thread" "process" "CPU s" "% of 1 CPU"
  echo "|------------------------------------|--------------------------------|------------------|---------|-------------|"
  for v in $TCP_VARIANTS; do
    grep "^NETBENCH-CPU|$v|" res/rows | while IFS='|' read -r _ _ th pr cs pc; do
      [ "$pc" -ge 5 ] 2>/dev/null && printf '| %-34s | %-30s | %-16s | %7s | %11s |\n' "$(tcp_label $v)" "$th" "$pr" "$cs" "$pc"
    done
    grep "^NETBENCH-CPUL1|$v|" res/rows | while IFS='|' read -r _ _ secs cpus busy; do
      printf '| %-34s | %-30s | %-16s | %7s | %11s |\n' "$(tcp_label $v)" "L1 busy, $cpus CPUs, $secs s" "all" "-" "$busy% of all"
    done
  done
  echo
  echo "L1 KVM's counters of each guest over the same time, per MiB the sender sent (all stream counts):"
  echo
  printf '| %-34s | %-14s | %9s | %9s | %9s | %9s | %9s |\n' "TCP variant" "guest" "exits" "io" "mmio" "halt" "irq inj."
  echo "|------------------------------------|----------------|-----------|-----------|-----------|-----------|-----------|"
  for v in $TCP_VARIANTS; do
    mib=$(tcp_mib "$v")
    grep "^NETBENCH-KVM|$v|" res/rows | while IFS='|' read -r _ _ role e io mm h irq; do
      [ -n "$mib" ] || continue
      printf '| %-34s | %-14s |' "$(tcp_label $v)" "${role%%\'*}"
      for x in "$e" "$io" "$mm" "$h" "$irq"; do printf ' %9s |' "$(awk -v x="$x" -v m="$mib" 'BEGIN { printf "%.1f", x / m }')"; done
      echo
    done
  done
  if grep -q "^NETBENCH-EXIT|" res/rows; then
    echo "L1 KVM's exits by reason (SVM exit codes; kvm_exit trace events of the guests' vCPU threads), per"
    echo "MiB the sender sent, every reason with >= 0.5:"
    echo
    printf '| %-34s | %-8s | %s |\n' "TCP variant" "guest" "exits per MiB by reason"
    echo "|------------------------------------|----------|------------------------------------------------------------|"
    for v in $TCP_VARIANTS; do
      mib=$(tcp_mib "$v")
      [ -n "$mib" ] || continue
      for role in sender receiver; do
        line=$(grep "^NETBENCH-EXIT|$v|$role|" res/rows | awk -F'|' -v m="$mib" '
          BEGIN { n[96] = "INTR"; n[97] = "NMI"; n[100] = "VINTR"; n[110] = "RDTSC"; n[114] = "CPUID"
                  n[119] = "PAUSE"; n[120] = "HLT"; n[123] = "IOIO"; n[124] = "MSR"; n[129] = "VMMCALL"
                  n[1024] = "NPF"; n[1025] = "AVIC_IPI"; n[1026] = "AVIC_NOACCEL" }
          { r = $4 + 0; name = (r in n) ? n[r] : "code " r; v = $5 / m; if (v >= 0.5) print v, name }' |
          sort -rn | awk '{ printf "%s%s %.1f", (NR > 1 ? ", " : ""), $2, $1 }')
        [ -n "$line" ] && printf '| %-34s | %-8s | %s |\n' "$(tcp_label $v)" "$role" "$line"
      done
    done
    echo
  fi
  echo
  case " $TCP_VARIANTS " in
    *" ptnet-hdr "*virtio-*|*virtio-*" ptnet-hdr "*) ;;
    *) echo "no TCP ratio: it needs ptnet-hdr and a virtio-net variant, and the variants were: $TCP_VARIANTS"; return 0 ;;
  esac
  for n in $TCP_STREAMS; do
    p=$(grep "^NETBENCH-TCP|ptnet-hdr|$n|" res/rows | cut -d'|' -f4 | grep -v '^-$')
    bv=$(grep "^NETBENCH-TCP|virtio" res/rows | awk -F'|' -v n="$n" '$3 == n && $4 != "-" { print $4 }' | sort -n | tail -n 1)
    if [ -n "$p" ] && [ -n "$bv" ]; then
      echo "TCP ratio, $n stream(s): ptnet with offloads $p Mbit/s / best virtio-net $bv Mbit/s = $(awk -v a="$p" -v b="$bv" 'BEGIN { printf "%.2f", a / b }')x (goal >= 2x)"
    else
      err "no TCP ratio for $n stream(s): a side has no result"
    fi
  done
}
