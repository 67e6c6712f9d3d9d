#!/bin/sh
# A hostile guest on a VALE switch, run inside the nested harness's L1 (scripts/nested). Three
# ports on vale9:
#   guest X (vale9:1) leaves ptnet.ko out and runs /bin/ptnet-hostile (guest-images/ptnet/
#     ptnet-hostile.c) for HOSTILE_SECS: garbage register writes, CSB addresses outside RAM and
#     unaligned, CREATE/DELETE and kick storms, out-of-range CSB and ring indices, garbage slots,
#     ring headers and netmap_if words in the memdev BAR, MSI-X table/PBA/control garbage, decode
#     toggles and BAR sizing; then it checks that a clean CREATE still answers 0;
#   guest Y (vale9:2, ptnet.ko, guest pkt-gen) passes paced traffic meanwhile: Y -> host
#     ptvmm-pktgen rx on vale9:3 (Y_N frames at Y_RATE pps), then host tx on vale9:4 -> Y (H_N
#     frames at H_RATE pps).
# Checks: X's ptvmm survives (the guest powers off, status 0; no panic, no worker panic, its log
# not flooded), the hostile program did each kind of garbage, ran while Y's traffic flowed and
# found the device working afterwards; Y's traffic is exact: the host receiver verifies exactly
# Y_N good frames, Y verifies exactly H_N good frames
# (X's garbage floods reach both receivers too: they count it as bad frames, never as good ones,
# see ptnet-hostile.c on why it cannot replay Y's frames); no oops in Y; after everything exited
# no file is left in PTVMM_SHM_DIR and no ptvmm process remains.
# Each check prints "ok - name" or "not ok - name"; the last line is "N passed, M failed" and the
# exit status is the failure count.
# Expects in the current folder: lib.sh and guest-lib.sh (tests/nested/), ptvmm, ptvmm-pktgen, bzImage, initramfs.cpio.gz (with
# bin/ptnet-hostile, lib/modules/ptnet.ko and bin/pkt-gen), e.g.
#   scripts/nested -c 3 -t 420 DIR tests/nested/ptnet-hostile.sh
# HOSTILE_SEED picks the garbage (default: the time; printed, so a failure can be replayed).
. ./lib.sh   # checks, guest scripts and initrds, boot_guest, host_rx, waiting (tests/nested/lib.sh)

use_shm_dir
SEED=${HOSTILE_SEED:-$(date +%s)}
HOSTILE_SECS=45
Y_N=10000 Y_RATE=5000     # Y -> host: 2 s
H_N=10000 H_RATE=5000     # host -> Y: 2 s
echo "    hostile seed $SEED (HOSTILE_SEED=$SEED replays it)"

guest_script gxy x.sh <<'EOF'
# Guest X: no driver; the hostile program against the NIC, then poweroff.
. /test/lib.sh
echo "X-DRIVER $(ls /sys/bus/pci/drivers 2>/dev/null | grep -c ptnet)"
ptnet-hostile "$HOSTILE_SECS" "$SEED"; echo "X-HOSTILERC $?"
EOF
guest_script gxy y.sh <<'EOF'
# Guest Y: paced traffic both ways through /dev/ptnet0 while X is hostile.
. /test/lib.sh
dmesg -c >/dev/null
insmod /lib/modules/ptnet.ko; echo "Y-INSMOD $?"
timeout 60 pkt-gen -i ptnet0 -f tx -n "$Y_N" -R "$Y_RATE" >/tmp/tx.log 2>&1; echo "Y-TXRC $?"
sed 's/^/Y-TX: /' /tmp/tx.log
timeout -s INT 12 pkt-gen -i ptnet0 -f rx >/tmp/rx.log 2>&1 & p=$!
wait_ready /tmp/rx.log
echo "Y-RX-READY $(grep -c ready /tmp/rx.log)"
wait $p; echo "Y-RXRC $?"
sed 's/^/Y-RX: /' /tmp/rx.log | grep -v 'pps ('
rmmod ptnet; echo "Y-RMMOD $?"
report_bad Y
EOF
guest_vars gxy HOSTILE_SECS SEED Y_N Y_RATE
pack_initrd gxy initrd-xy

t0=$(date +%s)
host_rx hrx.log -i vale9:3 -f rx -T 60000
hrx=$HOST_RX
boot_guest 150 initrd-xy x.sh vale9:1 02:00:00:00:00:1a >x.log 2>&1 &
xpid=$!
# Y boots once X's garbage runs, and sends at once.
wait_for x.log 'PTNET-HOSTILE nic=' 90 $xpid
x_started=$(date +%s)
boot_guest 150 initrd-xy y.sh vale9:2 02:00:00:00:00:1b >y.log 2>&1 &
ypid=$!
wait_for y.log 'Y-TXRC' 90 $ypid
sleep 1
kill -INT $hrx; wait $hrx; hrc=$?
wait_for y.log 'Y-RX-READY 1' 60 $ypid
host_pktgen htx.log -i vale9:4 -f tx -n $H_N -R $H_RATE; htc=$?
# Was X still at it when Y's traffic ended?
x_busy=$(grep -c 'PTNET-HOSTILE-DONE' x.log)
x_busy_for=$(( $(date +%s) - x_started ))
wait $ypid; yrc=$?
wait $xpid; xrc=$?
echo "    (guests ran $(( $(date +%s) - t0 )) s)"
sleep 1
left=$(ls "$PTVMM_SHM_DIR")
procs=$(for p in /proc/[0-9]*; do tr '\0' ' ' <"$p/cmdline" 2>/dev/null; echo; done | grep -c '^\./[p]tvmm ')
x=$(console x.log); y=$(console y.log)
echo "$x" | grep -E '^(X-|PTNET-HOSTILE)' | show X
echo "$y" | grep -E '^Y-' | show Y
grep -E 'ready|Sent|Received|Verified|rror' hrx.log htx.log | show host
# X's ptvmm log: what it said about the garbage (warnings), counted by kind.
echo "$x" | grep -E '^\[[^ ]*Z (WARN|ERROR)' | sed 's/^\[[^ ]* //; s/0x[0-9a-f]*/N/g; s/([0-9]* /(N /' |
  sort | uniq -c | sort -rn | head -n 12 | show X-log

done_line=$(echo "$x" | grep '^PTNET-HOSTILE-DONE' | tail -n1)
# n KEY: the count KEY= of the hostile program's summary line.
n() { echo "$done_line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
check "guest X has no driver bound, the hostile program found the NIC (seed $SEED)" \
  test "$(val "$x" X-DRIVER)" = 0 -a -n "$(echo "$x" | grep '^PTNET-HOSTILE nic=')"
check "the hostile program ran to its end: $(n rounds) rounds in $(n secs) s" \
  test -n "$done_line" -a "$(n rounds)" -gt 1000 2>/dev/null
kinds_ok=1
for k in reg_writes csb_maps csb_bad_addrs creates create_ok deletes bad_cmds kicks atok_garbage \
  ktoa_garbage ring_hdr_garbage nif_garbage slot_garbage tx_published rx_released msix_writes \
  msix_raw msix_toggles cfg_toggles bar_sizings; do
  [ "$(n $k)" -gt 0 ] 2>/dev/null || { kinds_ok=0; echo "    (no $k)"; }
done
check "every kind of garbage was done (registers, CSB, storms, indices, slots, headers, MSI-X, config)" \
  test $kinds_ok = 1
check "after the garbage the device still works: a clean CSB and CREATE answer 0 ($(echo "$x" | grep '^PTNET-HOSTILE-FINAL'))" \
  test "$(val "$x" X-HOSTILERC)" = 0 -a -n "$(echo "$x" | grep '^PTNET-HOSTILE-FINAL create=0 delete=0')"
check "X was still hostile when Y's traffic ended ($x_busy_for s after it started, of $HOSTILE_SECS)" \
  test "$x_busy" = 0
check "X's ptvmm survived: the guest powered off (status $xrc), no panic in its log" \
  test "$xrc" = 0 -a -z "$(echo "$x" | grep -iE 'panicked|RUST_BACKTRACE|worker panicked')" \
    -a -n "$(echo "$x" | grep 'PTVMM-CMD-EXIT 0')"
# Each kind of bad CSB address is warned about a few times, then once per doubling (nic.rs).
wl=$(echo "$x" | grep -cE '^\[[^ ]*Z (WARN|ERROR)')
check "X's ptvmm log is not flooded by the garbage ($wl warnings/errors, at most 100)" test "$wl" -le 100
check "guest Y loads ptnet.ko" test "$(val "$y" Y-INSMOD)" = 0
check "Y's pkt-gen tx -n $Y_N -R $Y_RATE sends $Y_N (status $(val "$y" Y-TXRC))" \
  test "$(val "$y" Y-TXRC)" = 0 -a -n "$(echo "$y" | grep "^Y-TX: Sent $Y_N packets")"
check "host rx verifies exactly $Y_N good frames from Y, X's garbage only as bad ($(grep '^Verified' hrx.log))" \
  test "$hrc" = 0 -a -n "$(grep "^Verified $Y_N good" hrx.log)"
check "host tx -n $H_N -R $H_RATE to Y (status $htc)" \
  test "$htc" = 0 -a -n "$(grep "^Sent $H_N packets" htx.log)"
check "Y's pkt-gen rx verifies exactly $H_N good frames ($(echo "$y" | grep '^Y-RX: Verified'))" \
  test -n "$(echo "$y" | grep "^Y-RX: Verified $H_N good")"
check "guest Y: rmmod clean, no oops, powers off cleanly (ptvmm status $yrc)" \
  test "$(val "$y" Y-RMMOD)" = 0 -a "$(val "$y" Y-BAD)" = 0 -a "$yrc" = 0
check "no file left in PTVMM_SHM_DIR after everything exited ($left)" test -z "$left"
check "no ptvmm process left ($procs)" test "$procs" = 0
if [ "$xrc" != 0 ] || [ -z "$done_line" ]; then show_tail X "$x" 40; fi
if [ "$yrc" != 0 ] || ! has "$y" "PTVMM-CMD-EXIT 0"; then show_tail Y "$y" 40; fi

report_and_exit
