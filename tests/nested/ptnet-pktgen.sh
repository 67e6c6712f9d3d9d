#!/bin/sh
# The guest pkt-gen end to end, run inside the nested harness's L1 (scripts/nested): one ptvmm
# guest D on vale2:1 loads ptnet.ko and runs /bin/pkt-gen (the static ptvmm-pktgen, the same tool
# and CLI as the host's) over /dev/ptnet0, against the host's ptvmm-pktgen on the same switch:
#   guest pkt-gen -i ptnet0 -f tx -n 1000  ->  host ptvmm-pktgen -i vale2:2 -f rx -n 1000
#   host ptvmm-pktgen -i vale2:3 -f tx -n 1000  ->  guest pkt-gen -i ptnet0 -f rx -n 1000
#   host ptvmm-pktgen -i vale2:4 -f ping -n 100  ->  guest pkt-gen -i ptnet0 -f pong -n 100
#   guest pkt-gen -i ptnet0 -f tx -n 50000 with nobody listening (ring full, poll() for space)
# counts exact and every frame verified (IP/UDP checksums) on both sides.
# Each check prints "ok - name" or "not ok - name"; the last line is "N passed, M failed" and the
# exit status is the failure count.
# Expects in the current folder: lib.sh (tests/nested/lib.sh), ptvmm, ptvmm-pktgen, bzImage, initramfs.cpio.gz (with
# lib/modules/ptnet.ko and bin/pkt-gen: guest-images/build copies the static pkt-gen when it was
# built first, see its header), e.g.
#   scripts/nested -c 3 -t 600 DIR tests/nested/ptnet-pktgen.sh
. ./lib.sh   # pass/fail counters, ok, not_ok, check, has, val

BASE='console=ttyS0 quiet reboot=k panic=-1'
export PTVMM_SHM_DIR=/tmp/shm
mkdir -p "$PTVMM_SHM_DIR"
# Written [x]... so that the patterns do not match themselves anywhere.
BAD='[O]ops|[B]UG:|[W]ARNING:|[C]all Trace|[G]eneral protection'

# The guest's script goes into a small cpio archive in front of the gzipped initramfs (see
# ptnet-driver.sh).
mkdir -p y/ptnet-test
cat >y/ptnet-test/d.sh <<END_D
# Guest D (vale2:1, with the host's pkt-gens): guest pkt-gen both ways through /dev/ptnet0.
dmesg -c >/dev/null
insmod /lib/modules/ptnet.ko; echo "D-INSMOD \$?"
echo "D-PKTGEN \$(ls /bin/pkt-gen)"
timeout 120 pkt-gen -i ptnet0 -f tx -n 1000 >/tmp/tx.log 2>&1; echo "D-TXRC \$?"
sed 's/^/D-TX: /' /tmp/tx.log
# rx in the background: say when it is registered (its "ready" line), so the host starts sending.
timeout 120 pkt-gen -i /dev/ptnet0 -f rx -n 1000 >/tmp/rx.log 2>&1 & p=\$!
i=0; while [ \$i -lt 60 ] && ! grep -q ready /tmp/rx.log; do sleep 1; i=\$((i+1)); done
echo "D-RX-READY \$(grep -c ready /tmp/rx.log)"
wait \$p; echo "D-RXRC \$?"
sed 's/^/D-RX: /' /tmp/rx.log
# pong for the host's ping (same handshake), then volume with nobody listening (the switch
# drops): the TX ring fills and pkt-gen sleeps in poll() for space.
timeout 120 pkt-gen -i ptnet0 -f pong -n 100 >/tmp/pong.log 2>&1 & p=\$!
i=0; while [ \$i -lt 60 ] && ! grep -q ready /tmp/pong.log; do sleep 1; i=\$((i+1)); done
echo "D-PONG-READY \$(grep -c ready /tmp/pong.log)"
wait \$p; echo "D-PONGRC \$?"
sed 's/^/D-PONG: /' /tmp/pong.log
timeout 120 pkt-gen -i ptnet0 -f tx -n 50000 >/tmp/tx2.log 2>&1; echo "D-TX2RC \$?"
sed 's/^/D-TX2: /' /tmp/tx2.log
rmmod ptnet; echo "D-RMMOD \$?"
echo "D-BAD \$(dmesg | grep -cE '$BAD')"
dmesg | grep -E '$BAD' | head -n 20 | sed "s/^/D-OOPS /"
END_D
(cd y && find . -mindepth 1 | cpio -o -H newc -R 0:0 2>/dev/null) >test-d.cpio
cat test-d.cpio initramfs.cpio.gz >initrd-d

timeout 200 ./ptvmm-pktgen -i vale2:2 -f rx -n 1000 </dev/null >hrx2.log 2>&1 &
hrx=$!
i=0; while [ $i -lt 20 ] && ! grep -q ready hrx2.log; do sleep 1; i=$((i+1)); done
t0=$(date +%s)
timeout 300 ./ptvmm --kernel bzImage --initrd initrd-d --memory 256 --cpus 1 \
  --netmap vale2:1 --mac 02:00:00:00:00:0d --cmdline "$BASE -- sh /ptnet-test/d.sh" </dev/null >d.log 2>&1 &
dpid=$!
# The host rx ends after 1000 frames; then, once the guest's pkt-gen rx is ready, the host sends.
wait $hrx; hrc=$?
i=0
while [ $i -lt 120 ] && ! grep -q 'D-RX-READY 1' d.log && kill -0 $dpid 2>/dev/null; do
  sleep 1; i=$((i+1))
done
timeout 60 ./ptvmm-pktgen -i vale2:3 -f tx -n 1000 </dev/null >htx2.log 2>&1; htc=$?
i=0
while [ $i -lt 120 ] && ! grep -q 'D-PONG-READY 1' d.log && kill -0 $dpid 2>/dev/null; do
  sleep 1; i=$((i+1))
done
timeout 60 ./ptvmm-pktgen -i vale2:4 -f ping -n 100 </dev/null >hping2.log 2>&1; hpc=$?
i=0; while [ $i -lt 120 ] && kill -0 $dpid 2>/dev/null; do sleep 1; i=$((i+1)); done
if kill -0 $dpid 2>/dev/null; then kill $dpid; echo "    (guest D still running: killed)"; fi
wait $dpid; drc=$?
echo "    (guest D ran $(( $(date +%s) - t0 )) s)"
d=$(tr -d '\r' <d.log)
echo "$d" | grep -E '^D-' | sed 's/^/    D| /'
grep -E 'ready|Sent|Received|Verified|rror|replies' hrx2.log htx2.log hping2.log | sed 's/^/    host| /'
if [ "$(val "$d" D-INSMOD)" != 0 ] || ! has "$d" "PTVMM-CMD-EXIT 0"; then
  echo "    --- guest D console (last 40 lines) ---"; echo "$d" | tail -n 40 | sed 's/^/    | /'
fi

check "insmod ptnet.ko succeeds in guest D" test "$(val "$d" D-INSMOD)" = 0
check "the initramfs has /bin/pkt-gen" test "$(val "$d" D-PKTGEN)" = /bin/pkt-gen
check "guest pkt-gen -i ptnet0 -f tx -n 1000 sends 1000 (status $(val "$d" D-TXRC))" \
  test "$(val "$d" D-TXRC)" = 0 -a -n "$(echo "$d" | grep '^D-TX: Sent 1000 packets')"
check "host pkt-gen -f rx -n 1000 gets exactly 1000 from the guest, all verified (status $hrc)" \
  test "$hrc" = 0 -a -n "$(grep '^Received 1000 packets' hrx2.log)" \
    -a -n "$(grep '^Verified 1000 good 0 bad' hrx2.log)"
check "host pkt-gen -f tx -n 1000 to the guest (status $htc)" \
  test "$htc" = 0 -a -n "$(grep '^Sent 1000 packets' htx2.log)"
check "guest pkt-gen -i /dev/ptnet0 -f rx -n 1000 gets exactly 1000, all verified (status $(val "$d" D-RXRC))" \
  test "$(val "$d" D-RXRC)" = 0 -a -n "$(echo "$d" | grep '^D-RX: Received 1000 packets')" \
    -a -n "$(echo "$d" | grep '^D-RX: Verified 1000 good 0 bad')"
check "host ping -n 100 -> guest pkt-gen -f pong: 100 replies of 100 (status $hpc)" \
  test "$hpc" = 0 -a "$(val "$d" D-PONGRC)" = 0 \
    -a -n "$(grep '^ping: 100 replies of 100,' hping2.log | tail -n1)"
check "guest pkt-gen -f tx -n 50000, nobody listening: all sent, waiting in poll() for space" \
  test "$(val "$d" D-TX2RC)" = 0 -a -n "$(echo "$d" | grep '^D-TX2: Sent 50000 packets')" \
    -a -z "$(echo "$d" | grep '^D-TX2: .*not drained')"
check "guest D: rmmod clean after pkt-gen, no oops/BUG/WARNING" \
  test "$(val "$d" D-RMMOD)" = 0 -a "$(val "$d" D-BAD)" = 0
check "guest D powers off cleanly (ptvmm status $drc)" test "$drc" -eq 0
check "the vale2 ports are removed after guest and pkt-gens exit" test -z "$(ls "$PTVMM_SHM_DIR")"

echo "$pass passed, $fail failed"
exit "$fail"
