#!/bin/sh
# ptnet.ko's stack mode with 2 TX + 2 RX rings and small rings, run inside the nested harness's
# L1 (scripts/nested): two ptvmm guests on vale3 with --netmap-rings 2 --netmap-slots 16.
#   guest F (10.0.0.6) floods guest E (10.0.0.5) with the kernel's pktgen module over both TX
#   queues (queue_map 0..1, round robin; bursts of 64 with xmit_more, so the guest fills a ring
#   before it kicks, however fast the host's TX worker is): the 16-slot TX rings fill, so the stack's queues stop
#   and must be woken by the TX interrupts; the frames land in E's RX ring 0 and 1 (VALE:
#   destination ring = source ring). Then ping works both ways, and both drivers unload cleanly.
# The driver's per-ring counters (ethtool -S; `ptnet-ctl stats eth0` in the guest) make the
# stop/wake path visible: per TX queue stops > 0 and wakes >= stops (and pktgen, which only
# counts frames the driver took, would hang on a queue left stopped).
# Each check prints "ok - name" or "not ok - name"; the last line is "N passed, M failed" and the
# exit status is the failure count.
# Expects in the current folder: lib.sh and guest-lib.sh (tests/nested/), ptvmm, bzImage, initramfs.cpio.gz (with
# /lib/modules/ptnet.ko, /lib/modules/pktgen.ko and /bin/ptnet-ctl), e.g.
#   scripts/nested -c 3 -t 420 DIR tests/nested/ptnet-stack.sh
. ./lib.sh   # checks, guest scripts and initrds, boot_guest, waiting (tests/nested/lib.sh)

use_shm_dir
N=${STACK_FRAMES:-50000}
SLOTS=16
RINGS="--netmap-rings 2 --netmap-slots $SLOTS"

# Shared by both guests: bring eth0 up with an address; print the counters.
guest_script gs common.sh <<'EOF'
up() { # up NAME IP
  dmesg -c >/dev/null
  insmod /lib/modules/ptnet.ko; echo "$1-INSMOD $?"
  ip addr add "$2/24" dev eth0 && ip link set eth0 up; echo "$1-UP $?"
}
stats() { # stats NAME: the driver's counters as NAME-STAT lines, and the stack's totals
  # (rx_packets also before the driver's counters: a late frame may land between the reads)
  echo "$1-rx_packets_before $(cat /sys/class/net/eth0/statistics/rx_packets)"
  ptnet-ctl stats eth0 | sed "s/^PTNET-/$1-/"
  for c in tx_packets rx_packets tx_dropped rx_dropped rx_errors; do
    echo "$1-$c $(cat /sys/class/net/eth0/statistics/$c)"
  done
}
finish() { # finish NAME
  ip link set eth0 down; rmmod ptnet; echo "$1-RMMOD $?"
  report_bad "$1"
}
EOF
guest_script gs e.sh <<'EOF'
# Guest E (10.0.0.5, vale3:3): receives; pings F when its rx count stood still for 3 s after the flood.
. /test/lib.sh; . /test/common.sh
up E 10.0.0.5
i=0; while [ $i -lt 120 ] && ! ping -c 1 -W 1 10.0.0.6 >/dev/null 2>&1; do i=$((i+1)); done
echo "E-PEER $i"
last=-1 still=0 i=0
while [ $i -lt 240 ] && [ $still -lt 3 ]; do
  sleep 1; i=$((i+1))
  n=$(cat /sys/class/net/eth0/statistics/rx_packets)
  if [ "$n" = "$last" ] && [ "$n" -gt 1000 ]; then still=$((still+1)); else still=0; fi
  last=$n
done
ping -c 3 -W 5 10.0.0.6 >/dev/null 2>&1; echo "E-PING $?"
stats E
finish E
EOF
guest_script gs f.sh <<'EOF'
# Guest F (10.0.0.6, vale3:1): floods E with pktgen over both TX queues, then pings.
. /test/lib.sh; . /test/common.sh
up F 10.0.0.6
i=0; while [ $i -lt 120 ] && ! ping -c 1 -W 1 10.0.0.5 >/dev/null 2>&1; do i=$((i+1)); done
echo "F-PEER $i"
insmod /lib/modules/pktgen.ko; echo "F-PKTGEN-INSMOD $?"
pg=/proc/net/pktgen
echo "add_device eth0" >$pg/kpktgend_0
for c in "count $N" "pkt_size 60" "delay 0" "clone_skb 0" "burst 64" "queue_map_min 0" "queue_map_max 1" \
  "dst 10.0.0.5" "dst_mac 02:00:00:00:00:0e" "udp_dst_min 9" "udp_dst_max 9"; do
  echo "$c" >$pg/eth0 || echo "F-PGERR $c"
done
timeout 200 sh -c "echo start >$pg/pgctrl"; echo "F-PGRC $?"
sed -n 's/^Result: /F-RESULT /p; s/.*pkts-sofar: \([0-9]*\).*/F-SOFAR \1/p' $pg/eth0
# ping E (tries: pings sent until the first reply; the flood may still fill E's ring at first)
i=1; while [ $i -lt 20 ] && ! ping -c 1 -W 1 10.0.0.5 >/dev/null 2>&1; do i=$((i+1)); done
echo "F-PING-TRIES $i"
ping -c 3 -W 5 10.0.0.5 >/dev/null 2>&1; echo "F-PING $?"
stats F
# stay up until E has pinged back (E waits for its RX to stand still first): 3 more frames in
n0=$(cat /sys/class/net/eth0/statistics/rx_packets)
i=0; while [ $i -lt 60 ] && [ $(cat /sys/class/net/eth0/statistics/rx_packets) -lt $((n0 + 3)) ]; do
  sleep 1; i=$((i+1)); done
sleep 2
rmmod pktgen
finish F
EOF
guest_vars gs N
pack_initrd gs initrd-stack

t0=$(date +%s)
boot_guest 300 initrd-stack e.sh vale3:3 02:00:00:00:00:0e $RINGS >e.log 2>&1 &
epid=$!
boot_guest 300 initrd-stack f.sh vale3:1 02:00:00:00:00:0f $RINGS >f.log 2>&1
frc=$?
wait $epid; erc=$?
echo "    (guests ran $(( $(date +%s) - t0 )) s)"
e=$(console e.log) f=$(console f.log)
echo "$f" | grep -E '^F-' | show F
echo "$e" | grep -E '^E-' | show E
ran_through E "$e" || show_tail E "$e" 30
ran_through F "$f" || show_tail F "$f" 30
stat() { val "$1" "$2-STAT $3"; }   # stat TEXT GUEST NAME

check "both guests load ptnet.ko and bring eth0 up" \
  test "$(val "$e" E-INSMOD)$(val "$e" E-UP)$(val "$f" F-INSMOD)$(val "$f" F-UP)" = 0000
check "the driver reports 2 tx + 2 rx rings, 6 counters each (ethtool -S)" \
  test "$(echo "$f" | sed -n 's/^F-STATS driver ptnet .* count //p')" = 24
check "guest F's pktgen sends all $N frames (bursts of 64 may round up) over 2 TX queues of $SLOTS slots (status $(val "$f" F-PGRC))" \
  test "$(val "$f" F-PGRC)" = 0 -a "$(val "$f" F-SOFAR)" -ge "$N" -a "$(val "$f" F-SOFAR)" -lt $((N + 64)) \
    -a "$(val "$f" F-tx_packets)" -ge "$N"
for qn in 0 1; do
  st=$(stat "$f" F "tx${qn}_stops") wk=$(stat "$f" F "tx${qn}_wakes")
  # wakes >= stops: a stop that sticks needs the TX interrupt; the interrupt may also land in
  # the window where the driver stops and re-checks, and wake a queue the driver restarts anyway.
  check "F's TX queue $qn stopped on a full ring and was woken every time ($st stops, $wk wakes)" \
    test -n "$st" -a "${st:-0}" -gt 0 -a "${wk:-0}" -ge "${st:-0}"
done
r0=$(stat "$e" E rx0_packets) r1=$(stat "$e" E rx1_packets)
check "guest E receives on both RX rings (ring 0: $r0, ring 1: $r1 frames; at most $N + pings)" \
  test "${r0:-0}" -gt 0 -a "${r1:-0}" -gt 0 -a $((${r0:-0} + ${r1:-0})) -le $((N + 100))
rb=$(val "$e" E-rx_packets_before) ra=$(val "$e" E-rx_packets)
check "E's stack got what the rings gave ($r0 + $r1 within rx_packets read before and after them: $rb..$ra)" \
  test -n "$rb" -a -n "$ra" -a "${rb:-0}" -le $((${r0:-0} + ${r1:-0})) -a $((${r0:-0} + ${r1:-0})) -le "${ra:-0}"
check "ping works both ways after the flood" test "$(val "$f" F-PING)$(val "$e" E-PING)" = 00
echo "    (F's kicks: $(stat "$f" F tx0_kicks) + $(stat "$f" F tx1_kicks) for $N frames; the rate depends on who is faster, guest or TX worker)"
check "rmmod clean in both guests, no oops/BUG/WARNING" \
  test "$(val "$e" E-RMMOD)$(val "$f" F-RMMOD)$(val "$e" E-BAD)$(val "$f" F-BAD)" = 0000
check "both guests power off cleanly (ptvmm status E $erc, F $frc)" test "$erc$frc" = 00
check "the vale3 ports are removed after both guests exit" shm_empty

report_and_exit
