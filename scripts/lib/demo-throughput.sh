#!/bin/sh
# scripts/lib/demo-throughput.sh — the pkt-gen part of scripts/demo, run where ptvmm can boot
# Linux (inside the nested harness's L1 here; directly on a hardware-KVM host). Folder: ptvmm,
# ptvmm-pktgen, bzImage, initramfs.cpio.gz (with ptnet.ko and the static guest pkt-gen).
# A host pkt-gen receives on vale0:2; a guest with --netmap vale0:1 loads ptnet.ko and runs
# pkt-gen -f tx on /dev/ptnet0 for DEMO_SECONDS; then the guest receives while a host pkt-gen
# sends from vale0:3 for DEMO_SECONDS. Beside it, host pkt-gen -> host pkt-gen on vale9 for
# reference. Senders run unpaced (DEMO_RATE=PPS paces the host sender) and are stopped with
# SIGINT; a receiver's rate is over its first to last frame. What a receiver cannot take is
# dropped at the switch (VALE never blocks a sender), so "delivered" shows who was the limit.
# The guest's frames (broadcast) also leave through an uplink: vale0 is uplinked (packet mode) to
# a VXLAN device whose tunnel runs over a veth pair into network namespace "the other host",
# where a second switch, uplinked to that side's VXLAN device, has a host pkt-gen -f rx: the row
# "guest -> uplink -> other host". Needs root, iproute2's ip (./bin/ip when present) and the
# veth and vxlan modules (./l1mod/*.ko are loaded when present); without them the row says why.
# Prints a table; exits 1 with the guest's console if the guest run did not complete.
SECS=${DEMO_SECONDS:-3}
RATE=${DEMO_RATE:-0}
export PTVMM_SHM_DIR=${PTVMM_SHM_DIR:-/tmp/shm}
mkdir -p "$PTVMM_SHM_DIR"

# "Speed: 1.234 Mpps Bandwidth: 592.3 Mbps" -> "1.234 0.592" (Mpps Gbit/s)
speed() {
  sed 's/^G-[A-Z]*: //' "$@" | awk '/^Speed:/ { p = $2; pu = substr($3, 1, 1); b = $5; bu = substr($6, 1, 1)
    f["K"] = 1e3; f["M"] = 1e6; f["G"] = 1e9
    pps = p * ((pu in f) ? f[pu] : 1); bps = b * ((bu in f) ? f[bu] : 1)
    printf "%.3f %.3f\n", pps / 1e6, bps / 1e9 }' | tail -n 1
}
# count VERB FILE: the packets of pkt-gen's "Sent|Received N packets" summary line
count() { sed -n "s/.*$1 \([0-9]*\) packets.*/\1/p" "$2" | tail -n 1; }
# wait_for PATTERN FILE SECONDS [PID]: until FILE has PATTERN (or PID is gone)
wait_for() {
  i=0
  while [ $i -lt "$3" ] && ! grep -q "$1" "$2" 2>/dev/null; do
    [ -z "${4:-}" ] || kill -0 "$4" 2>/dev/null || return 1
    sleep 1; i=$((i + 1))
  done
  grep -q "$1" "$2"
}

# iproute2's ip: ./bin/ip when present (L1), by its path, since busybox sh runs its own applet
# for a bare `ip` whatever PATH says (and not a function: `$IP ... &` must make $! the command)
IP=ip
[ -x bin/ip ] && IP=$PWD/bin/ip
# The other "host": namespace $ONS with its own switch (directory $OSHM), joined to this host's
# vale0 through a VXLAN tunnel over a veth pair, an uplink on each side.
ONS=ptvmm-demo-$$ OSHM=$PTVMM_SHM_DIR-other UPLINK_WHY=
other_host() {
  [ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)"; return 1; }
  $IP netns list >/dev/null 2>&1 || { echo "no iproute2 ip command (ip netns)"; return 1; }
  for m in veth udp_tunnel ip6_udp_tunnel vxlan; do
    [ ! -f "l1mod/$m.ko" ] || insmod "l1mod/$m.ko" || { echo "insmod $m failed"; return 1; }
  done
  mkdir -p /run/netns "$OSHM" && { [ -e /var/run ] || { mkdir -p /var && ln -s /run /var/run; }; }
  $IP netns add "$ONS" || { echo "ip netns add failed"; return 1; }
  $IP netns exec "$ONS" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  { $IP link add dul1 mtu 1600 type veth peer name dul2 mtu 1600 netns "$ONS" &&
    $IP addr add 192.168.78.1/24 dev dul1 && $IP link set dul1 up &&
    $IP -n "$ONS" addr add 192.168.78.2/24 dev dul2 && $IP -n "$ONS" link set dul2 up &&
    $IP link add dvx1 mtu 1500 type vxlan id 43 local 192.168.78.1 remote 192.168.78.2 dev dul1 dstport 4789 &&
    { sysctl -qw net.ipv6.conf.dvx1.disable_ipv6=1 || true; } &&   # no IPv6 chatter to count
    $IP link set dvx1 up &&
    $IP -n "$ONS" link add dvx2 mtu 1500 type vxlan id 43 local 192.168.78.2 remote 192.168.78.1 dev dul2 dstport 4789 &&
    $IP -n "$ONS" link set dvx2 up; } || { echo "creating the veth pair and the VXLAN tunnel failed"; return 1; }
  ./ptvmm-vale-ctl attach vale0 dvx1 --mode packet >/dev/null &&
    $IP netns exec "$ONS" env PTVMM_SHM_DIR="$OSHM" ./ptvmm-vale-ctl attach vale0 dvx2 --mode packet >/dev/null ||
    { echo "ptvmm-vale-ctl attach failed"; return 1; }
}
other_host_down() {
  ./ptvmm-vale-ctl detach vale0 dvx1 >/dev/null 2>&1
  $IP netns exec "$ONS" env PTVMM_SHM_DIR="$OSHM" ./ptvmm-vale-ctl detach vale0 dvx2 >/dev/null 2>&1
  $IP link del dvx1 2>/dev/null; $IP link del dul1 2>/dev/null; $IP netns del "$ONS" 2>/dev/null
}
if UPLINK_WHY=$(other_host 2>&1); then
  UPLINK_WHY=
  trap other_host_down EXIT
  echo "demo: the other host is namespace $ONS, its switch joined to vale0 by uplinks over VXLAN"
else
  UPLINK_WHY=$(echo "$UPLINK_WHY" | tail -n 1)
  echo "demo: the row guest -> uplink -> other host is left out: ${UPLINK_WHY:-setup failed}"
  other_host_down
fi

mkdir -p demo/ptnet-demo
cat >demo/ptnet-demo/g.sh <<END_G
insmod /lib/modules/ptnet.ko || echo "DEMO-ERROR insmod"
timeout -s INT $SECS pkt-gen -i ptnet0 -f tx -l 60 >/tmp/tx.log 2>&1
sed 's/^/G-TX: /' /tmp/tx.log
# The host starts sending within ~2 s of G-RX-READY and sends for $SECS s.
timeout -s INT $((SECS + 5)) pkt-gen -i ptnet0 -f rx >/tmp/rx.log 2>&1 & p=\$!
i=0; while [ \$i -lt 60 ] && ! grep -q ready /tmp/rx.log; do sleep 1; i=\$((i+1)); done
echo "G-RX-READY"
wait \$p
sed 's/^/G-RX: /' /tmp/rx.log
rmmod ptnet
END_G
(cd demo && find . -mindepth 1 | cpio -o -H newc -R 0:0 2>/dev/null) >demo.cpio
cat demo.cpio initramfs.cpio.gz >initrd-demo

# Reference: host pkt-gen to host pkt-gen in the same place.
./ptvmm-pktgen -i vale9:2 -f rx </dev/null >ref-rx.log 2>&1 &
r=$!
wait_for ready ref-rx.log 20
timeout -s INT "$SECS" ./ptvmm-pktgen -i vale9:1 -f tx -l 60 -R "$RATE" </dev/null >ref-tx.log 2>&1
sleep 1; kill -INT $r; wait $r

# Guest -> host, then host -> guest.
./ptvmm-pktgen -i vale0:2 -f rx </dev/null >hrx.log 2>&1 &
hrx=$!
wait_for ready hrx.log 20
: >orx.log
if [ -z "$UPLINK_WHY" ]; then
  $IP netns exec "$ONS" env PTVMM_SHM_DIR="$OSHM" ./ptvmm-pktgen -i vale0:1 -f rx </dev/null >orx.log 2>&1 &
  orx=$!
  wait_for ready orx.log 20
fi
echo "demo: guest pkt-gen -f tx for $SECS s, host pkt-gen -f rx on vale0:2 ..."
timeout 300 ./ptvmm --kernel bzImage --initrd initrd-demo --memory 256 --cpus 1 \
  --netmap vale0:1 --cmdline "console=ttyS0 quiet panic=-1 -- sh /ptnet-demo/g.sh" \
  </dev/null >guest.log 2>&1 &
g=$!
wait_for G-RX-READY guest.log 120 $g
kill -INT $hrx; wait $hrx
if [ -z "$UPLINK_WHY" ]; then
  sleep 1; kill -INT $orx; wait $orx
  other_host_down   # before host -> guest: the host's frames go to the guest only
fi
echo "demo: host pkt-gen -f tx on vale0:3 for $SECS s, guest pkt-gen -f rx ..."
timeout -s INT "$SECS" ./ptvmm-pktgen -i vale0:3 -f tx -l 60 -R "$RATE" </dev/null >htx.log 2>&1
wait $g
grc=$?
tr -d '\r' <guest.log | grep '^G-' >g.log

row() { # row NAME SENDER-LOG RECEIVER-LOG: sent, received, delivered, the receiver's rate
  sent=$(count Sent "$2"); got=$(count Received "$3")
  pct=$(awk -v s="${sent:-0}" -v g="${got:-0}" 'BEGIN { if (s > 0) printf "%.1f%%", 100 * g / s; else print "-" }')
  set -- "$1" "$(speed "$3")"
  printf '| %-30s | %10s | %10s | %9s | %8s | %8s |\n' "$1" "${sent:--}" "${got:--}" "$pct" "${2% *}" "${2#* }"
}
grep '^G-TX: ' g.log | sed 's/^G-TX: //' >g-tx.log
grep '^G-RX: ' g.log | sed 's/^G-RX: //' >g-rx.log
paced=unpaced; [ "$RATE" = 0 ] || paced="paced at $RATE pps"
echo
echo "pkt-gen, 60-byte frames, $SECS s a direction, senders $paced; Mpps and Gbit/s at the receiver"
echo "| direction                      |       sent |   received | delivered |     Mpps |   Gbit/s |"
echo "|--------------------------------|------------|------------|-----------|----------|----------|"
row "guest -> host (ptnet, vale0)" g-tx.log hrx.log
if [ -z "$UPLINK_WHY" ]; then
  row "guest -> uplink -> other host" g-tx.log orx.log
else
  printf '| %-30s | %s |\n' "guest -> uplink -> other host" "not run: $UPLINK_WHY"
fi
row "host -> guest (ptnet, vale0)" htx.log g-rx.log
row "host -> host (reference)" ref-tx.log ref-rx.log
echo
echo "(pkt-gen's own summaries: guest tx, host rx, other host rx, host tx, guest rx)"
cat g-tx.log hrx.log orx.log htx.log g-rx.log | grep -E '^(Sent|Received|Speed)' | sed 's/^/  /'
[ "$grc" = 0 ] && grep -q '^Sent' g-tx.log && grep -q '^Received' g-rx.log && ! grep -q DEMO-ERROR guest.log || {
  echo "demo: the guest run did not complete (ptvmm status $grc); its console:"; tail -n 30 guest.log; exit 1; }
