#!/bin/sh
# VALE uplinks with Linux guests (issue 10 item 4), run inside the nested harness's L1
# (scripts/nested). Two "hosts" in L1:
#   host 1 = L1's own namespace: switch vale0 in /tmp/shm1 with guest G1 (ptnet.ko, eth0
#     10.9.0.1) on vale0:1 and two uplinks: a tap-mode one whose uplink process runs in
#     namespace "lan", so its tap tp0 (10.9.0.100) is that namespace's kernel stack, and a
#     packet-mode one on VXLAN device vx1;
#   host 2 = namespace "host2": its own switch vale0 in /tmp/shm2 with guest G2 (10.9.0.2) of a
#     second ptvmm on vale0:1, uplinked (packet) to VXLAN device vx2. The tunnel (VNI 42, UDP
#     4789) runs over veth pair ul1 (L1, 192.168.77.1) / ul2 (host2, 192.168.77.2), MTU 1600, so
#     vx1/vx2 carry full 1500-byte frames.
# Checks: G1 pings 10.9.0.100 and G2; a 1 MiB TCP stream each way between G1 and the "lan"
# namespace and between G1 and G2, every stream's size and md5 equal to what was sent; the
# tunnel carried the G1<->G2 streams; no frame dropped by an uplink for its size; both
# drivers unload cleanly, both guests power off, the uplinks detach and the switches go away.
# Why a tap for the kernel stack: a stack behind a veth pair hands AF_PACKET (and AF_XDP) its
# TCP frames with the checksum left to offload (CHECKSUM_PARTIAL) and as GSO super-frames, and
# the packet and xdp uplinks forward frames as the socket gives them (docs/vale.md, "Known
# limits"); a tap without offloads gets frames the kernel has finished.
# Each check prints "ok - name" or "not ok - name"; the last line is "N passed, M failed" and the
# exit status is the failure count.
# Expects in the current folder: lib.sh, guest-lib.sh, ptvmm, ptvmm-vale-ctl, bzImage, initramfs.cpio.gz (with
# /lib/modules/ptnet.ko), bin/ip (iproute2's: busybox's has no netns, veth or vxlan) and
# l1mod/{tun,veth,udp_tunnel,ip6_udp_tunnel,vxlan}.ko (prepare_nested_job in scripts/lib/common.sh
# puts them there), e.g.
#   scripts/nested -c 3 -t 420 DIR tests/nested/ptnet-uplink.sh
. ./lib.sh   # checks, guest scripts and initrds, boot_guest, consoles

# iproute2's ip by its path: busybox sh runs its own applet for a bare `ip`, whatever PATH says
IPBIN=$PWD/bin/ip
ip() { "$IPBIN" "$@"; }
S1=/tmp/shm1 S2=/tmp/shm2
mkdir -p $S1 $S2

# --- L1's network: namespaces, veth pairs, the VXLAN tunnel, uplinks ---------------------------
net_ok=0
setup() {
  for m in tun veth udp_tunnel ip6_udp_tunnel vxlan; do
    insmod "l1mod/$m.ko" || { echo "    setup: insmod $m failed"; return 1; }
  done
  # iproute2 keeps named namespaces in /var/run/netns (/run/netns on newer builds)
  mkdir -p /run/netns /var && { [ -e /var/run ] || ln -s /run /var/run; }
  ip netns add lan && ip netns add host2 || return 1
  for n in lan host2; do
    ip netns exec $n sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n $n link set lo up
  done
  ip link add ul1 mtu 1600 type veth peer name ul2 mtu 1600 netns host2 || return 1
  ip addr add 192.168.77.1/24 dev ul1 && ip link set ul1 up || return 1
  ip -n host2 addr add 192.168.77.2/24 dev ul2 && ip -n host2 link set ul2 up || return 1
  ip link add vx1 mtu 1500 type vxlan id 42 local 192.168.77.1 remote 192.168.77.2 dev ul1 dstport 4789 &&
    ip link set vx1 up || return 1
  ip -n host2 link add vx2 mtu 1500 type vxlan id 42 local 192.168.77.2 remote 192.168.77.1 dev ul2 dstport 4789 &&
    ip -n host2 link set vx2 up || return 1
  ip netns exec lan env PTVMM_SHM_DIR=$S1 ./ptvmm-vale-ctl attach vale0 tp0 --mode tap &&
    ip -n lan addr add 10.9.0.100/24 dev tp0 || return 1
  PTVMM_SHM_DIR=$S1 ./ptvmm-vale-ctl attach vale0 vx1 --mode packet &&
    ip netns exec host2 env PTVMM_SHM_DIR=$S2 ./ptvmm-vale-ctl attach vale0 vx2 --mode packet
}
if setup >setup.log 2>&1; then net_ok=1; fi
show setup <setup.log
check "L1: modules, namespaces, the VXLAN tunnel over a veth pair, a tap uplink and two packet uplinks set up" test $net_ok = 1
if [ $net_ok != 1 ]; then
  echo "    (the rest needs that network: not run)"
  report_and_exit
fi

# --- the guests and the lan namespace's endpoints ----------------------------------------------
head -c 1048576 /dev/urandom >r
WANT="1048576 $(md5sum <r | cut -c1-32)"
mkdir -p u/test
cp r u/test/r
guest_script u common.sh <<'END_C'
. /test/lib.sh
up() { # up NAME IP
  dmesg -c >/dev/null
  insmod /lib/modules/ptnet.ko; echo "$1-INSMOD $?"
  ip addr add "$2/24" dev eth0 && ip link set eth0 up; echo "$1-UP $?"
  mkfifo /tmp/hold; sleep 9999 >/tmp/hold &
}
waitfor() { # waitfor NAME TAG IP: until IP answers a ping (at most 120 tries); NAME-TAG-WAIT tries
  i=0; while [ $i -lt 120 ] && ! ping -c 1 -W 1 "$3" >/dev/null 2>&1; do i=$((i+1)); done
  echo "$1-$2-WAIT $i"
}
send() { # send NAME TAG IP PORT: /test/r to IP:PORT; NAME-TAG-NC status (retried while refused)
  i=0
  while :; do
    t0=$(date +%s); timeout 120 nc "$3" "$4" </test/r >/dev/null; rc=$?; t1=$(date +%s)
    [ $rc = 0 ] || [ $((t1 - t0)) -gt 5 ] || [ $i -ge 60 ] || { i=$((i+1)); sleep 1; continue; }
    break
  done
  echo "$1-$2-NC $rc"
}
recv() { # recv NAME TAG PORT: one stream on PORT; NAME-TAG-GOT bytes md5
  timeout 200 nc -l -p "$3" </tmp/hold >"/tmp/in$3"
  echo "$1-$2-GOT $(wc -c <"/tmp/in$3" | tr -d ' ') $(md5sum <"/tmp/in$3" | cut -c1-32)"
}
finish() { # finish NAME
  for c in tx_packets rx_packets tx_dropped rx_dropped rx_errors; do
    echo "$1-STAT $c $(cat /sys/class/net/eth0/statistics/$c)"
  done
  ip link set eth0 down; rmmod ptnet; echo "$1-RMMOD $?"
  report_bad "$1"
}
END_C
guest_script u g1.sh <<'END_G1'
# G1 (10.9.0.1, host 1's vale0:1): the lan namespace through an uplink, then G2 through VXLAN.
. /test/common.sh
up G1 10.9.0.1
recv G1 frompeer 5003 >/tmp/r3 & p3=$!
recv G1 fromg2 5004 >/tmp/r4 & p4=$!
waitfor G1 peer 10.9.0.100
ping -c 3 -W 5 10.9.0.100 >/dev/null 2>&1; echo "G1-PING-PEER $?"
send G1 topeer 10.9.0.100 5001
waitfor G1 g2 10.9.0.2
ping -c 3 -W 5 10.9.0.2 >/dev/null 2>&1; echo "G1-PING-G2 $?"
send G1 tog2 10.9.0.2 5002
wait $p3; cat /tmp/r3
wait $p4; cat /tmp/r4
finish G1
END_G1
guest_script u g2.sh <<'END_G2'
# G2 (10.9.0.2, host 2's vale0:1, behind the tunnel): a stream from G1 and one to it.
. /test/common.sh
up G2 10.9.0.2
recv G2 fromg1 5002 >/tmp/r2 & p2=$!
waitfor G2 g1 10.9.0.1
ping -c 3 -W 5 10.9.0.1 >/dev/null 2>&1; echo "G2-PING-G1 $?"
send G2 tog1 10.9.0.1 5004
wait $p2; cat /tmp/r2
finish G2
END_G2
pack_initrd u initrd-up

# The lan namespace: receives G1's stream on 5001, sends one to G1's 5003.
mkfifo /tmp/phold; sleep 9999 >/tmp/phold & hold=$!
ip netns exec lan timeout 300 nc -l -p 5001 </tmp/phold >peer.in & prx=$!
# It waits until G1 answers a ping (G1 boots meanwhile; a connect before that fails after ARP's
# timeout with "No route to host"), then retries a connection G1 refuses (its nc not listening yet).
(w=0; while [ $w -lt 240 ] && ! ip netns exec lan ping -c 1 -W 1 10.9.0.1 >/dev/null 2>&1; do w=$((w+1)); done
 i=0
 while :; do
   t0=$(date +%s); ip netns exec lan timeout 120 nc 10.9.0.1 5003 <r >/dev/null 2>peer.err; rc=$?; t1=$(date +%s)
   [ $rc = 0 ] || [ $((t1 - t0)) -gt 5 ] || [ $i -ge 60 ] || { i=$((i+1)); sleep 1; continue; }
   break
 done
 echo "PEER-NC $rc after $w pings and $i refused tries$(tail -n 1 peer.err | sed 's/^/; last error: /')") >peer.tx 2>&1 &
ptx=$!

t0=$(date +%s)
ip netns exec host2 env PTVMM_SHM_DIR=$S2 sh -c \
  ". ./lib.sh; boot_guest 300 initrd-up g2.sh vale0:1 02:00:00:00:09:02" >g2.log 2>&1 &
g2pid=$!
PTVMM_SHM_DIR=$S1 boot_guest 300 initrd-up g1.sh vale0:1 02:00:00:00:09:01 >g1.log 2>&1
g1rc=$?
wait $g2pid; g2rc=$?
echo "    (guests ran $(( $(date +%s) - t0 )) s)"
kill $prx 2>/dev/null; wait $prx
kill $ptx 2>/dev/null; wait $ptx
kill $hold 2>/dev/null
g1=$(console g1.log) g2=$(console g2.log)
echo "$g1" | grep -E '^G1-' | show G1
echo "$g2" | grep -E '^G2-' | show G2
ran_through G1 "$g1" || show_tail G1 "$g1" 30
ran_through G2 "$g2" || show_tail G2 "$g2" 30
PTVMM_SHM_DIR=$S1 ./ptvmm-vale-ctl list 2>&1 | show host1
ip netns exec host2 env PTVMM_SHM_DIR=$S2 ./ptvmm-vale-ctl list 2>&1 | show host2
ufield() { sed -n "s/^$3 //p" "$1/ptvmm-uplink.0.$2" 2>/dev/null; }  # ufield DIR IF FIELD
vxstat() { cat "/sys/class/net/vx1/statistics/$1"; }

check "both guests load ptnet.ko and bring eth0 up" \
  test "$(val "$g1" G1-INSMOD)$(val "$g1" G1-UP)$(val "$g2" G2-INSMOD)$(val "$g2" G2-UP)" = 0000
check "G1 pings 10.9.0.100 in L1's namespace 'lan' through the tap uplink tp0 (first reply after $(val "$g1" G1-peer-WAIT) tries)" \
  test "$(val "$g1" G1-PING-PEER)" = 0
peer_got="$(wc -c <peer.in | tr -d ' ') $(md5sum <peer.in | cut -c1-32)"
check "TCP G1 -> 10.9.0.100 (namespace lan): 1 MiB, size and md5 equal (nc status $(val "$g1" G1-topeer-NC); sent '$WANT', got '$peer_got')" \
  test "$(val "$g1" G1-topeer-NC)" = 0 -a "$peer_got" = "$WANT"
prc=$(sed -n 's/^PEER-NC \([0-9]*\) .*/\1/p' peer.tx)
check "TCP 10.9.0.100 (namespace lan) -> G1: 1 MiB, size and md5 equal (nc status $prc; $(sed -n 's/^PEER-NC [0-9]* //p' peer.tx); got '$(val "$g1" G1-frompeer-GOT)')" \
  test "$(val "$g1" G1-frompeer-GOT)" = "$WANT" -a "$prc" = 0
check "G1 and G2 ping each other across the VXLAN tunnel (G1: $(val "$g1" G1-PING-G2), G2: $(val "$g2" G2-PING-G1))" \
  test "$(val "$g1" G1-PING-G2)$(val "$g2" G2-PING-G1)" = 00
check "TCP G1 -> G2 over VXLAN: 1 MiB, size and md5 equal (nc status $(val "$g1" G1-tog2-NC); got '$(val "$g2" G2-fromg1-GOT)')" \
  test "$(val "$g1" G1-tog2-NC)" = 0 -a "$(val "$g2" G2-fromg1-GOT)" = "$WANT"
check "TCP G2 -> G1 over VXLAN: 1 MiB, size and md5 equal (nc status $(val "$g2" G2-tog1-NC); got '$(val "$g1" G1-fromg2-GOT)')" \
  test "$(val "$g2" G2-tog1-NC)" = 0 -a "$(val "$g1" G1-fromg2-GOT)" = "$WANT"
txb=$(vxstat tx_bytes) rxb=$(vxstat rx_bytes)
check "the tunnel carried both streams (vx1: $txb bytes out, $rxb bytes in; each >= 1 MiB)" \
  test "$txb" -ge 1048576 -a "$rxb" -ge 1048576
d="$(ufield $S1 tp0 drop_mtu)/$(ufield $S1 vx1 drop_mtu)/$(ufield $S2 vx2 drop_mtu)"
check "no frame too big for an uplink's interface (drop_mtu tp0/vx1/vx2: $d)" test "$d" = 0/0/0
check "rmmod clean in both guests, no oops/BUG/WARNING" \
  test "$(val "$g1" G1-RMMOD)$(val "$g2" G2-RMMOD)$(val "$g1" G1-BAD)$(val "$g2" G2-BAD)" = 0000
check "both guests power off cleanly (ptvmm status G1 $g1rc, G2 $g2rc)" test "$g1rc$g2rc" = 00
det=$( { PTVMM_SHM_DIR=$S1 ./ptvmm-vale-ctl detach vale0 tp0 && PTVMM_SHM_DIR=$S1 ./ptvmm-vale-ctl detach vale0 vx1 &&
  ip netns exec host2 env PTVMM_SHM_DIR=$S2 ./ptvmm-vale-ctl detach vale0 vx2; } 2>&1 >/dev/null; echo "status $?")
sleep 1
check "the three uplinks detach and both switches are gone ($det; left: '$(ls $S1 $S2 | tr '\n' ' ')')" \
  test "$det" = "status 0" -a -z "$(ls $S1)" -a -z "$(ls $S2)"
ip netns del lan; ip netns del host2
report_and_exit
