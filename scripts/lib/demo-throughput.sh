#!/bin/sh
# scripts/lib/demo-throughput.sh — the pkt-gen part of scripts/demo, run where ptvmm can boot
# Linux (inside the nested harness's L1 here; directly on a hardware-KVM host). Folder: ptvmm,
# ptvmm-pktgen, bzImage, initramfs.cpio.gz (with ptnet.ko and the static guest pkt-gen).
# A guest with --netmap vale0:1 loads ptnet.ko and runs pkt-gen on /dev/ptnet0 against a host
# pkt-gen on vale0:2: guest -> host, then host -> guest, N 60-byte frames each; beside it,
# host pkt-gen -> host pkt-gen on vale9 for reference. Prints a table.
N=${DEMO_FRAMES:-100000}
# Host -> guest is paced (-R): the nested guest drains far slower than the host sends, and a VALE
# switch drops what does not fit rather than blocking the sender.
RATE=${DEMO_RATE:-100000}
# Receivers do not count to N (a slow receiver loses frames to a VALE switch, by design): they
# run until stopped with SIGINT, then print their totals and speed.
export PTVMM_SHM_DIR=${PTVMM_SHM_DIR:-/tmp/shm}
mkdir -p "$PTVMM_SHM_DIR"

# "Speed: 1.234 Mpps Bandwidth: 592.3 Mbps" -> "1.234 0.592" (Mpps Gbit/s)
speed() {
  sed 's/^G-[A-Z]*: //' "$@" | awk '/^Speed:/ { p = $2; pu = substr($3, 1, 1); b = $5; bu = substr($6, 1, 1)
    f["K"] = 1e3; f["M"] = 1e6; f["G"] = 1e9
    pps = p * ((pu in f) ? f[pu] : 1); bps = b * ((bu in f) ? f[bu] : 1)
    printf "%.3f %.3f\n", pps / 1e6, bps / 1e9 }' | tail -n 1
}

mkdir -p demo/ptnet-demo
cat >demo/ptnet-demo/g.sh <<END_G
insmod /lib/modules/ptnet.ko || echo "DEMO-ERROR insmod"
timeout 60 pkt-gen -i ptnet0 -f tx -n $N -l 60 >/tmp/tx.log 2>&1
sed 's/^/G-TX: /' /tmp/tx.log
timeout -s INT 15 pkt-gen -i ptnet0 -f rx -n $N >/tmp/rx.log 2>&1 & p=\$!
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
sleep 1
timeout 60 ./ptvmm-pktgen -i vale9:1 -f tx -n "$N" -l 60 </dev/null >ref-tx.log 2>&1
sleep 1; kill -INT $r; wait $r

# Guest -> host, then host -> guest.
./ptvmm-pktgen -i vale0:2 -f rx </dev/null >hrx.log 2>&1 &
hrx=$!
i=0; while [ $i -lt 20 ] && ! grep -q ready hrx.log; do sleep 1; i=$((i+1)); done
timeout 300 ./ptvmm --kernel bzImage --initrd initrd-demo --memory 256 --cpus 1 \
  --netmap vale0:1 --cmdline "console=ttyS0 quiet panic=-1 -- sh /ptnet-demo/g.sh" \
  </dev/null >guest.log 2>&1 &
g=$!
i=0
while [ $i -lt 120 ] && ! grep -q G-RX-READY guest.log && kill -0 $g 2>/dev/null; do sleep 1; i=$((i+1)); done
kill -INT $hrx; wait $hrx
timeout 60 ./ptvmm-pktgen -i vale0:3 -f tx -n "$N" -l 60 -R "$RATE" </dev/null >htx.log 2>&1
wait $g
grc=$?
tr -d '\r' <guest.log | grep '^G-' >g.log

row() { # row NAME FILE: frames received, Mpps, Gbit/s as the receiver measured them
  got=$(sed -n 's/.*Received \([0-9]*\) packets.*/\1/p' "$2" | tail -n 1)
  set -- "$1" "$(speed "$2")"
  printf '| %-38s | %9s | %9s | %8s | %8s |\n' "$1" "$N" "${got:--}" "${2% *}" "${2#* }"
}
echo
echo "| pkt-gen, 60-byte frames                |      sent |  received |     Mpps |   Gbit/s |"
echo "|----------------------------------------|-----------|-----------|----------|----------|"
row "guest tx -> host rx (at the host)" hrx.log
row "host tx -R $RATE -> guest rx (guest)" g.log
row "host tx -> host rx (reference)" ref-rx.log
echo
echo "(pkt-gen's own summaries)"
grep -hE '^(G-TX: |G-RX: )?(Sent|Received|Speed)' g.log hrx.log | sed 's/^/  /'
sent=$(grep -c '^G-TX: Sent' g.log); got=$(grep -c '^G-RX: Received' g.log)
[ "$grc" = 0 ] && [ "$sent" = 1 ] && [ "$got" = 1 ] && ! grep -q DEMO-ERROR guest.log || {
  echo "demo: the guest run did not complete (ptvmm status $grc); its console:"; tail -n 30 guest.log; exit 1; }
