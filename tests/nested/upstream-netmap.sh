#!/bin/sh
# Upstream netmap's ptnet guest driver (netmap.ko, default parameters: ptnet_vnet_hdr=1) and its
# pkt-gen, unpatched, on ptvmm, run inside the nested harness's L1 by scripts/try-upstream-netmap
# (which builds both from a netmap tree the user provides; not part of scripts/test).
# Guest U (vale0:1, netmap.ko, 10.0.0.1) against the host's ptvmm-pktgen on vale0:2:
#   netmap mode: U's pkt-gen -f rx gets exactly the host's 1000 paced frames; U's pkt-gen -f tx
#   sends 1000 that the host receives and verifies, all of them; U's pkt-gen -f pong answers all
#   200 of the host's pings.
# Then stack mode with guest P (vale0:3, the project's ptnet.ko without a header, 10.0.0.3): ping,
# and a 4 MiB TCP stream each way (md5 equal), U's offloaded frames through the switch's header
# conversion and segmentation.
# Expects in the current folder: lib.sh, ptvmm, ptvmm-pktgen, bzImage, initramfs.cpio.gz,
# netmap.ko, nm-pkt-gen (static).
. ./lib.sh   # check helpers, guest scripts and initrds, boot_guest, wait_for, console, show
use_shm_dir
mkdir -p x/t
cp netmap.ko nm-pkt-gen x/t/   # upstream's pkt-gen as /t/nm-pkt-gen: /bin/pkt-gen is the project's

guest_script x u.sh <<'END_U'
. /test/lib.sh
dmesg -c >/dev/null
# No IPv6: an interface that is up then sends nothing by itself between the netmap runs.
echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6; echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6
insmod /t/netmap.ko; echo "U-INSMOD $?"
echo "U-IFACES $(ls /sys/class/net | tr '\n' ' ')"
echo "U-VNET $(cat /sys/module/netmap/parameters/ptnet_vnet_hdr)"
# Up, as a user would: upstream's driver runs NAPI (and so wakes poll()) only while it is.
ip link set eth0 up
echo "U-RX-START"
timeout 60 /t/nm-pkt-gen -i netmap:eth0 -f rx -n 1000 >/tmp/o 2>&1; echo "U-PGRX-RC $?"
sed -n 's/^\(Received .*\)/U-PGRX \1/p' /tmp/o
timeout 60 /t/nm-pkt-gen -i netmap:eth0 -f tx -n 1000 -R 5000 >/tmp/o 2>&1; echo "U-PGTX-RC $?"
sed -n 's/^\(Sent .*\)/U-PGTX \1/p' /tmp/o
echo "U-PONG-START"
timeout 60 /t/nm-pkt-gen -i netmap:eth0 -f pong -n 200 >/tmp/o 2>&1; echo "U-PONG-RC $?"
ip addr add 10.0.0.1/24 dev eth0
echo "U-STACK-UP"
i=0; while [ $i -lt 60 ] && ! ping -c 1 -W 2 10.0.0.3 >/dev/null; do i=$((i+1)); done
ping -c 5 -W 5 10.0.0.3; echo "U-PING $?"
dd if=/dev/urandom of=/tmp/d bs=1024 count=4096 2>/dev/null
echo "U-SENT $(wc -c </tmp/d) $(md5sum </tmp/d | cut -c1-32)"
timeout 120 nc 10.0.0.3 5000 </tmp/d >/dev/null; echo "U-NC $?"
mkfifo /tmp/f; sleep 300 >/tmp/f & s=$!
timeout 120 nc -l -p 5001 </tmp/f >/tmp/got; echo "U-NCL $?"; kill $s
echo "U-GOT $(wc -c </tmp/got) $(md5sum </tmp/got | cut -c1-32)"
report_bad U
END_U
guest_script x p.sh <<'END_P'
insmod /lib/modules/ptnet.ko vnet_hdr=0; echo "P-INSMOD $?"
ip addr add 10.0.0.3/24 dev eth0; ip link set eth0 up
mkfifo /tmp/f; sleep 300 >/tmp/f & s=$!
timeout 300 nc -l -p 5000 </tmp/f >/tmp/got; echo "P-NCL $?"; kill $s
echo "P-GOT $(wc -c </tmp/got) $(md5sum </tmp/got | cut -c1-32)"
ping -c 3 -W 5 10.0.0.1; echo "P-PING $?"
dd if=/dev/urandom of=/tmp/d bs=1024 count=4096 2>/dev/null
echo "P-SENT $(wc -c </tmp/d) $(md5sum </tmp/d | cut -c1-32)"
sleep 2
timeout 120 nc 10.0.0.1 5001 </tmp/d >/dev/null; echo "P-NC $?"
END_P
pack_initrd x initrd-u

boot_guest 400 initrd-u u.sh vale0:1 02:00:00:00:00:0a >u.log 2>&1 &
upid=$!
wait_for u.log U-RX-START 120 $upid
sleep 3   # upstream's pkt-gen waits 2 s for a "phy reset" before it reads
host_pktgen htx.log -i vale0:2 -f tx -n 1000 -R 2000; htx=$?
host_pktgen hrx.log -i vale0:2 -f rx -n 1000; hrx=$?
wait_for u.log U-PONG-START 60 $upid
sleep 3
host_pktgen hping.log -i vale0:2 -f ping -n 200; hping=$?
wait_for u.log U-STACK-UP 60 $upid
boot_guest 400 initrd-u p.sh vale0:3 02:00:00:00:00:0c >p.log 2>&1
prc=$?
await U $upid 120; urc=$?
u=$(console u.log); p=$(console p.log)
echo "$u" | grep -E '^U-' | show U
echo "$p" | grep -E '^P-' | show P
grep -hE '^(Sent|Received|Verified|ping:)' htx.log hrx.log hping.log | show host
ran_through U "$u" || show_tail U "$u" 60
ran_through P "$p" || show_tail P "$p" 40

check "upstream netmap.ko loads, binds the NIC: eth0" test "$(val "$u" U-INSMOD)" = 0 -a -n "$(val "$u" U-IFACES | grep eth0)"
check "its ptnet negotiates the virtio-net header (ptnet_vnet_hdr $(val "$u" U-VNET))" test "$(val "$u" U-VNET)" = 1
check "host -> U: upstream pkt-gen -f rx gets exactly the 1000 paced frames ($(val "$u" U-PGRX))" \
  test "$htx" = 0 -a "$(val "$u" U-PGRX-RC)" = 0 -a -n "$(val "$u" U-PGRX | grep '^Received 1000 packets')"
check "U -> host: upstream pkt-gen -f tx 1000, the host receives and verifies all 1000" \
  test "$hrx" = 0 -a "$(val "$u" U-PGTX-RC)" = 0 -a -n "$(grep '^Received 1000 packets' hrx.log)" \
    -a -n "$(grep '^Verified 1000 good 0 bad' hrx.log)"
check "upstream pkt-gen -f pong answers all 200 of the host's pings ($(grep '^ping:' hping.log | tail -n1))" \
  test "$hping" = 0 -a -n "$(grep '^ping: 200 replies of 200' hping.log)"
check "stack mode: ping U -> P (ptnet.ko, no header)" test "$(val "$u" U-PING)" = 0
check "stack mode: ping P -> U" test "$(val "$p" P-PING)" = 0
sent=$(val "$u" U-SENT); got=$(val "$p" P-GOT)
check "TCP U -> P, 4 MiB through the switch's segmentation ('$sent' = '$got')" test -n "$sent" -a "$sent" = "$got"
sent=$(val "$p" P-SENT); got=$(val "$u" U-GOT)
check "TCP P -> U, 4 MiB ('$sent' = '$got')" test -n "$sent" -a "$sent" = "$got"
check "no oops/BUG/WARNING in U's dmesg" test "$(val "$u" U-BAD)" = 0
check "both guests power off cleanly (ptvmm status U $urc, P $prc)" test "$urc" = 0 -a "$prc" = 0
check "no oops on either console" test "$(console_oopses "$u" U)" = 0 -a "$(console_oopses "$p" P)" = 0
check "the VALE ports are removed after the guests and pkt-gens exit" shm_empty
report_and_exit
