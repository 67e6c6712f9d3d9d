#!/bin/sh
# The guest pkt-gen end to end, run inside the nested harness's L1 (scripts/nested): one ptvmm
# guest D on vale2:1 loads ptnet.ko and runs /bin/pkt-gen (the static ptvmm-pktgen, the same tool
# and CLI as the host's) over /dev/ptnet0, against the host's ptvmm-pktgen on the same switch:
#   guest pkt-gen -i ptnet0 -f tx -n 1000, then -f tx --busy-poll -n 1000 -l 128, then 1000
#   1514-byte frames as 3-slot chains (-M 512)
#     ->  host ptvmm-pktgen -i vale2:2 -f rx (until SIGINT): exactly 3000 frames, 1702000 bytes
#   host ptvmm-pktgen -i vale2:3 -f tx -n 1000  ->  guest pkt-gen -i ptnet0 -f rx -n 1000
#   host ptvmm-pktgen -i vale2:3 -f tx -n 1000 -l 100  ->  guest pkt-gen -f rx --busy-poll -n 1000
#     (a second registration right after the first: it must see only the new 100-byte frames;
#     pkt-gen does not drain before closing, the device's DELETE takes the released slots back)
#   host ptvmm-pktgen -i vale2:4 -f ping -n 100  ->  guest pkt-gen -i ptnet0 -f pong -n 100
#   guest pkt-gen -i ptnet0 -f tx -n 200000 with nobody listening (ring full, poll() for space),
#   then the same with --busy-poll (spinning on the CSB; kicks and interrupts counted)
# then two ptvmm guests on vale4: guest G's pkt-gen -f tx -n 1000 -> guest H's pkt-gen -f rx -n 1000;
#   G floods and powers off mid-run; H's port keeps working (host ping -> H's pong, 100 of 100)
# then guest M with 2 vCPUs and 2 TX + 2 RX rings on vale5: pkt-gen -f tx -p 2 -a 0 (a thread per
#   vCPU, each on its own ring pair: PTNET_IOC_REGISTER_RING), polling and busy-polling, 20000
#   each -> host pkt-gen -f rx: exactly 40000; a taken ring and a third pair are refused
# counts exact and every frame verified (IP/UDP checksums) on both sides; busy-poll kicks rarely
# and a busy-poll sender that never waits takes no interrupt.
# Each check prints "ok - name" or "not ok - name"; the last line is "N passed, M failed" and the
# exit status is the failure count.
# Expects in the current folder: lib.sh and guest-lib.sh (tests/nested/), ptvmm, ptvmm-pktgen, bzImage, initramfs.cpio.gz (with
# lib/modules/ptnet.ko and bin/pkt-gen: guest-images/build copies the static pkt-gen when it was
# built first, see its header), e.g.
#   scripts/nested -c 3 -t 600 DIR tests/nested/ptnet-pktgen.sh
. ./lib.sh   # checks, guest scripts and initrds, boot_guest, host_rx, waiting (tests/nested/lib.sh)

use_shm_dir
LOSSLESS_N=50000                  # host -> guest D, unpaced, from a lossless port
PACED_N=20000 PACED_RATE=10000   # host -> guest D, paced: 2 s at 10 kpps (1024 slots = 100 ms of frames)

# --- guest D against the host's pkt-gens on vale2 ----------------------------------------------
# Each of D's receivers says TAG-READY 1 once registered (guest-lib.sh's pktgen_ready): the host
# sends only then.
guest_script gd d.sh <<'EOF'
# Guest D (vale2:1, with the host's pkt-gens): guest pkt-gen both ways through /dev/ptnet0.
. /test/lib.sh
dmesg -c >/dev/null
insmod /lib/modules/ptnet.ko; echo "D-INSMOD $?"
echo "D-PKTGEN $(ls /bin/pkt-gen)"
pktgen D-TX -i ptnet0 -f tx -n 1000
pktgen D-TXB -i ptnet0 -f tx --busy-poll -n 1000 -l 128
# Multi-slot frames through the NIC: each 1514-byte frame as a chain of 512+512+490 bytes
# (NS_MOREFRAG), paced so that the host receiver's ring never holds more than a few.
pktgen D-TXF -i ptnet0 -f tx -n 1000 -l 1514 -M 512 -R 20000
pktgen_ready D-RX -i /dev/ptnet0 -f rx -n 1000
# At once a second registration, busy-polling: the host sends 100-byte frames only after it is
# ready, so anything else it counts is a stale frame of the first run.
pktgen_ready D-RXB -i ptnet0 -f rx --busy-poll -n 1000
# Paced host -> guest, well below what the guest takes when flooded: nothing may be lost (the
# RX kick relay gives released slots back to the switch before a sender finds the ring full).
pktgen_ready D-RXP -i ptnet0 -f rx -n "$PACED_N"
# Lossless host -> guest: an unpaced flood from a lossless host port; the switch holds the sender
# whenever the guest's ring is full, so the guest gets every frame.
pktgen_ready D-RXL -i ptnet0 -f rx -n "$LOSSLESS_N"
# pong for the host's ping, then volume with nobody listening (the switch drops): the TX ring
# fills and pkt-gen sleeps in poll() for space; then the same busy-polling.
pktgen_ready D-PONG -i ptnet0 -f pong -n 100
pktgen D-TX2 -i ptnet0 -f tx -n 200000
pktgen D-TX3 -i ptnet0 -f tx --busy-poll -n 200000
rmmod ptnet; echo "D-RMMOD $?"
report_bad D
EOF
guest_vars gd PACED_N LOSSLESS_N
pack_initrd gd initrd-d

host_rx hrx2.log -i vale2:2 -f rx -T 60000
hrx=$HOST_RX
t0=$(date +%s)
boot_guest 300 initrd-d d.sh vale2:1 02:00:00:00:00:0d >d.log 2>&1 &
dpid=$!
# The host rx counts until the three guest senders are done (SIGINT: it drains and reports).
wait_for d.log 'D-TXF-RC' 120 $dpid
sleep 1
kill -INT $hrx; wait $hrx; hrc=$?
wait_for d.log 'D-RX-READY 1' 120 $dpid
host_pktgen htx2.log -i vale2:3 -f tx -n 1000; htc=$?
wait_for d.log 'D-RXB-READY 1' 120 $dpid
host_pktgen htx3.log -i vale2:3 -f tx -n 1000 -l 100; htc3=$?
wait_for d.log 'D-RXP-READY 1' 120 $dpid
rx_drops() { ./ptvmm-vale-ctl list 2>/dev/null | awk '$2 == "vale2:1" { print $NF }'; }
drops0=$(rx_drops)
host_pktgen htxp.log -i vale2:3 -f tx -n $PACED_N -R $PACED_RATE; htcp=$?
sleep 1
drops1=$(rx_drops)
wait_for d.log 'D-RXL-READY 1' 120 $dpid
host_pktgen htxl.log -i vale2:3 -f tx -n $LOSSLESS_N --lossless; htcl=$?
drops2=$(rx_drops)
wait_for d.log 'D-PONG-READY 1' 120 $dpid
host_pktgen hping2.log -i vale2:4 -f ping -n 100; hpc=$?
await D $dpid 120; drc=$?
echo "    (guest D ran $(( $(date +%s) - t0 )) s)"
d=$(console d.log)
echo "$d" | grep -E '^D-' | show D
grep -E 'ready|Sent|Received|Verified|rror|replies' hrx2.log htx2.log htx3.log htxp.log htxl.log hping2.log |
  show host
ran_through D "$d" || show_tail D "$d" 40

check "insmod ptnet.ko succeeds in guest D" test "$(val "$d" D-INSMOD)" = 0
check "the initramfs has /bin/pkt-gen" test "$(val "$d" D-PKTGEN)" = /bin/pkt-gen
check "guest pkt-gen -i ptnet0 -f tx -n 1000 sends 1000 (status $(val "$d" D-TX-RC))" \
  test "$(val "$d" D-TX-RC)" = 0 -a -n "$(echo "$d" | grep '^D-TX: Sent 1000 packets')"
check "guest pkt-gen -f tx --busy-poll -n 1000 -l 128 sends 1000 (status $(val "$d" D-TXB-RC))" \
  test "$(val "$d" D-TXB-RC)" = 0 -a -n "$(echo "$d" | grep '^D-TXB: Sent 1000 packets 128000 bytes')"
check "guest pkt-gen -f tx -l 1514 -M 512 sends 1000 frames as 3-slot chains (status $(val "$d" D-TXF-RC))" \
  test "$(val "$d" D-TXF-RC)" = 0 -a -n "$(echo "$d" | grep '^D-TXF: Sent 1000 packets 1514000 bytes')"
check "host pkt-gen -f rx gets exactly 1000 + 1000 busy-poll + 1000 chained frames (1702000 bytes), all verified (status $hrc)" \
  test "$hrc" = 0 -a -n "$(grep '^Received 3000 packets 1702000 bytes' hrx2.log)" \
    -a -n "$(grep '^Verified 3000 good 0 bad' hrx2.log)"
# Busy-poll TX kicks only when the host worker asked (it sleeps when it caught up): a few per
# batch of 512 at most, never one per spin; the host raises no interrupt (appl_need_kick 0).
kb=$(echo "$d" | sed -n 's/^D-TXB: Kicks \([0-9]*\) .*/\1/p')
check "busy-poll tx: kicks only when asked ($kb for 1000 frames, at most 20), no interrupts" \
  test -n "$kb" -a "${kb:-99}" -le 20 -a -n "$(echo "$d" | grep '^D-TXB: Interrupts 0 ')"
check "host pkt-gen -f tx -n 1000 to the guest (status $htc)" \
  test "$htc" = 0 -a -n "$(grep '^Sent 1000 packets' htx2.log)"
check "guest pkt-gen -i /dev/ptnet0 -f rx -n 1000 gets exactly 1000, all verified (status $(val "$d" D-RX-RC))" \
  test "$(val "$d" D-RX-RC)" = 0 -a -n "$(echo "$d" | grep '^D-RX: Received 1000 packets')" \
    -a -n "$(echo "$d" | grep '^D-RX: Verified 1000 good 0 bad')"
check "host pkt-gen -f tx -n 1000 -l 100 to the guest (status $htc3)" \
  test "$htc3" = 0 -a -n "$(grep '^Sent 1000 packets' htx3.log)"
check "guest pkt-gen -f rx --busy-poll right after the first rx: exactly the 1000 new frames (100000 bytes, none stale), verified (status $(val "$d" D-RXB-RC))" \
  test "$(val "$d" D-RXB-RC)" = 0 \
    -a -n "$(echo "$d" | grep '^D-RXB: Received 1000 packets 100000 bytes')" \
    -a -n "$(echo "$d" | grep '^D-RXB: Verified 1000 good 0 bad')"
check "paced host -> guest, $PACED_N frames at $PACED_RATE pps: the guest gets exactly $PACED_N, verified; the switch dropped none (rx_drops $drops0 -> $drops1; status $htcp, $(val "$d" D-RXP-RC))" \
  test "$htcp" = 0 -a "$(val "$d" D-RXP-RC)" = 0 -a -n "$drops0" -a "$drops0" = "$drops1" \
    -a -n "$(echo "$d" | grep "^D-RXP: Received $PACED_N packets")" \
    -a -n "$(echo "$d" | grep "^D-RXP: Verified $PACED_N good 0 bad")"
check "lossless host -> guest, $LOSSLESS_N frames unpaced: the guest gets exactly $LOSSLESS_N, verified, none dropped (rx_drops $drops1 -> $drops2; status $htcl, $(val "$d" D-RXL-RC))" \
  test "$htcl" = 0 -a "$(val "$d" D-RXL-RC)" = 0 -a -n "$drops1" -a "$drops1" = "$drops2" \
    -a -n "$(echo "$d" | grep "^D-RXL: Received $LOSSLESS_N packets")" \
    -a -n "$(echo "$d" | grep "^D-RXL: Verified $LOSSLESS_N good 0 bad")"
check "host ping -n 100 -> guest pkt-gen -f pong: 100 replies of 100 (status $hpc)" \
  test "$hpc" = 0 -a "$(val "$d" D-PONG-RC)" = 0 \
    -a -n "$(grep '^ping: 100 replies of 100,' hping2.log | tail -n1)"
check "guest pkt-gen -f tx -n 200000, nobody listening: all sent, waiting in poll() for space" \
  test "$(val "$d" D-TX2-RC)" = 0 -a -n "$(echo "$d" | grep '^D-TX2: Sent 200000 packets')"
k3=$(echo "$d" | sed -n 's/^D-TX3: Kicks \([0-9]*\) .*/\1/p')
check "guest pkt-gen -f tx --busy-poll -n 200000, nobody listening: all sent, $k3 kicks (at most 1 per 100 frames)" \
  test "$(val "$d" D-TX3-RC)" = 0 -a -n "$(echo "$d" | grep '^D-TX3: Sent 200000 packets')" \
    -a -n "$k3" -a "${k3:-99999}" -le 2000
echo "    speed: poll() $(echo "$d" | sed -n 's/^D-TX2: Speed: \([^p]*\)pps.*/\1/p')pps, busy-poll $(echo "$d" | sed -n 's/^D-TX3: Speed: \([^p]*\)pps.*/\1/p')pps"
check "guest D: rmmod clean after pkt-gen, no oops/BUG/WARNING" \
  test "$(val "$d" D-RMMOD)" = 0 -a "$(val "$d" D-BAD)" = 0
check "guest D powers off cleanly (ptvmm status $drc)" test "$drc" -eq 0
check "the vale2 ports are removed after guest and pkt-gens exit" shm_empty


# --- Guest pkt-gen to guest pkt-gen: two ptvmm processes on vale4 ---------------------------------
# H (vale4:2) receives G's (vale4:1) 1000 frames, exactly; then G floods and powers off mid-run;
# H's port must outlive G's: the host's ping on vale4:3 gets all its replies from H afterwards.
guest_script ggh h.sh <<'EOF'
. /test/lib.sh
dmesg -c >/dev/null
insmod /lib/modules/ptnet.ko; echo "H-INSMOD $?"
pktgen_ready H-RX -i ptnet0 -f rx -n 1000
# G's flood: receive until a report line with frames was followed by an idle one (G is gone).
pkt-gen -i ptnet0 -f rx >/tmp/rx2.log 2>&1 & p=$!
i=0; seen=0
while [ $i -lt 60 ]; do
  sleep 1; i=$((i+1))
  last=$(grep 'pps (' /tmp/rx2.log | tail -n 1)
  case "$last" in "") ;; "0.000 pps"*) [ $seen = 1 ] && break ;; *) seen=1 ;; esac
done
kill -INT $p; wait $p
sed 's/^/H-RX2: /' /tmp/rx2.log
pktgen_ready H-PONG -i ptnet0 -f pong -n 100
rmmod ptnet; echo "H-RMMOD $?"
report_bad H
EOF
guest_script ggh g.sh <<'EOF'
. /test/lib.sh
dmesg -c >/dev/null
insmod /lib/modules/ptnet.ko; echo "G-INSMOD $?"
pktgen G-TX -i ptnet0 -f tx -n 1000
sleep 5  # H has all 1000 by now; then a flood, and a poweroff in the middle of it
pkt-gen -i ptnet0 -f tx >/tmp/flood.log 2>&1 & p=$!
sleep 3
echo "G-FLOOD-RUNNING $(kill -0 $p && echo yes)"
echo "G-FLOOD $(grep 'pps (' /tmp/flood.log | tail -n 1)"
report_bad G
poweroff -f
EOF
pack_initrd ggh initrd-gh

boot_guest 300 initrd-gh h.sh vale4:2 02:00:00:00:00:0b >h.log 2>&1 &
hpid=$!
wait_for h.log 'H-RX-READY 1' 120 $hpid
boot_guest 200 initrd-gh g.sh vale4:1 02:00:00:00:00:0a >g.log 2>&1
grc=$?
ports_left=$(ls "$PTVMM_SHM_DIR" | grep -c '^ptvmm-vale\.4\.')
wait_for h.log 'H-PONG-READY 1' 120 $hpid
host_pktgen hping4.log -i vale4:3 -f ping -n 100; hpc4=$?
await H $hpid 120; hrc4=$?
g=$(console g.log); h=$(console h.log)
echo "$g" | grep -E '^G-' | show G
echo "$h" | grep -E '^H-' | grep -v 'pps (' | show H
grep -E 'replies|rror' hping4.log | show host
check "guests G and H load ptnet.ko" test "$(val "$g" G-INSMOD)$(val "$h" H-INSMOD)" = 00
check "guest G's pkt-gen -f tx -n 1000 sends 1000 (status $(val "$g" G-TX-RC))" \
  test "$(val "$g" G-TX-RC)" = 0 -a -n "$(echo "$g" | grep '^G-TX: Sent 1000 packets')"
check "guest H's pkt-gen -f rx -n 1000, another ptvmm on vale4: exactly 1000, all verified" \
  test "$(val "$h" H-RX-RC)" = 0 -a -n "$(echo "$h" | grep '^H-RX: Received 1000 packets')" \
    -a -n "$(echo "$h" | grep '^H-RX: Verified 1000 good 0 bad')"
check "G's flood was running when G powered off ($(val "$g" G-FLOOD))" \
  test "$(val "$g" G-FLOOD-RUNNING)" = yes -a -n "$(val "$g" G-FLOOD | grep -v '^0.000 pps')"
check "H received G's flood ($(echo "$h" | sed -n 's/^H-RX2: \(Received [0-9]* packets\).*/\1/p'))" \
  test -n "$(echo "$h" | grep '^H-RX2: Received [1-9][0-9]* packets')"
check "G powered off mid-run cleanly (ptvmm status $grc), no oops" \
  test "$grc" = 0 -a "$(val "$g" G-BAD)" = 0 -a -z "$(after_init "$g" | grep -E "$BAD")"
check "G's port is gone, H's is left ($ports_left port file(s) on vale4)" test "$ports_left" = 1
check "after G's poweroff H's port still works: host ping -n 100 -> H's pong, 100 replies (status $hpc4)" \
  test "$hpc4" = 0 -a "$(val "$h" H-PONG-RC)" = 0 -a -n "$(grep '^ping: 100 replies of 100,' hping4.log | tail -n1)"
check "guest H: rmmod clean, no oops, powers off cleanly (ptvmm status $hrc4)" \
  test "$(val "$h" H-RMMOD)" = 0 -a "$(val "$h" H-BAD)" = 0 -a "$hrc4" = 0
check "the vale4 ports are removed after both guests and the pinger exit" shm_empty
if [ "$(val "$h" H-RX-RC)" != 0 ] || ! has "$h" "PTVMM-CMD-EXIT 0"; then show_tail H "$h" 30; fi
if [ "$grc" != 0 ]; then show_tail G "$g" 30; fi

# --- Ring pairs: a 2-vCPU guest with 2 TX + 2 RX rings, pkt-gen -p 2 -------------------------------
# Guest M (vale5:1) runs pkt-gen with a thread per vCPU, each registering its own ring pair
# (PTNET_IOC_REGISTER_RING); the host receiver on vale5:2 must count every frame of both threads.
guest_script gm m.sh <<'EOF'
. /test/lib.sh
dmesg -c >/dev/null
insmod /lib/modules/ptnet.ko; echo "M-INSMOD $?"
echo "M-CPUS $(grep -c ^processor /proc/cpuinfo)"
pktgen M-TX2 -i ptnet0 -f tx -p 2 -a 0 -n 20000 -R 20000
pktgen M-TXB2 -i ptnet0 -f tx -p 2 -a 0 --busy-poll -n 20000 -R 20000
# The driver counts the kicks of its syncs per ring (busy-poll kicks come from user space).
ptnet-ctl stats eth0 | sed -n 's/^PTNET-STAT \(tx[01]_kicks\) /M-\1 /p'
# A ring is one user's: with the whole NIC registered (-p 1), -p 2 is refused; -p 3 asks for a
# third pair the NIC does not have.
pkt-gen -i ptnet0 -f rx >/tmp/hold.log 2>&1 & h=$!
wait_ready /tmp/hold.log
pktgen M-BUSY -i ptnet0 -f tx -p 2 -n 10
kill -INT $h; wait $h
pktgen M-P3 -i ptnet0 -f tx -p 3 -n 10
# Unpaced, 1 thread then 2 (rates shown, not checked: 2 emulated vCPUs on a 2-core machine),
# unicast to the host's sink port: they must not reach the counting receiver, which may still
# be running (the host stops it a moment after M-TXB2-RC; broadcasts once added 43494 frames).
pktgen M-F1 -i ptnet0 -f tx -n 200000 -D "$SINK_MAC"
pktgen M-F2 -i ptnet0 -f tx -p 2 -a 0 -n 200000 -D "$SINK_MAC"
rmmod ptnet; echo "M-RMMOD $?"
report_bad M
EOF
SINK_MAC=02:00:00:00:00:5f
guest_vars gm SINK_MAC
pack_initrd gm initrd-m

# The floods' sink: a persistent port that announced SINK_MAC, so the switch sends frames to
# that MAC there and nowhere else (a learnt MAC stays valid while its port lives).
./ptvmm-vale-ctl create vale5:9 >/dev/null; sinkc=$?
host_pktgen hsink.log -i vale5:9 -f tx -n 1 -S "$SINK_MAC"; sinkc=$((sinkc + $?))
host_rx hrx5.log -i vale5:2 -f rx -T 60000
hrx5=$HOST_RX
GUEST_VCPUS=2
boot_guest 300 initrd-m m.sh vale5:1 02:00:00:00:00:0e --netmap-rings 2 >m.log 2>&1 &
mpid=$!
GUEST_VCPUS=1
wait_for m.log 'M-TXB2-RC' 120 $mpid
sleep 1
kill -INT $hrx5; wait $hrx5; hrc5=$?
await M $mpid 180; mrc=$?
./ptvmm-vale-ctl remove vale5:9 >/dev/null; sinkc=$((sinkc + $?))
m=$(console m.log)
echo "$m" | grep -E '^M-' | grep -v 'pps (' | show M
grep -E 'ready|Received|Verified|rror' hrx5.log | show host
check "guest M has 2 vCPUs and loads ptnet.ko; the sink port vale5:9 made and removed" \
  test "$(val "$m" M-CPUS)$(val "$m" M-INSMOD)$sinkc" = 200
check "guest pkt-gen -p 2 -a 0 -n 20000 on 2 ring pairs: 10000 sent by each thread (status $(val "$m" M-TX2-RC))" \
  test "$(val "$m" M-TX2-RC)" = 0 -a -n "$(echo "$m" | grep '^M-TX2: Sent 20000 packets')" \
    -a -n "$(echo "$m" | grep '^M-TX2: Per thread: 10000 10000 packets')"
check "the same with --busy-poll (status $(val "$m" M-TXB2-RC))" \
  test "$(val "$m" M-TXB2-RC)" = 0 -a -n "$(echo "$m" | grep '^M-TXB2: Sent 20000 packets')" \
    -a -n "$(echo "$m" | grep '^M-TXB2: Per thread: 10000 10000 packets')"
check "both TX rings were synced and kicked by the driver (tx0 $(val "$m" M-tx0_kicks), tx1 $(val "$m" M-tx1_kicks) kicks)" \
  test "$(val "$m" M-tx0_kicks)" -gt 0 -a "$(val "$m" M-tx1_kicks)" -gt 0
check "host pkt-gen -f rx gets exactly the 40000 frames of both threads, all verified (status $hrc5)" \
  test "$hrc5" = 0 -a -n "$(grep '^Received 40000 packets' hrx5.log)" \
    -a -n "$(grep '^Verified 40000 good 0 bad' hrx5.log)"
check "-p 2 while another pkt-gen holds the whole NIC: refused, the ring is taken" \
  test "$(val "$m" M-BUSY-RC)" != 0 -a -n "$(echo "$m" | grep '^M-BUSY: .*registered by another user')"
check "-p 3 on a NIC with 2 ring pairs: refused, saying so" \
  test "$(val "$m" M-P3-RC)" != 0 -a -n "$(echo "$m" | grep '^M-P3: .*the NIC has 2 TX / 2 RX rings')"
check "unpaced 200000 frames with 1 and with 2 threads to the sink: all sent" \
  test "$(val "$m" M-F1-RC)$(val "$m" M-F2-RC)" = 00 -a -n "$(echo "$m" | grep '^M-F2: Sent 200000 packets')"
echo "    speed: 1 thread $(echo "$m" | sed -n 's/^M-F1: Speed: \([^p]*\)pps.*/\1/p')pps, 2 threads $(echo "$m" | sed -n 's/^M-F2: Speed: \([^p]*\)pps.*/\1/p')pps"
check "guest M: rmmod clean, no oops, powers off cleanly (ptvmm status $mrc)" \
  test "$(val "$m" M-RMMOD)" = 0 -a "$(val "$m" M-BAD)" = 0 -a "$mrc" = 0
check "the vale5 ports are removed" shm_empty
[ "$mrc" = 0 ] || show_tail M "$m" 30

report_and_exit
