#!/bin/sh
# The guest pkt-gen end to end, run inside the nested harness's L1 (scripts/nested): one ptvmm
# guest D on vale2:1 loads ptnet.ko and runs /bin/pkt-gen (the static ptvmm-pktgen, the same tool
# and CLI as the host's) over /dev/ptnet0, against the host's ptvmm-pktgen on the same switch:
#   guest pkt-gen -i ptnet0 -f tx -n 1000, then -f tx --busy-poll -n 1000 -l 128
#     ->  host ptvmm-pktgen -i vale2:2 -f rx (until SIGINT): exactly 2000 frames, 188000 bytes
#   host ptvmm-pktgen -i vale2:3 -f tx -n 1000  ->  guest pkt-gen -i ptnet0 -f rx -n 1000
#   host ptvmm-pktgen -i vale2:3 -f tx -n 1000 -l 100  ->  guest pkt-gen -f rx --busy-poll -n 1000
#     (a second registration right after the first: it must see only the new 100-byte frames;
#     pkt-gen does not drain before closing, the device's DELETE takes the released slots back)
#   host ptvmm-pktgen -i vale2:4 -f ping -n 100  ->  guest pkt-gen -i ptnet0 -f pong -n 100
#   guest pkt-gen -i ptnet0 -f tx -n 200000 with nobody listening (ring full, poll() for space),
#   then the same with --busy-poll (spinning on the CSB; kicks and interrupts counted)
# then two ptvmm guests on vale4: guest G's pkt-gen -f tx -n 1000 -> guest H's pkt-gen -f rx -n 1000;
#   G floods and powers off mid-run; H's port keeps working (host ping -> H's pong, 100 of 100)
# counts exact and every frame verified (IP/UDP checksums) on both sides; busy-poll kicks rarely
# and a busy-poll sender that never waits takes no interrupt.
# Each check prints "ok - name" or "not ok - name"; the last line is "N passed, M failed" and the
# exit status is the failure count.
# Expects in the current folder: lib.sh (tests/nested/lib.sh), ptvmm, ptvmm-pktgen, bzImage, initramfs.cpio.gz (with
# lib/modules/ptnet.ko and bin/pkt-gen: guest-images/build copies the static pkt-gen when it was
# built first, see its header), e.g.
#   scripts/nested -c 3 -t 600 DIR tests/nested/ptnet-pktgen.sh
. ./lib.sh   # pass/fail counters, ok, not_ok, check, has, val

BASE=$GUEST_CMDLINE
export PTVMM_SHM_DIR=/tmp/shm
mkdir -p "$PTVMM_SHM_DIR"
# Written [x]... so that the patterns do not match themselves anywhere.
BAD='[O]ops|[B]UG:|[W]ARNING:|[C]all Trace|[G]eneral protection'
LOSSLESS_N=50000                  # host -> guest D, unpaced, from a lossless port
PACED_N=20000 PACED_RATE=10000   # host -> guest D, paced: 2 s at 10 kpps (1024 slots = 100 ms of frames)

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
timeout 120 pkt-gen -i ptnet0 -f tx --busy-poll -n 1000 -l 128 >/tmp/txb.log 2>&1
echo "D-TXBUSYRC \$?"
sed 's/^/D-TXB: /' /tmp/txb.log
# rx in the background: say when it is registered (its "ready" line), so the host starts sending.
timeout 120 pkt-gen -i /dev/ptnet0 -f rx -n 1000 >/tmp/rx.log 2>&1 & p=\$!
i=0; while [ \$i -lt 60 ] && ! grep -q ready /tmp/rx.log; do sleep 1; i=\$((i+1)); done
echo "D-RX-READY \$(grep -c ready /tmp/rx.log)"
wait \$p; echo "D-RXRC \$?"
sed 's/^/D-RX: /' /tmp/rx.log
# At once a second registration, busy-polling: the host sends 100-byte frames only after it is
# ready, so anything else it counts is a stale frame of the first run.
timeout 120 pkt-gen -i ptnet0 -f rx --busy-poll -n 1000 >/tmp/rxb.log 2>&1 & p=\$!
i=0; while [ \$i -lt 60 ] && ! grep -q ready /tmp/rxb.log; do sleep 1; i=\$((i+1)); done
echo "D-RXBUSY-READY \$(grep -c ready /tmp/rxb.log)"
wait \$p; echo "D-RXBUSYRC \$?"
sed 's/^/D-RXB: /' /tmp/rxb.log
# Paced host -> guest, well below what the guest takes when flooded: nothing may be lost (the
# RX kick relay gives released slots back to the switch before a sender finds the ring full).
timeout 120 pkt-gen -i ptnet0 -f rx -n $PACED_N >/tmp/rxp.log 2>&1 & p=\$!
i=0; while [ \$i -lt 60 ] && ! grep -q ready /tmp/rxp.log; do sleep 1; i=\$((i+1)); done
echo "D-RXPACED-READY \$(grep -c ready /tmp/rxp.log)"
wait \$p; echo "D-RXPACEDRC \$?"
sed 's/^/D-RXP: /' /tmp/rxp.log
# Lossless host -> guest: an unpaced flood from a lossless host port; the switch holds the sender
# whenever the guest's ring is full, so the guest gets every frame.
timeout 120 pkt-gen -i ptnet0 -f rx -n $LOSSLESS_N >/tmp/rxl.log 2>&1 & p=\$!
i=0; while [ \$i -lt 60 ] && ! grep -q ready /tmp/rxl.log; do sleep 1; i=\$((i+1)); done
echo "D-RXLOSSLESS-READY \$(grep -c ready /tmp/rxl.log)"
wait \$p; echo "D-RXLOSSLESSRC \$?"
sed 's/^/D-RXL: /' /tmp/rxl.log
# pong for the host's ping (same handshake), then volume with nobody listening (the switch
# drops): the TX ring fills and pkt-gen sleeps in poll() for space.
timeout 120 pkt-gen -i ptnet0 -f pong -n 100 >/tmp/pong.log 2>&1 & p=\$!
i=0; while [ \$i -lt 60 ] && ! grep -q ready /tmp/pong.log; do sleep 1; i=\$((i+1)); done
echo "D-PONG-READY \$(grep -c ready /tmp/pong.log)"
wait \$p; echo "D-PONGRC \$?"
sed 's/^/D-PONG: /' /tmp/pong.log
timeout 120 pkt-gen -i ptnet0 -f tx -n 200000 >/tmp/tx2.log 2>&1; echo "D-TX2RC \$?"
sed 's/^/D-TX2: /' /tmp/tx2.log
timeout 120 pkt-gen -i ptnet0 -f tx --busy-poll -n 200000 >/tmp/tx3.log 2>&1; echo "D-TX3RC \$?"
sed 's/^/D-TX3: /' /tmp/tx3.log
rmmod ptnet; echo "D-RMMOD \$?"
echo "D-BAD \$(dmesg | grep -cE '$BAD')"
dmesg | grep -E '$BAD' | head -n 20 | sed "s/^/D-OOPS /"
END_D
(cd y && find . -mindepth 1 | cpio -o -H newc -R 0:0 2>/dev/null) >test-d.cpio
cat test-d.cpio initramfs.cpio.gz >initrd-d

timeout 200 ./ptvmm-pktgen -i vale2:2 -f rx -T 60000 </dev/null >hrx2.log 2>&1 &
hrx=$!
i=0; while [ $i -lt 20 ] && ! grep -q ready hrx2.log; do sleep 1; i=$((i+1)); done
t0=$(date +%s)
vm 300 1 --kernel bzImage --initrd initrd-d --memory 256 \
  --netmap vale2:1 --mac 02:00:00:00:00:0d --cmdline "$BASE -- sh /ptnet-test/d.sh" </dev/null >d.log 2>&1 &
dpid=$!
# The host rx counts until both guest senders are done (SIGINT: it drains and reports); then,
# once the guest's pkt-gen rx is ready, the host sends.
i=0
while [ $i -lt 120 ] && ! grep -q 'D-TXBUSYRC' d.log && kill -0 $dpid 2>/dev/null; do
  sleep 1; i=$((i+1))
done
sleep 1
kill -INT $hrx; wait $hrx; hrc=$?
i=0
while [ $i -lt 120 ] && ! grep -q 'D-RX-READY 1' d.log && kill -0 $dpid 2>/dev/null; do
  sleep 1; i=$((i+1))
done
timeout 60 ./ptvmm-pktgen -i vale2:3 -f tx -n 1000 </dev/null >htx2.log 2>&1; htc=$?
i=0
while [ $i -lt 120 ] && ! grep -q 'D-RXBUSY-READY 1' d.log && kill -0 $dpid 2>/dev/null; do
  sleep 1; i=$((i+1))
done
timeout 60 ./ptvmm-pktgen -i vale2:3 -f tx -n 1000 -l 100 </dev/null >htx3.log 2>&1; htc3=$?
i=0
while [ $i -lt 120 ] && ! grep -q 'D-RXPACED-READY 1' d.log && kill -0 $dpid 2>/dev/null; do
  sleep 1; i=$((i+1))
done
rx_drops() { ./ptvmm-vale-ctl list 2>/dev/null | awk '$2 == "vale2:1" { print $NF }'; }
drops0=$(rx_drops)
timeout 60 ./ptvmm-pktgen -i vale2:3 -f tx -n $PACED_N -R $PACED_RATE </dev/null >htxp.log 2>&1; htcp=$?
sleep 1
drops1=$(rx_drops)
i=0
while [ $i -lt 120 ] && ! grep -q 'D-RXLOSSLESS-READY 1' d.log && kill -0 $dpid 2>/dev/null; do
  sleep 1; i=$((i+1))
done
timeout 60 ./ptvmm-pktgen -i vale2:3 -f tx -n $LOSSLESS_N --lossless </dev/null >htxl.log 2>&1; htcl=$?
drops2=$(rx_drops)
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
grep -E 'ready|Sent|Received|Verified|rror|replies' hrx2.log htx2.log htx3.log htxp.log htxl.log hping2.log |
  sed 's/^/    host| /'
if [ "$(val "$d" D-INSMOD)" != 0 ] || ! has "$d" "PTVMM-CMD-EXIT 0"; then
  echo "    --- guest D console (last 40 lines) ---"; echo "$d" | tail -n 40 | sed 's/^/    | /'
fi

check "insmod ptnet.ko succeeds in guest D" test "$(val "$d" D-INSMOD)" = 0
check "the initramfs has /bin/pkt-gen" test "$(val "$d" D-PKTGEN)" = /bin/pkt-gen
check "guest pkt-gen -i ptnet0 -f tx -n 1000 sends 1000 (status $(val "$d" D-TXRC))" \
  test "$(val "$d" D-TXRC)" = 0 -a -n "$(echo "$d" | grep '^D-TX: Sent 1000 packets')"
check "guest pkt-gen -f tx --busy-poll -n 1000 -l 128 sends 1000 (status $(val "$d" D-TXBUSYRC))" \
  test "$(val "$d" D-TXBUSYRC)" = 0 -a -n "$(echo "$d" | grep '^D-TXB: Sent 1000 packets 128000 bytes')"
check "host pkt-gen -f rx gets exactly 1000 + 1000 busy-poll frames (188000 bytes), all verified (status $hrc)" \
  test "$hrc" = 0 -a -n "$(grep '^Received 2000 packets 188000 bytes' hrx2.log)" \
    -a -n "$(grep '^Verified 2000 good 0 bad' hrx2.log)"
# Busy-poll TX kicks only when the host worker asked (it sleeps when it caught up): a few per
# batch of 512 at most, never one per spin; the host raises no interrupt (appl_need_kick 0).
kb=$(echo "$d" | sed -n 's/^D-TXB: Kicks \([0-9]*\) .*/\1/p')
check "busy-poll tx: kicks only when asked ($kb for 1000 frames, at most 20), no interrupts" \
  test -n "$kb" -a "${kb:-99}" -le 20 -a -n "$(echo "$d" | grep '^D-TXB: Interrupts 0 ')"
check "host pkt-gen -f tx -n 1000 to the guest (status $htc)" \
  test "$htc" = 0 -a -n "$(grep '^Sent 1000 packets' htx2.log)"
check "guest pkt-gen -i /dev/ptnet0 -f rx -n 1000 gets exactly 1000, all verified (status $(val "$d" D-RXRC))" \
  test "$(val "$d" D-RXRC)" = 0 -a -n "$(echo "$d" | grep '^D-RX: Received 1000 packets')" \
    -a -n "$(echo "$d" | grep '^D-RX: Verified 1000 good 0 bad')"
check "host pkt-gen -f tx -n 1000 -l 100 to the guest (status $htc3)" \
  test "$htc3" = 0 -a -n "$(grep '^Sent 1000 packets' htx3.log)"
check "guest pkt-gen -f rx --busy-poll right after the first rx: exactly the 1000 new frames (100000 bytes, none stale), verified (status $(val "$d" D-RXBUSYRC))" \
  test "$(val "$d" D-RXBUSYRC)" = 0 \
    -a -n "$(echo "$d" | grep '^D-RXB: Received 1000 packets 100000 bytes')" \
    -a -n "$(echo "$d" | grep '^D-RXB: Verified 1000 good 0 bad')"
check "paced host -> guest, $PACED_N frames at $PACED_RATE pps: the guest gets exactly $PACED_N, verified; the switch dropped none (rx_drops $drops0 -> $drops1; status $htcp, $(val "$d" D-RXPACEDRC))" \
  test "$htcp" = 0 -a "$(val "$d" D-RXPACEDRC)" = 0 -a -n "$drops0" -a "$drops0" = "$drops1" \
    -a -n "$(echo "$d" | grep "^D-RXP: Received $PACED_N packets")" \
    -a -n "$(echo "$d" | grep "^D-RXP: Verified $PACED_N good 0 bad")"
check "lossless host -> guest, $LOSSLESS_N frames unpaced: the guest gets exactly $LOSSLESS_N, verified, none dropped (rx_drops $drops1 -> $drops2; status $htcl, $(val "$d" D-RXLOSSLESSRC))" \
  test "$htcl" = 0 -a "$(val "$d" D-RXLOSSLESSRC)" = 0 -a -n "$drops1" -a "$drops1" = "$drops2" \
    -a -n "$(echo "$d" | grep "^D-RXL: Received $LOSSLESS_N packets")" \
    -a -n "$(echo "$d" | grep "^D-RXL: Verified $LOSSLESS_N good 0 bad")"
check "host ping -n 100 -> guest pkt-gen -f pong: 100 replies of 100 (status $hpc)" \
  test "$hpc" = 0 -a "$(val "$d" D-PONGRC)" = 0 \
    -a -n "$(grep '^ping: 100 replies of 100,' hping2.log | tail -n1)"
check "guest pkt-gen -f tx -n 200000, nobody listening: all sent, waiting in poll() for space" \
  test "$(val "$d" D-TX2RC)" = 0 -a -n "$(echo "$d" | grep '^D-TX2: Sent 200000 packets')"
k3=$(echo "$d" | sed -n 's/^D-TX3: Kicks \([0-9]*\) .*/\1/p')
check "guest pkt-gen -f tx --busy-poll -n 200000, nobody listening: all sent, $k3 kicks (at most 1 per 100 frames)" \
  test "$(val "$d" D-TX3RC)" = 0 -a -n "$(echo "$d" | grep '^D-TX3: Sent 200000 packets')" \
    -a -n "$k3" -a "${k3:-99999}" -le 2000
echo "    speed: poll() $(echo "$d" | sed -n 's/^D-TX2: Speed: \([^p]*\)pps.*/\1/p')pps, busy-poll $(echo "$d" | sed -n 's/^D-TX3: Speed: \([^p]*\)pps.*/\1/p')pps"
check "guest D: rmmod clean after pkt-gen, no oops/BUG/WARNING" \
  test "$(val "$d" D-RMMOD)" = 0 -a "$(val "$d" D-BAD)" = 0
check "guest D powers off cleanly (ptvmm status $drc)" test "$drc" -eq 0
check "the vale2 ports are removed after guest and pkt-gens exit" test -z "$(ls "$PTVMM_SHM_DIR")"

# --- Guest pkt-gen to guest pkt-gen: two ptvmm processes on vale4 ---------------------------------
# H (vale4:2) receives G's (vale4:1) 1000 frames, exactly; then G floods and powers off mid-run;
# H's port must outlive G's: the host's ping on vale4:3 gets all its replies from H afterwards.
mkdir -p y2/ptnet-test
cat >y2/ptnet-test/h.sh <<END_H
dmesg -c >/dev/null
insmod /lib/modules/ptnet.ko; echo "H-INSMOD \$?"
timeout 120 pkt-gen -i ptnet0 -f rx -n 1000 >/tmp/rx.log 2>&1 & p=\$!
i=0; while [ \$i -lt 60 ] && ! grep -q ready /tmp/rx.log; do sleep 1; i=\$((i+1)); done
echo "H-RX-READY \$(grep -c ready /tmp/rx.log)"
wait \$p; echo "H-RXRC \$?"
sed 's/^/H-RX: /' /tmp/rx.log
# G's flood: receive until a report line with frames was followed by an idle one (G is gone).
pkt-gen -i ptnet0 -f rx >/tmp/rx2.log 2>&1 & p=\$!
i=0; seen=0
while [ \$i -lt 60 ]; do
  sleep 1; i=\$((i+1))
  last=\$(grep 'pps (' /tmp/rx2.log | tail -n 1)
  case "\$last" in "") ;; "0.000 pps"*) [ \$seen = 1 ] && break ;; *) seen=1 ;; esac
done
kill -INT \$p; wait \$p
sed 's/^/H-RX2: /' /tmp/rx2.log
timeout 120 pkt-gen -i ptnet0 -f pong -n 100 >/tmp/pong.log 2>&1 & p=\$!
i=0; while [ \$i -lt 60 ] && ! grep -q ready /tmp/pong.log; do sleep 1; i=\$((i+1)); done
echo "H-PONG-READY \$(grep -c ready /tmp/pong.log)"
wait \$p; echo "H-PONGRC \$?"
rmmod ptnet; echo "H-RMMOD \$?"
echo "H-BAD \$(dmesg | grep -cE '$BAD')"
END_H
cat >y2/ptnet-test/g.sh <<END_G
dmesg -c >/dev/null
insmod /lib/modules/ptnet.ko; echo "G-INSMOD \$?"
timeout 120 pkt-gen -i ptnet0 -f tx -n 1000 >/tmp/tx.log 2>&1; echo "G-TXRC \$?"
sed 's/^/G-TX: /' /tmp/tx.log
sleep 5  # H has all 1000 by now; then a flood, and a poweroff in the middle of it
pkt-gen -i ptnet0 -f tx >/tmp/flood.log 2>&1 & p=\$!
sleep 3
echo "G-FLOOD-RUNNING \$(kill -0 \$p && echo yes)"
echo "G-FLOOD \$(grep 'pps (' /tmp/flood.log | tail -n 1)"
echo "G-BAD \$(dmesg | grep -cE '$BAD')"
poweroff -f
END_G
(cd y2 && find . -mindepth 1 | cpio -o -H newc -R 0:0 2>/dev/null) >test-gh.cpio
cat test-gh.cpio initramfs.cpio.gz >initrd-gh
vm 300 1 --kernel bzImage --initrd initrd-gh --memory 256 \
  --netmap vale4:2 --mac 02:00:00:00:00:0b --cmdline "$BASE -- sh /ptnet-test/h.sh" </dev/null >h.log 2>&1 &
hpid=$!
i=0; while [ $i -lt 120 ] && ! grep -q 'H-RX-READY 1' h.log && kill -0 $hpid 2>/dev/null; do sleep 1; i=$((i+1)); done
vm 200 1 --kernel bzImage --initrd initrd-gh --memory 256 \
  --netmap vale4:1 --mac 02:00:00:00:00:0a --cmdline "$BASE -- sh /ptnet-test/g.sh" </dev/null >g.log 2>&1
grc=$?
ports_left=$(ls "$PTVMM_SHM_DIR" | grep -c '^ptvmm-vale\.4\.')
i=0; while [ $i -lt 120 ] && ! grep -q 'H-PONG-READY 1' h.log && kill -0 $hpid 2>/dev/null; do sleep 1; i=$((i+1)); done
timeout 60 ./ptvmm-pktgen -i vale4:3 -f ping -n 100 </dev/null >hping4.log 2>&1; hpc4=$?
i=0; while [ $i -lt 120 ] && kill -0 $hpid 2>/dev/null; do sleep 1; i=$((i+1)); done
if kill -0 $hpid 2>/dev/null; then kill $hpid; echo "    (guest H still running: killed)"; fi
wait $hpid; hrc4=$?
g=$(tr -d '\r' <g.log); h=$(tr -d '\r' <h.log)
echo "$g" | grep -E '^G-' | sed 's/^/    G| /'
echo "$h" | grep -E '^H-' | grep -v 'pps (' | sed 's/^/    H| /'
grep -E 'replies|rror' hping4.log | sed 's/^/    host| /'
check "guests G and H load ptnet.ko" test "$(val "$g" G-INSMOD)$(val "$h" H-INSMOD)" = 00
check "guest G's pkt-gen -f tx -n 1000 sends 1000 (status $(val "$g" G-TXRC))" \
  test "$(val "$g" G-TXRC)" = 0 -a -n "$(echo "$g" | grep '^G-TX: Sent 1000 packets')"
check "guest H's pkt-gen -f rx -n 1000, another ptvmm on vale4: exactly 1000, all verified" \
  test "$(val "$h" H-RXRC)" = 0 -a -n "$(echo "$h" | grep '^H-RX: Received 1000 packets')" \
    -a -n "$(echo "$h" | grep '^H-RX: Verified 1000 good 0 bad')"
check "G's flood was running when G powered off ($(val "$g" G-FLOOD))" \
  test "$(val "$g" G-FLOOD-RUNNING)" = yes -a -n "$(val "$g" G-FLOOD | grep -v '^0.000 pps')"
check "H received G's flood ($(echo "$h" | sed -n 's/^H-RX2: \(Received [0-9]* packets\).*/\1/p'))" \
  test -n "$(echo "$h" | grep '^H-RX2: Received [1-9][0-9]* packets')"
check "G powered off mid-run cleanly (ptvmm status $grc), no oops" \
  test "$grc" = 0 -a "$(val "$g" G-BAD)" = 0 -a -z "$(after_init "$g" | grep -E "$BAD")"
check "G's port is gone, H's is left ($ports_left port file(s) on vale4)" test "$ports_left" = 1
check "after G's poweroff H's port still works: host ping -n 100 -> H's pong, 100 replies (status $hpc4)" \
  test "$hpc4" = 0 -a "$(val "$h" H-PONGRC)" = 0 -a -n "$(grep '^ping: 100 replies of 100,' hping4.log | tail -n1)"
check "guest H: rmmod clean, no oops, powers off cleanly (ptvmm status $hrc4)" \
  test "$(val "$h" H-RMMOD)" = 0 -a "$(val "$h" H-BAD)" = 0 -a "$hrc4" = 0
check "the vale4 ports are removed after both guests and the pinger exit" test -z "$(ls "$PTVMM_SHM_DIR")"
if [ "$(val "$h" H-RXRC)" != 0 ] || ! has "$h" "PTVMM-CMD-EXIT 0"; then
  echo "    --- guest H console (last 30 lines) ---"; echo "$h" | tail -n 30 | sed 's/^/    | /'
fi
if [ "$grc" != 0 ]; then echo "    --- guest G console (last 30 lines) ---"; echo "$g" | tail -n 30 | sed 's/^/    | /'; fi

echo "$pass passed, $fail failed"
exit "$fail"
