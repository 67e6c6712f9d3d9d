#!/bin/sh
# ptnet guest driver tests, run inside the nested harness's L1 (scripts/nested): two ptvmm guests
# on the same VALE switch (vale0:1 = A at 10.0.0.1, vale0:2 = B at 10.0.0.2), each loading
# /lib/modules/ptnet.ko (built by guest-images/build from guest-images/ptnet/). Checks: the module
# loads and binds both PCI functions, eth0 has the MAC given with --mac, the interface comes up,
# ping and a TCP transfer work between the guests, an unload/reload cycle works, rmmod is clean
# and dmesg has no oops. Each check prints "ok - name" or "not ok - name"; the last line is
# "N passed, M failed" and the exit status is the failure count.
# Then a guest C on vale1:1 against the host's pkt-gen on vale1:2/vale1:3: guest -> host and
# host -> guest, 1000 frames each, counts exact.
# Expects in the current folder: lib.sh and guest-lib.sh (tests/nested/), ptvmm, ptvmm-pktgen, bzImage, initramfs.cpio.gz (with
# lib/modules/ptnet.ko and bin/ptnet-ctl, from guest-images/build).
# Run L1 with at least 2 vCPUs (two 1-vCPU guests busy at once), e.g.
#   scripts/nested -c 3 -t 600 DIR tests/nested/ptnet-driver.sh
. ./lib.sh   # checks, guest scripts and initrds, boot_guest, host_rx, waiting (tests/nested/lib.sh)

use_shm_dir
MAC_A=02:00:00:00:00:0a
MAC_B=02:00:00:00:00:0b

guest_script g b.sh <<'EOF'
# Guest B (10.0.0.2): up, then receives one TCP stream with nc, reports it, unloads the driver.
# (dmesg -c: the boot's own warnings under nested SVM, e.g. fpu xstate, are not the driver's.)
. /test/lib.sh
dmesg -c >/dev/null
insmod /lib/modules/ptnet.ko; echo "B-INSMOD $?"
ip addr add 10.0.0.2/24 dev eth0; ip link set eth0 up; echo "B-UP $?"
# netmap mode through /dev/ptnet0: receive A's 1000 frames, then back to stack mode.
ptnet-ctl rx 1000 120; echo "B-NMRX $?"
echo "B-LINK $(ip link show eth0 | head -n1)"
mkfifo /tmp/f; sleep 600 >/tmp/f & s=$!
timeout 200 nc -l -p 5000 </tmp/f >/tmp/got; echo "B-NC $?"; kill $s
echo "B-GOT $(wc -c </tmp/got) $(md5sum </tmp/got | cut -c1-32)"
# A's second stream dies with A's device (unbind, rmmod): ends by timeout, no FIN comes.
sleep 600 >/tmp/f & s=$!
timeout 45 nc -l -p 5001 </tmp/f >/dev/null; kill $s
# Stay in stack mode until A says it is done (a connection to port 5002).
timeout 60 nc -l -p 5002 </dev/null >/dev/null
echo "B-STATS tx $(cat /sys/class/net/eth0/statistics/tx_packets) rx $(cat /sys/class/net/eth0/statistics/rx_packets)"
ip link set eth0 down; rmmod ptnet; echo "B-RMMOD $?"
report_bad B
# Power off while /dev/ptnet0 is in netmap mode with an application sleeping in poll().
insmod /lib/modules/ptnet.ko; ptnet-ctl rx 1000000 600 & sleep 2
echo "B-NM-AT-POWEROFF $(grep -c eth0-rx0 /proc/interrupts)"
EOF

guest_script g a.sh <<'EOF'
# Guest A (10.0.0.1): load, check, ping, unload/reload, TCP to B, unload.
. /test/lib.sh
dmesg -c >/dev/null
insmod /lib/modules/ptnet.ko; echo "A-INSMOD $?"
echo "A-IFACES $(ls /sys/class/net | tr '\n' ' ')"
echo "A-MAC $(cat /sys/class/net/eth0/address)"
echo "A-DRV $(ls /sys/bus/pci/drivers/ptnet /sys/bus/pci/drivers/ptnetmap-memdev | grep -c 0000:)"
dmesg | grep -iE 'ptnet|eth0' | grep -v 'ommand line' | sed "s/^/A-DMESG /"
echo "A-CDEV $(ls /dev/ptnet*)"
ptnet-ctl info; echo "A-INFO $?"
# netmap mode through /dev/ptnet0 (eth0 still down): 1000 frames to B, which counts them.
ptnet-ctl tx 1000; echo "A-NMTX $?"
echo "A-LINK0 $(ip link show eth0 | head -n1)"
ip addr add 10.0.0.1/24 dev eth0; ip link set eth0 up; echo "A-UP $?"
echo "A-LINK $(ip link show eth0 | head -n1)"
ping -c 3 -W 10 10.0.0.2; echo "A-PING $?"
ip link set eth0 down; rmmod ptnet; echo "A-RMMOD1 $?"
echo "A-IFACES1 $(ls /sys/class/net | tr '\n' ' ')"
insmod /lib/modules/ptnet.ko; echo "A-INSMOD2 $?"
ip addr add 10.0.0.1/24 dev eth0; ip link set eth0 up
ping -c 2 -W 10 10.0.0.2; echo "A-PING2 $?"
dd if=/dev/urandom of=/tmp/d bs=1024 count=512 2>/dev/null
echo "A-SENT $(wc -c </tmp/d) $(md5sum </tmp/d | cut -c1-32)"
timeout 120 nc 10.0.0.2 5000 </tmp/d >/dev/null; echo "A-NC $?"
grep eth0 /proc/interrupts | sed "s/^/A-IRQ /"
echo "A-STATS tx $(cat /sys/class/net/eth0/statistics/tx_packets) rx $(cat /sys/class/net/eth0/statistics/rx_packets)"
# Device removal with traffic running (a TCP stream and a fast ping): unbind the memdev; the
# device link unbinds the NIC first. Then bind both again.
md=$(ls /sys/bus/pci/drivers/ptnetmap-memdev | grep 0000: | head -n1)
nic=$(ls /sys/bus/pci/drivers/ptnet | grep 0000: | head -n1)
timeout 60 nc 10.0.0.2 5001 </dev/zero >/dev/null & ncp=$!
ping -q -i 0.01 -s 1000 10.0.0.2 >/dev/null & pp=$!
sleep 3
echo "A-TRAFFIC1 $(cat /sys/class/net/eth0/statistics/tx_packets)"
echo $md >/sys/bus/pci/drivers/ptnetmap-memdev/unbind; echo "A-UNBIND $?"
echo "A-DRV3 $(ls /sys/bus/pci/drivers/ptnet /sys/bus/pci/drivers/ptnetmap-memdev | grep -c 0000:) $(ls /sys/class/net | tr '\n' ' ')"
kill $ncp $pp
echo $md >/sys/bus/pci/drivers/ptnetmap-memdev/bind; echo $nic >/sys/bus/pci/drivers/ptnet/bind 2>/dev/null
echo "A-DRV4 $(ls /sys/bus/pci/drivers/ptnet /sys/bus/pci/drivers/ptnetmap-memdev | grep -c 0000:)"
ip addr add 10.0.0.1/24 dev eth0; ip link set eth0 up
ping -c 2 -W 10 10.0.0.2; echo "A-PING3 $?"
# rmmod with traffic running, the interface up.
ping -q -i 0.01 -s 1000 10.0.0.2 >/dev/null & pp=$!
sleep 2
echo "A-TRAFFIC2 $(cat /sys/class/net/eth0/statistics/tx_packets)"
rmmod ptnet; echo "A-RMMOD2 $?"
kill $pp
report_bad A
# Power off with traffic running.
insmod /lib/modules/ptnet.ko; ip addr add 10.0.0.1/24 dev eth0; ip link set eth0 up
# (busybox ping dies on a send error: let the link settle and ARP resolve first)
ping -c 1 -W 10 10.0.0.2 >/dev/null
ping -q -i 0.01 -s 1000 10.0.0.2 >/dev/null &
sleep 2
echo "A-TRAFFIC3 $(cat /sys/class/net/eth0/statistics/tx_packets)"
# B listens on 5002 only after its 45 s wait for the dead 5001 stream: knock until it answers.
i=0; while [ $i -lt 60 ] && ! echo done | timeout 5 nc 10.0.0.2 5002 >/dev/null 2>&1; do
  sleep 1; i=$((i+1)); done
echo "A-DONE-SENT $i"
EOF

pack_initrd g initrd-test

# --- guests A and B on vale0 ---------------------------------------------------------------------
t0=$(date +%s)
boot_guest 400 initrd-test b.sh vale0:2 "$MAC_B" >b.log 2>&1 &
bpid=$!
# Wait for B to be up and in netmap mode (ptnet-ctl says so) before A starts sending.
wait_for b.log 'PTNET-RX registered' 180 $bpid
echo "    (guest B up after $(( $(date +%s) - t0 )) s)"

t1=$(date +%s)
boot_guest 300 initrd-test a.sh vale0:1 "$MAC_A" >a.log 2>&1
arc=$?
a=$(console a.log)
echo "    (guest A ran $(( $(date +%s) - t1 )) s)"
echo "$a" | grep -E '^(A-|PTNET|PING|[0-9]+ bytes from|[0-9]+ packets)' | show A

# B ends by itself once A's TCP stream is done; do not wait forever.
await B $bpid 90
brc=$?
b=$(console b.log)
echo "$b" | grep -E '^(B-|PTNET)' | show B

ran_through A "$a" && [ "$(val "$a" A-BAD)" = 0 ] || show_tail A "$a" 60
ran_through B "$b" && [ "$(val "$b" B-BAD)" = 0 ] || show_tail B "$b" 60

check "insmod ptnet.ko succeeds in guest A" test "$(val "$a" A-INSMOD)" = 0
check "insmod ptnet.ko succeeds in guest B" test "$(val "$b" B-INSMOD)" = 0
check "both PCI functions bound (ptnet + ptnetmap-memdev)" test "$(val "$a" A-DRV)" = 2
check "eth0 is listed" has "$(val "$a" A-IFACES)" "eth0"
check "eth0 has the device's MAC $MAC_A (got $(val "$a" A-MAC))" test "$(val "$a" A-MAC)" = "$MAC_A"
check "the memdev reported its memid and region" has "$a" "memid "
check "character device /dev/ptnet0 exists" test "$(val "$a" A-CDEV)" = /dev/ptnet0
check "layout ioctl and mmap of region + CSB agree (netmap_if, rings, CSB)" has "$a" "PTNET-INFO-CHECK ok"
check "netmap mode: A sends 1000 frames through /dev/ptnet0" test "$(val "$a" A-NMTX)" = 0
nmrx=$(echo "$b" | grep '^PTNET-RX received' | tail -n1)
check "netmap mode: B receives exactly 1000, in order ($nmrx)" has "$nmrx" "received 1000 other 0 order_errors 0 "
check "netmap mode: eth0 of A stays down after unregister" test -z "$(val "$a" A-LINK0 | grep -w UP)"
check "B's eth0 back in stack mode with a carrier after netmap mode" has "$(val "$b" B-LINK)" "LOWER_UP"
check "ip link set eth0 up succeeds" test "$(val "$a" A-UP)" = 0
check "eth0 is UP with a carrier" has "$(val "$a" A-LINK)" "LOWER_UP"
check "ping A -> B (3 echo replies)" test "$(val "$a" A-PING)" = 0
check "rmmod after ping succeeds" test "$(val "$a" A-RMMOD1)" = 0
check "eth0 is gone after rmmod" test -z "$(val "$a" A-IFACES1 | grep eth0)"
check "insmod again succeeds (load/unload cycle)" test "$(val "$a" A-INSMOD2)" = 0
check "ping A -> B after the reload" test "$(val "$a" A-PING2)" = 0
sent=$(val "$a" A-SENT); got=$(val "$b" B-GOT)
check "TCP A -> B: 512 KiB arrive intact (sent '$sent', got '$got')" test -n "$sent" -a "$sent" = "$got"
check "a MSI-X vector per ring is listed for eth0" test -n "$(echo "$a" | grep '^A-IRQ .*eth0-rx0')"
t1=$(val "$a" A-TRAFFIC1); t2=$(val "$a" A-TRAFFIC2); t3=$(val "$a" A-TRAFFIC3)
check "traffic was running before each removal (tx packets: $t1, $t2, $t3)" \
  test "${t1:-0}" -gt 100 -a "${t2:-0}" -gt 50 -a "${t3:-0}" -gt 50
check "unbinding the memdev with traffic running unbinds both, eth0 gone" \
  test "$(val "$a" A-UNBIND)" = 0 -a "$(val "$a" A-DRV3)" = "0 lo "
check "binding both again brings eth0 back" test "$(val "$a" A-DRV4)" = 2
check "ping A -> B after unbind/bind" test "$(val "$a" A-PING3)" = 0
check "rmmod with traffic running succeeds in guest A" test "$(val "$a" A-RMMOD2)" = 0
check "rmmod at the end succeeds in guest B" test "$(val "$b" B-RMMOD)" = 0
check "no oops/BUG/WARNING in guest A's dmesg" test "$(val "$a" A-BAD)" = 0
check "no oops/BUG/WARNING in guest B's dmesg" test "$(val "$b" B-BAD)" = 0
check "B powers off in netmap mode with a poll()er: registered, interrupt live" \
  test "$(echo "$b" | grep -c 'PTNET-RX registered')" = 2 -a "$(val "$b" B-NM-AT-POWEROFF)" = 1
check "no oops on A's console, poweroff with traffic running included" \
  test "$(console_oopses "$a" A)" = 0
check "no oops on B's console, poweroff in netmap mode included" \
  test "$(console_oopses "$b" B)" = 0
check "guest A powers off cleanly with traffic running (ptvmm status $arc)" test "$arc" = 0
check "guest B powers off cleanly in netmap mode (ptvmm status $brc)" test "$brc" -eq 0
check "the VALE ports are removed after both ptvmm exit" shm_empty

# --- guest C <-> the host's pkt-gen (inside L1) on vale1 ---------------------------------------
if [ ! -x ./ptvmm-pktgen ]; then
  not_ok "guest <-> host pkt-gen: no ./ptvmm-pktgen in the job folder (copy target/release/ptvmm-pktgen)"
  report_and_exit
fi
guest_script gc c.sh <<'EOF'
# Guest C (vale1:1, alone with the host's pkt-gen): netmap mode both ways.
. /test/lib.sh
dmesg -c >/dev/null
insmod /lib/modules/ptnet.ko; echo "C-INSMOD $?"
ptnet-ctl tx 1000; echo "C-NMTX $?"
ptnet-ctl txbusy 1000; echo "C-BUSY $?"
ptnet-ctl rxall 1000 120; echo "C-NMRX $?"
# Volume, nobody listening (the switch drops): netmap TX filling the ring and waiting in poll(),
# the same busy-polling the CSB, then the stack's TX path with a UDP socket writing as fast as
# it can.
ptnet-ctl tx 50000; echo "C-NMTX2 $?"
ptnet-ctl txbusy 50000; echo "C-BUSY2 $?"
ip link set eth0 up; ip addr add 10.0.0.3/24 dev eth0; arp -s 10.0.0.9 02:00:00:00:00:99
timeout 60 ptnet-ctl udp 10.0.0.9 50000 1400; echo "C-UDP $?"
echo "C-TXPKTS $(cat /sys/class/net/eth0/statistics/tx_packets)"
grep eth0 /proc/interrupts | sed "s/^/C-IRQ /"
rmmod ptnet; echo "C-RMMOD $?"
report_bad C
EOF
pack_initrd gc initrd-c
host_rx hrx.log -i vale1:2 -f rx -n 2000 --no-verify
boot_guest 300 initrd-c c.sh vale1:1 02:00:00:00:00:0c >c.log 2>&1 &
cpid=$!
# The host rx ends after 1000 frames; then, once the guest is in netmap rx, the host sends.
wait $HOST_RX; hrc=$?
wait_for c.log 'PTNET-RX registered' 120 $cpid
host_pktgen htx.log -i vale1:3 -f tx -n 1000; htc=$?
await C $cpid 120; crc=$?
c=$(console c.log)
echo "$c" | grep -E '^(C-|PTNET)' | show C
grep -E 'Sent|Received|Verified' hrx.log htx.log | show host
ran_through C "$c" || show_tail C "$c" 40
check "guest -> host: ptnet-ctl tx 1000 + txbusy 1000 in C, host pkt-gen -f rx -n 2000 gets them all (status $hrc)" \
  test "$hrc" = 0 -a -n "$(grep '^Received 2000 packets' hrx.log)" -a "$(val "$c" C-NMTX)" = 0 -a "$(val "$c" C-BUSY)" = 0
check "busy-poll TX: all 1000 sent and drained, kicks only when asked" \
  test -n "$(echo "$c" | grep '^PTNET-TXBUSY sent 1000 .* drained 1 ')"
nmrx=$(echo "$c" | grep '^PTNET-RX received' | tail -n1)
check "host -> guest: host pkt-gen -f tx -n 1000, C counts exactly 1000 ($nmrx)" \
  test "$htc" = 0 -a -n "$(echo "$nmrx" | grep 'received 1000 other 0 ')"
check "guest C: 50000 frames through /dev/ptnet0 with poll() waits for ring space" \
  test "$(val "$c" C-NMTX2)" = 0 -a -n "$(echo "$c" | grep '^PTNET-TX sent 50000 ')"
check "guest C: 50000 frames in busy-poll mode (CSB from user space, outl kicks)" \
  test "$(val "$c" C-BUSY2)" = 0 -a -n "$(echo "$c" | grep '^PTNET-TXBUSY sent 50000 .* drained 1 ')"
check "guest C: 50000 UDP datagrams through the stack ($(val "$c" C-TXPKTS) tx packets)" \
  test "$(val "$c" C-UDP)" = 0 -a "$(val "$c" C-TXPKTS)" -ge 50000
check "guest C: rmmod clean, no oops/BUG/WARNING" test "$(val "$c" C-RMMOD)" = 0 -a "$(val "$c" C-BAD)" = 0
check "guest C powers off cleanly (ptvmm status $crc)" test "$crc" -eq 0
check "the vale1 ports are removed after guest and pkt-gens exit" shm_empty

report_and_exit
