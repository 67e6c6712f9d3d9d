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
#             (busybox ping: min/avg/max and percentiles of its per-reply times); then pkt-gen -f ping
#             in L1 (PKTPINGS round trips, percentiles from pkt-gen's --json summary) against a
#             pkt-gen -f pong on the same switch: host <-> host, and host <-> a ptvmm guest whose
#             pkt-gen pong runs on /dev/ptnet0 in poll() mode (interrupts) and with --busy-poll
#   tcp       guest -> guest TCP, one stream and 4 at once, TCP_SECS each, with /bench/tcp-rate
#             (scripts/lib/tcp-rate.c): two ptvmm guests on vale1 ports opened with ,offloads and
#             ptnet.ko vnet_hdr=1 (a 12-byte virtio-net header: checksum offload, SG, TSO, GRO),
#             the same with vnet_hdr=0 (no header, no offloads), and two QEMU guests with
#             virtio-net-pci on taps in the bridge br0, vhost=on and vhost=off. The rate is the
#             receiver's: bytes from TCP_RAMP seconds after the first byte to the last whole
#             second, over that time (tcp-rate's TCPR-RESULT).
#   cost      what a memory copy and an exit cost on this emulated CPU (scripts/lib/cpu-cost.c), in
#             L1 and in a ptvmm guest: how much of TCP's CPU per byte copies and exits can explain.
# The rate of a run is the median of its per-second rates, leaving out the first and the last
# second with traffic (partial seconds). Every guest has 1 vCPU and 256 MiB (the rings
# section's: 2 vCPUs).
# Folder: ptvmm, ptvmm-pktgen, bzImage, initramfs.cpio.gz, bin/qemu-system-x86_64, share/qemu/,
# l1mod/*.ko (tun tap vhost_iotlb vhost vhost_net llc stp bridge), gmod/*.ko (virtio_* ... pktgen),
# tcp-rate and cpu-cost (static).
# Settings from the environment: SECS (sending time per run, 10), ROUNDS (2), PINGS (30), PKTPINGS
# (2000),
# PG_CLONE / PG_BURST (pktgen's clone_skb and burst), SECTIONS (which parts run, of
# "pps rings ping cost tcp"; default all), TCP_SECS (30), TCP_RAMP (seconds left out at the start, 3),
# TCP_VARIANTS (of ptnet-hdr ptnet-nohdr ptnet-hdr-mq ptnet-hdr-4k ptnet-hdr-lossless ptnet-hdr-spin
# virtio-vhoston virtio-vhostoff; default ptnet-hdr ptnet-nohdr virtio-vhoston virtio-vhostoff; the
# others: 2 vCPUs and 2 ring pairs per guest, 4096 slots per ring, lossless ports, TX workers that
# poll TCP_SPIN us (500) before they sleep (ptvmm --netmap-tx-spin), ptnet.ko pacing_shift=0 (the
# stack's own TSO frame sizes, not the driver's default 8), all with offloads).
export PATH=/job/bin:$PATH
SECS=${SECS:-10} ROUNDS=${ROUNDS:-2} PINGS=${PINGS:-30} PKTPINGS=${PKTPINGS:-2000}
SECTIONS=${SECTIONS:-pps rings ping cost tcp} TCP_SECS=${TCP_SECS:-30} TCP_RAMP=${TCP_RAMP:-3}
TCP_VARIANTS=${TCP_VARIANTS:-ptnet-hdr ptnet-nohdr virtio-vhoston virtio-vhostoff} TCP_SPIN=${TCP_SPIN:-500}
PG_CLONE=${PG_CLONE:-0} PG_BURST=${PG_BURST:-1}
export PTVMM_SHM_DIR=/tmp/shm
mkdir -p "$PTVMM_SHM_DIR" res
BASE='console=ttyS0 quiet panic=-1'
# debug-threads=on names QEMU's threads ("CPU 0/KVM"): ./pinq finds the vCPU thread by its name,
# and the TCP section's CPU table tells QEMU's vCPU from its other threads
QEMU='qemu-system-x86_64 -name guest,debug-threads=on -L share/qemu -M microvm,pcie=on -accel kvm -cpu host -m 256 -smp 1 -nographic -no-reboot'
errors=0
err() { echo "net-bench: error: $*"; errors=$((errors + 1)); }

# Every guest's vCPU thread is pinned to an L1 CPU of its own, for both VMMs alike: an L2 vCPU
# thread that L1 moves between its CPUs under load can triple-fault in this harness (QEMU TCG's
# emulated SVM; docs/testing.md, "The guest that triple-faulted under load"), which is what ended
# a 30 s TCP run's receiving guest. Pair runs put the receiver (or the guest alone) on CPU R and
# the sender on CPU S; the VMMs' other threads (ptvmm's workers, QEMU's I/O, vhost) stay free.
if [ "$(nproc)" -ge 3 ]; then R=1 S=2; elif [ "$(nproc)" = 2 ]; then R=1 S=0; else R=0 S=0; fi
# ./pinq CPU COMMAND...: runs QEMU COMMAND with its vCPU thread ("CPU 0/KVM") pinned to CPU, as
# ptvmm's --pin-vcpus does for ptvmm; a TERM (timeout's) reaches QEMU. A vCPU it could not pin
# is a line in $PINQ_ERRORS, an error of the whole run (its end reports them).
export PINQ_ERRORS=$PWD/res/pinq-errors
: >"$PINQ_ERRORS"
cat >pinq <<'END_PINQ'
#!/bin/sh
cpu=$1; shift
"$@" & q=$!
trap 'kill $q 2>/dev/null' TERM INT
( i=0
  while [ $i -lt 200 ]; do
    for t in /proc/$q/task/*; do
      [ "$(cat "$t/comm" 2>/dev/null)" = "CPU 0/KVM" ] && taskset -p -c "$cpu" "${t##*/}" >/dev/null && exit 0
    done
    sleep 0.05; i=$((i+1))
  done
  echo "pinq: QEMU $q has no vCPU thread 'CPU 0/KVM' to pin after 10 s" | tee -a "$PINQ_ERRORS" >&2 ) &
wait $q; rc=$?
kill -0 $q 2>/dev/null && { wait $q; rc=$?; }
exit $rc
END_PINQ
chmod +x pinq

for m in tun tap vhost_iotlb vhost vhost_net llc stp bridge; do
  insmod "l1mod/$m.ko" || err "insmod $m in L1 failed"
done

# --- the guest's script: prepended to the initramfs as a small cpio ---------------------------------
mkdir -p g/bench
cp gmod/*.ko tcp-rate cpu-cost g/bench/
cat >g/bench/g.sh <<'END_G'
# /bench/g.sh MODE ARGS: MODE is ptnet-tx SECS [pkt-gen options], virtio-tx SECS DSTMAC CLONE
# BURST, or ping ptnet|virtio MYIP PEERIP COUNT (COUNT 0: stay up as the peer), or pong [pkt-gen
# options] (pkt-gen -f pong on ptnet0 until the VM is stopped).
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
cost)
  # cost MIB: cpu-cost's copy and exit timings in this guest
  /bench/cpu-cost "$1" 2>&1 || echo "G-ERROR cpu-cost $1" ;;
pong)
  insmod /lib/modules/ptnet.ko || echo "G-ERROR insmod ptnet"
  pkt-gen -i ptnet0 -f pong "$@" >/tmp/o 2>&1 & p=$!
  i=0; while [ $i -lt 300 ] && kill -0 $p 2>/dev/null && ! grep -q ready /tmp/o; do sleep 0.2; i=$((i+1)); done
  if grep -q ready /tmp/o; then echo G-PONG-READY; else echo G-PONG-FAILED; echo "G-ERROR pkt-gen pong $*"; fi
  wait $p
  sed 's/^/G-OUT: /' /tmp/o ;;
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
tcp-recv|tcp-send)
  # tcp-recv DRV HDR MYIP RAMP STREAMS...: one `tcp-rate recv` per stream count, ports 5001...
  # tcp-send DRV HDR MYIP PEERIP SECS STREAMS...: the matching senders, SECS each, in order.
  # DRV is ptnet (HDR: ptnet.ko's vnet_hdr=0|1) or virtio (HDR unused).
  drv=$1 hdr=$2 me=$3; shift 3
  if [ "$drv" = ptnet ]; then
    # HDR: ptnet.ko's vnet_hdr, or VNET_HDR:PACING_SHIFT (else the module's default)
    ps=; case $hdr in *:*) ps="pacing_shift=${hdr#*:}" hdr=${hdr%%:*} ;; esac
    insmod /lib/modules/ptnet.ko vnet_hdr="$hdr" $ps || echo "G-ERROR insmod ptnet"
    dmesg | sed -n 's/.*ptfeat \(.*\), vnet_hdr_len \([0-9]*\).*/G-HDR \2/p' | head -n 1
  else
    load_virtio
  fi
  ip addr add "$me/24" dev eth0 && ip link set eth0 up || echo "G-ERROR eth0 up"
  echo G-UP
  port=5001
  if [ "$mode" = tcp-recv ]; then
    ramp=$1; shift
    for n in "$@"; do
      /bench/tcp-rate recv $port "$n" "$ramp" >/tmp/o 2>&1 || echo "G-ERROR tcp-rate recv $n"
      sed 's/^/G-OUT: /' /tmp/o; port=$((port + 1))
    done
    sleep 4   # L1's last CPU sample (tcp_cpu) while this VMM still runs
  else
    peer=$1 secs=$2; shift 2
    i=0; while [ $i -lt 120 ] && ! ping -c 1 -W 1 "$peer" >/dev/null 2>&1; do i=$((i+1)); done
    # TCP's RetransSegs (/proc/net/snmp): segments sent again, the sign of frames lost on the way
    retrans() { awk '$1 == "Tcp:" { if (!h) { for (i = 1; i <= NF; i++) if ($i == "RetransSegs") c = i; h = 1 } else print $c }' /proc/net/snmp; }
    for n in "$@"; do
      sleep 2   # the receiver's next listener (it connects again while refused)
      r0=$(retrans)
      /bench/tcp-rate send "$peer" $port "$n" "$secs" >/tmp/o 2>&1 || echo "G-ERROR tcp-rate send $n"
      sed 's/^/G-OUT: /' /tmp/o; port=$((port + 1))
      echo "G-RETRANS $n $(( $(retrans) - r0 ))"
    done
    # bytes per frame the stack handed to the driver: above the MTU when TSO was used
    read -r tb </sys/class/net/eth0/statistics/tx_bytes; read -r tp </sys/class/net/eth0/statistics/tx_packets
    [ "$tp" -gt 0 ] || tp=1; echo "G-TXFRAME $((tb / tp))"
    sleep 2   # L1's last CPU sample (tcp_cpu) while this VMM still runs
  fi ;;
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
    tr -d '\r' 2>/dev/null <"$1" | grep -q "$2" && return 0
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
want() { case " $SECTIONS " in *" $1 "*) return 0 ;; esac; return 1; }
bridge_up() { # br0 in L1, once, for the QEMU guest pairs
  [ -e /sys/class/net/br0 ] && return 0
  brctl addbr br0 && ip link set br0 up || err "bridge br0"
}
# Every NETBENCH* row goes to res/rows and at once to the console (tee), where scripts/bench-net
# turns it into a JSON line, so the rows made before a run dies are kept.
row() { printf '| %-44s | %5s | %10s | %10s |\n' "$1" "$2" "$3" "$4"; echo "NETBENCH|$1|$2|$3|$4" | tee -a res/rows; }

# --- one ptnet run: guest pkt-gen tx -> host pkt-gen rx ---------------------------------------------------
# GVCPUS (1), GPINS ($R) and GRINGS (1): the guest's vCPUs, their L1 CPUs and its ring pairs;
# GROW: the row's name (default "ptnet + guest pkt-gen (NAME)").
ptnet_run() { # ptnet_run NAME ROUND [pkt-gen options]
  name=$1 r=$2; shift 2
  log=res/ptnet-$name-$r
  : >"$log.rx"
  ./ptvmm-pktgen -i vale0:2 -f rx --no-verify </dev/null >"$log.rx" 2>&1 & rx=$!
  wait_for "$log.rx" ready 20 || err "host rx not ready"
  timeout $((SECS + 120)) ./ptvmm --kernel bzImage --initrd initrd-bench --memory 256 --cpus "${GVCPUS:-1}" \
    --pin-vcpus "${GPINS:-$R}" --netmap vale0:1 --netmap-rings "${GRINGS:-1}" \
    --cmdline "$BASE -- sh /bench/g.sh ptnet-tx $SECS $*" </dev/null >"$log.con" 2>&1
  rc=$?
  kill -INT $rx; wait $rx
  [ $rc = 0 ] && ! grep -q G-ERROR "$log.con" || { err "ptnet run $name: ptvmm status $rc"; tail -n 20 "$log.con"; }
  host=$(pktgen_rates "$log.rx" | steady_mpps)
  guest=$(tr -d '\r' <"$log.con" | sed -n 's/^G-OUT: //p' | pktgen_rates | steady_mpps)
  row "${GROW:-ptnet + guest pkt-gen ($name)}" "$r" "$host" "$guest"
}

# --- one virtio run: guest kernel pktgen -> tap, counted in L1 -------------------------------------------
virtio_run() { # virtio_run VHOST ROUND
  vh=$1 r=$2 log=res/virtio-vhost$1-$2
  timeout $((SECS + 120)) ./pinq $R $QEMU -netdev "tap,id=n0,ifname=tap0,script=no,downscript=no,vhost=$vh" \
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

# --- TCP guest -> guest: scripts/lib/net-bench-tcp.sh (tcp_section and its helpers) -------------------
. ./net-bench-tcp.sh

echo "net-bench: sections: $SECTIONS; 1 vCPU guests with 256 MiB"
if want pps; then
  echo "net-bench: packet rates: $ROUNDS rounds, $SECS s of sending per run, 60-byte frames"
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
fi

if want rings; then
  # --- ring pairs: one guest with 2 vCPUs and 2 TX + 2 RX rings, pkt-gen with 1 and 2 threads ---
  # (-p 2 -a 0: thread i on vCPU i registers ring pair i); the host's receiver counts both.
  echo
  echo "net-bench: ring pairs: $ROUNDS rounds, $SECS s of sending per run, 60-byte frames, a 2-vCPU guest with 2+2 rings"
  echo
  echo "| run                                          | round | host Mpps  | guest Mpps |"
  echo "|----------------------------------------------|-------|------------|------------|"
  GVCPUS=2 GPINS=$R,$S GRINGS=2 r=1
  while [ $r -le "$ROUNDS" ]; do
    GROW="rings 2+2: guest pkt-gen -p 1"; ptnet_run rings-p1 "$r"
    GROW="rings 2+2: guest pkt-gen -p 2"; ptnet_run rings-p2 "$r" -p 2 -a 0
    r=$((r + 1))
  done
  GVCPUS= GPINS= GRINGS= GROW=
fi

if want ping; then
  # --- ping RTT: guest -> guest --------------------------------------------------------------------------------
  # ping_pcts LOG -> "p50|p90|p99|p99.9|N" in ms over the N per-reply times (nearest rank, as
  # pkt-gen's), or "-|-|-|-|0"
  ping_pcts() {
    tr -d '\r' <"$1" | sed -n 's/^G-OUT: .* time=\([0-9.]*\) ms.*/\1/p' | sort -n | awk '{ v[++n] = $1 }
      END { if (n == 0) { print "-|-|-|-|0"; exit }
        split("50 90 99 99.9", P, " ")
        for (i = 1; i <= 4; i++) { x = P[i] / 100 * n; r = int(x); if (r < x) r++; if (r < 1) r = 1; printf "%s|", v[r] }
        print n }'
  }
  ping_rtt() { # ping_rtt LOG -> "min/avg/max" in ms
    tr -d '\r' <"$1" | sed -n 's/^G-OUT: round-trip min\/avg\/max = \([0-9.\/]*\) ms.*/\1/p'
  }
  timeout 300 ./ptvmm --kernel bzImage --initrd initrd-bench --memory 256 --cpus 1 --pin-vcpus $R --netmap vale0:3 \
    --cmdline "$BASE -- sh /bench/g.sh ping ptnet 10.0.0.2 10.0.0.1 0" </dev/null >res/ping-ptnet-b.con 2>&1 & b=$!
  wait_for res/ping-ptnet-b.con G-UP 120 $b || err "ptnet ping peer did not come up"
  timeout 300 ./ptvmm --kernel bzImage --initrd initrd-bench --memory 256 --cpus 1 --pin-vcpus $S --netmap vale0:1 \
    --cmdline "$BASE -- sh /bench/g.sh ping ptnet 10.0.0.1 10.0.0.2 $PINGS" </dev/null >res/ping-ptnet-a.con 2>&1
  kill $b; wait $b 2>/dev/null
  ptnet_rtt=$(ping_rtt res/ping-ptnet-a.con)
  [ -n "$ptnet_rtt" ] || { err "no ptnet ping result"; tail -n 20 res/ping-ptnet-a.con; }

  bridge_up
  timeout 300 ./pinq $R $QEMU -netdev tap,id=n0,ifname=tap2,script=no,downscript=no,vhost=on \
    -device virtio-net-pci,netdev=n0,mac=02:00:00:00:09:12,romfile= -kernel bzImage -initrd initrd-bench \
    -append "$BASE -- sh /bench/g.sh ping virtio 10.0.0.2 10.0.0.1 0" </dev/null >res/ping-virtio-b.con 2>&1 & b=$!
  i=0; while [ $i -lt 100 ] && [ ! -e /sys/class/net/tap2 ]; do sleep 0.1; i=$((i+1)); done
  brctl addif br0 tap2 && ip link set tap2 up || err "tap2 into br0"
  wait_for res/ping-virtio-b.con G-UP 120 $b || err "virtio ping peer did not come up"
  timeout 300 ./pinq $S $QEMU -netdev tap,id=n0,ifname=tap1,script=no,downscript=no,vhost=on \
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
  echo "NETBENCH-PING|ptnet|${ptnet_rtt:--}|$(ping_pcts res/ping-ptnet-a.con)" | tee -a res/rows
  echo "NETBENCH-PING|virtio|${virtio_rtt:--}|$(ping_pcts res/ping-virtio-a.con)" | tee -a res/rows
  echo
  printf '| %-44s | %s |\n' "guest -> guest ping, $PINGS x 56 bytes (ms)" "p50 | p90 | p99 | p99.9 | replies"
  echo "|----------------------------------------------|-----|-----|-----|-------|---------|"
  grep '^NETBENCH-PING|' res/rows | while IFS='|' read -r _ n _ a b c d e; do printf '| %-44s | %s | %s | %s | %s | %s |\n' "$n" "$a" "$b" "$c" "$d" "$e"; done

  # --- pkt-gen ping in L1 against a pkt-gen pong: host <-> host, host <-> guest -----------------------------
  # pktping_row NAME LOG: the --json summary's RTT figures in us -> a table row and a NETBENCH-PKTPING row
  # (sent|replies|min|p50|p90|p99|p99.9|max|avg)
  us_of() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" | awk '{ printf "%.1f", $1 / 1000 }'; }
  pktping_row() {
    j=$(grep '"type":"summary"' "$2" | tail -n 1)
    [ -n "$j" ] || { err "pktping $1: no summary from pkt-gen ping"; tail -n 5 "$2"; }
    sent=$(echo "$j" | sed -n 's/.*"pkts":\([0-9]*\).*/\1/p') got=$(echo "$j" | sed -n 's/.*"replies":\([0-9]*\).*/\1/p')
    r="${sent:--}|${got:--}"
    for k in min_ns p50_ns p90_ns p99_ns p99_9_ns max_ns avg_ns; do v=$(echo "$j" | us_of $k); r="$r|${v:--}"; done
    echo "NETBENCH-PKTPING|$1|$r" | tee -a res/rows
    echo "$r" | awk -F'|' -v n="$1" '{ printf "| %-44s | %s of %s | %s | %s | %s | %s | %s | %s | %s |\n", n, $2, $1, $3, $4, $5, $6, $7, $8, $9 }'
  }
  echo
  echo "net-bench: pkt-gen ping -n $PKTPINGS (60-byte frames, one in flight) against pkt-gen pong"
  echo
  echo "| pkt-gen ping -> pong                         | replies | min | p50 | p90 | p99 | p99.9 | max | avg (us) |"
  echo "|----------------------------------------------|---------|-----|-----|-----|-----|-------|-----|----------|"
  ./ptvmm-pktgen -i vale6:2 -f pong </dev/null >res/pktping-hh.pong 2>&1 & pp=$!
  wait_for res/pktping-hh.pong ready 20 $pp || err "host pong not ready"
  timeout 300 ./ptvmm-pktgen -i vale6:1 -f ping -n "$PKTPINGS" --json </dev/null >res/pktping-hh.ping 2>&1 ||
    err "pktping host-host: pkt-gen ping status $?"
  kill -INT $pp; wait $pp 2>/dev/null
  pktping_row host-host res/pktping-hh.ping
  for mode in interrupt busy-poll; do
    opt=; [ "$mode" = busy-poll ] && opt=--busy-poll
    log=res/pktping-hg-$mode sw=vale7; [ "$mode" = busy-poll ] && sw=vale8
    timeout 400 ./ptvmm --kernel bzImage --initrd initrd-bench --memory 256 --cpus 1 --pin-vcpus $R --netmap $sw:1 \
      --cmdline "$BASE -- sh /bench/g.sh pong $opt" </dev/null >"$log.con" 2>&1 & vm=$!
    if wait_for "$log.con" G-PONG- 120 $vm && grep -q G-PONG-READY "$log.con"; then
      timeout 300 ./ptvmm-pktgen -i $sw:2 -f ping -n "$PKTPINGS" --json </dev/null >"$log.ping" 2>&1 ||
        err "pktping host-guest-$mode: pkt-gen ping status $?"
    else
      err "pktping host-guest-$mode: the guest's pong never became ready"; tail -n 20 "$log.con"
    fi
    kill $vm; wait $vm 2>/dev/null
    pktping_row "host-guest-$mode" "$log.ping"
  done
fi

if want cost; then
  cost_section
fi

if want tcp; then
  tcp_section
fi

if want pps || want rings; then
  # --- summary: medians over the rounds, and the ratio -------------------------------------------------------
  echo
  echo "| summary (median over rounds, host-counted)   | Mpps       |"
  echo "|----------------------------------------------|------------|"
  grep '^NETBENCH|' res/rows | cut -d'|' -f2 | sort -u | while IFS= read -r n; do
    m=$(grep "^NETBENCH|$n|" res/rows | cut -d'|' -f4 | grep -v '^-$' | sort -n |
      awk '{ v[k++] = $1 } END { if (k == 0) print "-"; else printf "%.3f\n", (k % 2 ? v[(k-1)/2] : (v[k/2-1] + v[k/2]) / 2) }')
    printf '| %-44s | %10s |\n' "$n" "$m"
    echo "NETBENCH-SUM|$n|$m" | tee -a res/rows
  done
  sum_of() { grep "^NETBENCH-SUM|$1" res/rows | cut -d'|' -f3 | grep -v '^-$' | sort -n | tail -n 1; }
  ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
  if want pps; then
    best_ptnet=$(sum_of ptnet) best_virtio=$(sum_of virtio)
    if [ -n "$best_ptnet" ] && [ -n "$best_virtio" ]; then
      echo
      echo "ratio: best ptnet $best_ptnet Mpps / best virtio-net $best_virtio Mpps = $(ratio "$best_ptnet" "$best_virtio")x"
    else
      err "no ratio: a side has no result"
    fi
  fi
  if want rings; then
    one=$(sum_of 'rings 2+2: guest pkt-gen -p 1') two=$(sum_of 'rings 2+2: guest pkt-gen -p 2')
    if [ -n "$one" ] && [ -n "$two" ]; then
      echo
      echo "ring pairs: 2 threads $two Mpps / 1 thread $one Mpps = $(ratio "$two" "$one")x"
    else
      err "no ring-pair ratio: a run has no result"
    fi
  fi
fi
while read -r line; do err "$line"; done <"$PINQ_ERRORS"
echo "net-bench: $errors error(s)"
exit $((errors > 0))
