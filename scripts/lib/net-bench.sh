#!/bin/sh
# scripts/lib/net-bench.sh — the L1 side of scripts/bench-net (busybox sh, inside the nested
# harness's L1, /job as the working folder). One L1, one kernel, one guest initramfs; side by side:
#   ptnet     ptvmm --netmap vale0:1; the guest's pkt-gen -f tx -l 60 on /dev/ptnet0 (poll() mode,
#             and --busy-poll when the guest pkt-gen has it); counted by the host's
#             ptvmm-pktgen -f rx on vale0:2 (its per-second report lines)
#   virtio    qemu-system-x86_64 -M microvm,pcie=on -accel kvm with virtio-net-pci on a tap (vhost
#             on and off); the guest's kernel pktgen module sends 60-byte frames; counted by the
#             tap's rx_packets counter in L1's sysfs, sampled every second (no tcpdump)
#   ping      guest -> guest RTT, two ptvmm guests on vale0 vs two QEMU guests on taps in a bridge
# The rate of a run is the median of its per-second rates, leaving out the first and the last
# second with traffic (partial seconds). Every guest has 1 vCPU and 256 MiB.
# Folder: ptvmm, ptvmm-pktgen, bzImage, initramfs.cpio.gz, bin/qemu-system-x86_64, share/qemu/,
# l1mod/*.ko (tun tap vhost_iotlb vhost vhost_net llc stp bridge), gmod/*.ko (virtio_* ... pktgen).
# Settings from the environment: SECS (sending time per run, 10), ROUNDS (2), PINGS (30),
# PG_CLONE / PG_BURST (pktgen's clone_skb and burst).
export PATH=/job/bin:$PATH
SECS=${SECS:-10} ROUNDS=${ROUNDS:-2} PINGS=${PINGS:-30}
PG_CLONE=${PG_CLONE:-0} PG_BURST=${PG_BURST:-1}
export PTVMM_SHM_DIR=/tmp/shm
mkdir -p "$PTVMM_SHM_DIR" res
BASE='console=ttyS0 quiet panic=-1'
QEMU='qemu-system-x86_64 -L share/qemu -M microvm,pcie=on -accel kvm -cpu host -m 256 -smp 1 -nographic -no-reboot'
errors=0
err() { echo "net-bench: error: $*"; errors=$((errors + 1)); }

for m in tun tap vhost_iotlb vhost vhost_net llc stp bridge; do
  insmod "l1mod/$m.ko" || err "insmod $m in L1 failed"
done

# --- the guest's script: prepended to the initramfs as a small cpio ---------------------------------
mkdir -p g/bench
cp gmod/*.ko g/bench/
cat >g/bench/g.sh <<'END_G'
# /bench/g.sh MODE ARGS: MODE is ptnet-tx SECS [pkt-gen options], virtio-tx SECS DSTMAC CLONE
# BURST, or ping ptnet|virtio MYIP PEERIP COUNT (COUNT 0: stay up as the peer).
mode=$1; shift
load_virtio() {
  for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover \
    net_failover virtio_net; do
    insmod /bench/$m.ko || echo "G-ERROR insmod $m"
  done
  i=0; while [ $i -lt 50 ] && [ ! -e /sys/class/net/eth0 ]; do sleep 0.1; i=$((i+1)); done
}
case $mode in
ptnet-tx)
  secs=$1; shift
  insmod /lib/modules/ptnet.ko || echo "G-ERROR insmod ptnet"
  echo G-START
  timeout -s INT "$secs" pkt-gen -i ptnet0 -f tx -l 60 "$@" >/tmp/o 2>&1
  sed 's/^/G-OUT: /' /tmp/o ;;
virtio-tx)
  secs=$1 dmac=$2 clone=$3 burst=$4
  load_virtio
  ip link set eth0 up || echo "G-ERROR eth0 up"
  insmod /bench/pktgen.ko || echo "G-ERROR insmod pktgen"
  pg=/proc/net/pktgen
  echo "add_device eth0" >$pg/kpktgend_0
  for c in "count 0" "pkt_size 60" "delay 0" "clone_skb $clone" "burst $burst" \
    "src_min 10.9.0.2" "src_max 10.9.0.2" "dst 10.9.0.1" "dst_mac $dmac" "udp_src_min 9" \
    "udp_src_max 9" "udp_dst_min 9" "udp_dst_max 9"; do
    echo "$c" >$pg/eth0 || echo "G-ERROR pktgen '$c'"
  done
  echo G-START
  echo start >$pg/pgctrl & p=$!
  sleep "$secs"
  echo stop >$pg/pgctrl
  wait $p
  sed 's/^/G-OUT: /' $pg/eth0 ;;
ping)
  drv=$1 me=$2 peer=$3 count=$4
  if [ "$drv" = ptnet ]; then insmod /lib/modules/ptnet.ko || echo "G-ERROR insmod ptnet"; else load_virtio; fi
  ip addr add "$me/24" dev eth0 && ip link set eth0 up || echo "G-ERROR eth0 up"
  echo G-UP
  if [ "$count" = 0 ]; then sleep 600; exit 0; fi
  # wait for the peer (ARP resolved, link settled), then measure
  i=0; while [ $i -lt 120 ] && ! ping -c 1 -W 1 "$peer" >/dev/null 2>&1; do i=$((i+1)); done
  ping -c "$count" -i 0.2 "$peer" >/tmp/o 2>&1
  sed 's/^/G-OUT: /' /tmp/o ;;
esac
END_G
(cd g && find . -mindepth 1 | cpio -o -H newc -R 0:0 2>/dev/null) >g.cpio
cat g.cpio initramfs.cpio.gz >initrd-bench

# --- helpers ----------------------------------------------------------------------------------------------
# "1.234 Mpps (..." per-second lines of pkt-gen, or "uptime count" samples -> one rate per line
pktgen_rates() { awk '$2 ~ /pps$/ && $3 ~ /^\(/ { u = substr($2, 1, 1); m = 1
    if (u == "K") m = 1e3; else if (u == "M") m = 1e6; else if (u == "G") m = 1e9
    print $1 * m }' "$@"; }
sample_rates() { awk 'NR > 1 && $1 > t { print ($2 - c) / ($1 - t) } { t = $1; c = $2 }' "$1"; }
# rates on stdin -> median of the nonzero ones without the first and the last (in Mpps)
steady_mpps() {
  awk '$1 > 0 { r[n++] = $1 } END { for (i = 1; i < n - 1; i++) print r[i] }' | sort -n |
    awk '{ v[n++] = $1 } END { if (n == 0) print "-"; else printf "%.3f\n", (n % 2 ? v[(n-1)/2] : (v[n/2-1] + v[n/2]) / 2) / 1e6 }'
}
# wait_for FILE PATTERN SECONDS [PID]: until PATTERN shows in FILE (0) or time is up/PID gone (1)
wait_for() {
  i=0
  while [ $i -lt $(($3 * 5)) ]; do
    tr -d '\r' <"$1" 2>/dev/null | grep -q "$2" && return 0
    [ -n "$4" ] && ! kill -0 "$4" 2>/dev/null && return 1
    sleep 0.2; i=$((i + 1))
  done
  return 1
}
sampler() { # sampler IFACE FILE: "uptime rx_packets" about every second, until killed
  while :; do
    read -r up _ </proc/uptime
    f=/sys/class/net/$1/statistics/rx_packets
    [ -r "$f" ] && read -r c <"$f" && echo "$up $c"
    sleep 1
  done >"$2"
}
row() { printf '| %-44s | %5s | %10s | %10s |\n' "$1" "$2" "$3" "$4"; echo "NETBENCH|$1|$2|$3|$4" >>res/rows; }

# --- one ptnet run: guest pkt-gen tx -> host pkt-gen rx ---------------------------------------------------
ptnet_run() { # ptnet_run NAME ROUND [pkt-gen options]
  name=$1 r=$2; shift 2
  log=res/ptnet-$name-$r
  : >"$log.rx"
  ./ptvmm-pktgen -i vale0:2 -f rx --no-verify </dev/null >"$log.rx" 2>&1 & rx=$!
  wait_for "$log.rx" ready 20 || err "host rx not ready"
  timeout $((SECS + 120)) ./ptvmm --kernel bzImage --initrd initrd-bench --memory 256 --cpus 1 \
    --netmap vale0:1 --cmdline "$BASE -- sh /bench/g.sh ptnet-tx $SECS $*" </dev/null >"$log.con" 2>&1
  rc=$?
  kill -INT $rx; wait $rx
  [ $rc = 0 ] && ! grep -q G-ERROR "$log.con" || { err "ptnet run $name: ptvmm status $rc"; tail -n 20 "$log.con"; }
  host=$(pktgen_rates "$log.rx" | steady_mpps)
  guest=$(tr -d '\r' <"$log.con" | sed -n 's/^G-OUT: //p' | pktgen_rates | steady_mpps)
  row "ptnet + guest pkt-gen ($name)" "$r" "$host" "$guest"
}

# --- one virtio run: guest kernel pktgen -> tap, counted in L1 -------------------------------------------
virtio_run() { # virtio_run VHOST ROUND
  vh=$1 r=$2 log=res/virtio-vhost$1-$2
  timeout $((SECS + 120)) $QEMU -netdev "tap,id=n0,ifname=tap0,script=no,downscript=no,vhost=$vh" \
    -device virtio-net-pci,netdev=n0,mac=02:00:00:00:09:02,romfile= -kernel bzImage -initrd initrd-bench \
    -append "$BASE -- sh /bench/g.sh virtio-tx $SECS 02:00:00:00:09:01 $PG_CLONE $PG_BURST" \
    </dev/null >"$log.con" 2>&1 & q=$!
  i=0; while [ $i -lt 100 ] && [ ! -e /sys/class/net/tap0 ]; do sleep 0.1; i=$((i+1)); done
  ip link set tap0 address 02:00:00:00:09:01 && ip link set tap0 up || err "tap0 setup"
  sampler tap0 "$log.samples" & s=$!
  wait $q; rc=$?
  kill $s; wait $s 2>/dev/null
  [ $rc = 0 ] && ! grep -q G-ERROR "$log.con" || { err "virtio run vhost=$vh: qemu status $rc"; tail -n 20 "$log.con"; }
  host=$(sample_rates "$log.samples" | steady_mpps)
  # pktgen's own result: "...  123456pps 59Mb/sec ..." over the whole run
  guest=$(tr -d '\r' <"$log.con" | sed -n 's/^G-OUT: *\([0-9]*\)pps.*/\1/p' | awk '{ printf "%.3f\n", $1 / 1e6 }')
  row "virtio-net + kernel pktgen (vhost=$vh)" "$r" "$host" "${guest:--}"
}

echo "net-bench: $ROUNDS rounds, $SECS s of sending per run, 60-byte frames, 1 vCPU guests"
busy=
if ./ptvmm-pktgen --help 2>&1 | grep -q -- --busy-poll; then busy=1; fi
echo
echo "| run                                          | round | host Mpps  | guest Mpps |"
echo "|----------------------------------------------|-------|------------|------------|"
r=1
while [ $r -le "$ROUNDS" ]; do
  ptnet_run poll "$r"
  [ -n "$busy" ] && ptnet_run busy-poll "$r" --busy-poll
  virtio_run on "$r"
  virtio_run off "$r"
  r=$((r + 1))
done

# --- ping RTT: guest -> guest --------------------------------------------------------------------------------
ping_rtt() { # ping_rtt LOG -> "min/avg/max" in ms
  tr -d '\r' <"$1" | sed -n 's/^G-OUT: round-trip min\/avg\/max = \([0-9.\/]*\) ms.*/\1/p'
}
timeout 300 ./ptvmm --kernel bzImage --initrd initrd-bench --memory 256 --cpus 1 --netmap vale0:3 \
  --cmdline "$BASE -- sh /bench/g.sh ping ptnet 10.0.0.2 10.0.0.1 0" </dev/null >res/ping-ptnet-b.con 2>&1 & b=$!
wait_for res/ping-ptnet-b.con G-UP 120 $b || err "ptnet ping peer did not come up"
timeout 300 ./ptvmm --kernel bzImage --initrd initrd-bench --memory 256 --cpus 1 --netmap vale0:1 \
  --cmdline "$BASE -- sh /bench/g.sh ping ptnet 10.0.0.1 10.0.0.2 $PINGS" </dev/null >res/ping-ptnet-a.con 2>&1
kill $b; wait $b 2>/dev/null
ptnet_rtt=$(ping_rtt res/ping-ptnet-a.con)
[ -n "$ptnet_rtt" ] || { err "no ptnet ping result"; tail -n 20 res/ping-ptnet-a.con; }

brctl addbr br0 && ip link set br0 up || err "bridge br0"
timeout 300 $QEMU -netdev tap,id=n0,ifname=tap2,script=no,downscript=no,vhost=on \
  -device virtio-net-pci,netdev=n0,mac=02:00:00:00:09:12,romfile= -kernel bzImage -initrd initrd-bench \
  -append "$BASE -- sh /bench/g.sh ping virtio 10.0.0.2 10.0.0.1 0" </dev/null >res/ping-virtio-b.con 2>&1 & b=$!
i=0; while [ $i -lt 100 ] && [ ! -e /sys/class/net/tap2 ]; do sleep 0.1; i=$((i+1)); done
brctl addif br0 tap2 && ip link set tap2 up || err "tap2 into br0"
wait_for res/ping-virtio-b.con G-UP 120 $b || err "virtio ping peer did not come up"
timeout 300 $QEMU -netdev tap,id=n0,ifname=tap1,script=no,downscript=no,vhost=on \
  -device virtio-net-pci,netdev=n0,mac=02:00:00:00:09:11,romfile= -kernel bzImage -initrd initrd-bench \
  -append "$BASE -- sh /bench/g.sh ping virtio 10.0.0.1 10.0.0.2 $PINGS" </dev/null >res/ping-virtio-a.con 2>&1 & a=$!
i=0; while [ $i -lt 100 ] && [ ! -e /sys/class/net/tap1 ]; do sleep 0.1; i=$((i+1)); done
brctl addif br0 tap1 && ip link set tap1 up || err "tap1 into br0"
wait $a
kill $b; wait $b 2>/dev/null
virtio_rtt=$(ping_rtt res/ping-virtio-a.con)
[ -n "$virtio_rtt" ] || { err "no virtio ping result"; tail -n 20 res/ping-virtio-a.con; }

echo
printf '| %-56s | %-21s |\n' "guest -> guest ping, $PINGS x 56 bytes, 0.2 s apart" "min/avg/max ms"
echo "|----------------------------------------------------------|-----------------------|"
printf '| %-56s | %-21s |\n' "ptnet (two ptvmm guests on vale0)" "${ptnet_rtt:--}" \
  "virtio-net, vhost=on (two QEMU guests, taps in a bridge)" "${virtio_rtt:--}"
echo "NETBENCH-PING|ptnet|${ptnet_rtt:--}" >>res/rows
echo "NETBENCH-PING|virtio|${virtio_rtt:--}" >>res/rows

# --- summary: medians over the rounds, and the ratio -------------------------------------------------------
echo
echo "| summary (median over rounds, host-counted)   | Mpps       |"
echo "|----------------------------------------------|------------|"
grep '^NETBENCH|' res/rows | cut -d'|' -f2 | sort -u | while IFS= read -r n; do
  m=$(grep "^NETBENCH|$n|" res/rows | cut -d'|' -f4 | grep -v '^-$' | sort -n |
    awk '{ v[k++] = $1 } END { if (k == 0) print "-"; else printf "%.3f\n", (k % 2 ? v[(k-1)/2] : (v[k/2-1] + v[k/2]) / 2) }')
  printf '| %-44s | %10s |\n' "$n" "$m"
  echo "NETBENCH-SUM|$n|$m" >>res/rows
done
best_ptnet=$(grep '^NETBENCH-SUM|ptnet' res/rows | cut -d'|' -f3 | grep -v '^-$' | sort -n | tail -n 1)
best_virtio=$(grep '^NETBENCH-SUM|virtio' res/rows | cut -d'|' -f3 | grep -v '^-$' | sort -n | tail -n 1)
if [ -n "$best_ptnet" ] && [ -n "$best_virtio" ]; then
  echo
  echo "ratio: best ptnet $best_ptnet Mpps / best virtio-net $best_virtio Mpps = $(awk -v a="$best_ptnet" -v b="$best_virtio" 'BEGIN { printf "%.1f", a / b }')x"
else
  err "no ratio: a side has no result"
fi
echo "net-bench: $errors error(s)"
exit $((errors > 0))
