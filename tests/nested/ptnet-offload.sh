#!/bin/sh
# ptnet.ko with the virtio-net header (checksum offload, SG, TSO/TSO6, RX checksum, GRO), run
# inside the nested harness's L1 (scripts/nested): three ptvmm guests on vale5, every port opened
# with `,offloads` (PTFEAT offers VNET_HDR) and 2 TX + 2 RX rings:
#   A (10.0.0.1) and B (10.0.0.2) load ptnet.ko as it is (vnet_hdr=1, the default): a 12-byte
#     header, whole TSO frames over several slots (NS_MOREFRAG) passing the switch unchanged;
#   C (10.0.0.3) loads it with vnet_hdr=0: no header, no offloads, so the switch segments A's TSO
#     frames and completes their checksums for C, and puts a zero header in front of C's frames
#     for A.
# Checks: the features each driver shows (ethtool -k through `ptnet-ctl features`) and the header
# length each acked; ptnet.ko's pacing_shift (8 by default; 11 refused at load); A -> B one TCP
# stream of OFFLOAD_MIB MiB (default 64, issue 9) with B -> A BACK_MIB MiB at the same time, sizes
# and md5s equal (the data is a host-made random file repeated; the guests send and receive it
# with /bin/tcp-stream, guest-images/tcp-stream.c, whose receiver prints the stream's MD5; the
# host computes the expected one with busybox's md5sum),
# TSO frames sent and received whole (the driver's per-ring gso/chains counters) and, on the
# host, A's port sending frames larger than MTU-sized ones on average; 1 MiB streams A -> B until
# both TX queues (and so both of B's RX rings: VALE's destination ring is the source ring)
# carried TSO frames (2 to 16 streams), each intact; then A <-> C, one MIXED_MIB MiB stream each
# way at once through the switch's segmentation path, intact, with C receiving no frame above a
# slot and A's TSO counter growing; over IPv6 (fd00::/64) A -> B and A -> C, V6_MIB MiB each
# (TSO6 whole, then segmented by the switch), intact, NEEDS_CSUM frames; no RX errors, no oops/WARNING, rmmod clean, all three power
# off and the ports are gone.
# Each check prints "ok - name" or "not ok - name"; the last line is "N passed, M failed" and the
# exit status is the failure count.
# Expects in the current folder: lib.sh and guest-lib.sh (tests/nested/), ptvmm, ptvmm-vale-ctl, bzImage, initramfs.cpio.gz (with
# /lib/modules/ptnet.ko and /bin/ptnet-ctl), e.g.
#   scripts/nested -c 3 -t 420 DIR tests/nested/ptnet-offload.sh
. ./lib.sh   # checks, guest scripts and initrds, boot_guest, waiting (tests/nested/lib.sh)

use_shm_dir
BIG=${OFFLOAD_MIB:-64}      # MiB A -> B (the two offloading guests): issue 9's 64 MiB, ~7 s here with tcp-stream
BACK=${BACK_MIB:-2}         # MiB B -> A at the same time
MIX=${MIXED_MIB:-4}         # MiB each way between A and the guest without offloads
V6=${V6_MIB:-4}             # MiB A -> B and A -> C over IPv6 (TSO6)
RINGS="--netmap-rings 2"

# Shared by the three guests (sourced after /test/lib.sh).
guest_script go common.sh <<'EOF'
up() { # up NAME IP [MODULE ARGS]: load the driver, eth0 up; report features and the probe line
  n=$1 ip=$2; shift 2
  dmesg -c >/dev/null
  insmod /lib/modules/ptnet.ko "$@"; echo "$n-INSMOD $?"
  echo "$n-PACING $(cat /sys/module/ptnet/parameters/pacing_shift)"
  # IPv6 too (fd00::N, no duplicate address detection: usable at once), for the TSO6 streams
  echo 0 >/proc/sys/net/ipv6/conf/eth0/accept_dad
  ip addr add "$ip/24" dev eth0 && ip addr add "fd00::${ip##*.}/64" dev eth0 &&
    ip link set eth0 up; echo "$n-UP $?"
  dmesg | sed -n 's/.*ptnet \(..:..:..:..:..:..\): .*ptfeat \(.*\), vnet_hdr_len \([0-9]*\).*/ptfeat \2 hdr \3/p' | sed "s/^/$n-PROBE /"
  ptnet-ctl features eth0 | sed "s/^PTNET-/$n-/"
  mkfifo /tmp/hold; sleep 9999 >/tmp/hold &
}
counter() { # counter NAME: one of the driver's ethtool -S counters
  ptnet-ctl stats eth0 | sed -n "s/^PTNET-STAT $1 //p"
}
stats() { # stats NAME TAG: every driver counter and the stack's totals, as NAME-TAG-STAT lines
  ptnet-ctl stats eth0 | sed -n "s/^PTNET-STAT /$1-$2-STAT /p"
  for c in tx_packets rx_packets tx_dropped rx_dropped rx_errors rx_length_errors rx_frame_errors; do
    echo "$1-$2-STAT $c $(cat /sys/class/net/eth0/statistics/$c)"
  done
  dmesg | grep -F "virtio-net header" | head -n 3 | sed "s/^/$1-$2-HDR /"
}
cs() { cut -d' ' -f1 /proc/uptime | tr -d .; }   # centiseconds since boot
send() { # send NAME TAG IP PORT MIB: one stream of MIB MiB of /test/r (tcp-stream retries while
  #      the listener is not up yet); NAME-TAG-SENT status centiseconds MIB
  t0=$(cs); tcp-stream send "$3" "$4" /test/r "$5" 600; rc=$?; t1=$(cs)
  echo "$1-$2-SENT $rc $(( t1 - t0 )) $5"
}
recv() { # recv NAME TAG PORT: one stream on PORT; NAME-TAG-GOT bytes md5
  echo "$1-$2-GOT $(tcp-stream recv "$3" 600)"
}
finish() { # finish NAME
  ip link set eth0 down; rmmod ptnet; echo "$1-RMMOD $?"
  report_bad "$1"
}
waitfor() { # waitfor IP: until it answers a ping
  i=0; while [ $i -lt 120 ] && ! ping -c 1 -W 1 "$1" >/dev/null 2>&1; do i=$((i+1)); done
}
EOF
guest_script go a.sh <<'EOF'
# Guest A (10.0.0.1, vale5:1): offloads. Streams with B, then with C.
. /test/lib.sh; . /test/common.sh
up A 10.0.0.1
waitfor 10.0.0.2
stats A before
# 1. one stream each way with B, at the same time (B's shorter)
recv A ab 5002 >/tmp/recv-ab & rp=$!
send A ab 10.0.0.2 5001 "$BIG"
wait $rp; cat /tmp/recv-ab
stats A big
# 2. short streams (1 MiB) to B until both TX queues carried TCP (the queue follows the
#    socket's random hash): at least 2, at most 16; B counts them on port 5003, an empty one ends.
k=0
while [ $k -lt 16 ]; do
  k=$((k+1))
  send A q$k 10.0.0.2 5003 1
  [ $k -ge 2 ] && [ "$(counter tx0_csum)" -gt 0 ] && [ "$(counter tx1_csum)" -gt 0 ] && break
done
echo "A-QUEUE-STREAMS $k"
i=0; until timeout 10 nc 10.0.0.2 5003 </dev/null >/dev/null 2>&1 || [ $i -ge 30 ]; do i=$((i+1)); sleep 1; done
stats A queues
# 3. one stream each way with C (no offloads) at the same time; C waits for a knock on 5008
waitfor 10.0.0.3
i=0; until timeout 10 nc 10.0.0.3 5008 </dev/null >/dev/null 2>&1 || [ $i -ge 30 ]; do i=$((i+1)); sleep 1; done
recv A ac 5005 >/tmp/recv-ac & rp=$!
send A ac 10.0.0.3 5004 "$MIX"
wait $rp; cat /tmp/recv-ac
stats A mixed
ping -c 3 -W 5 10.0.0.3 >/dev/null 2>&1; echo "A-PING-C $?"
# 4. IPv6 (TSO6): one stream to B (whole TSO6 frames through the switch), then one to C (the
#    switch segments them); B and C listen once they are done with the above
send A v6b fd00::2 5011 "$V6"
send A v6c fd00::3 5012 "$V6"
stats A v6
# tell B and C we are done (they stay up meanwhile: A's streams need them); knock until each
# answers: C reads its counters after the last stream before it listens, and a knock refused
# meanwhile left it waiting out its whole timeout (250 s)
for p in 10.0.0.2 10.0.0.3; do
  i=0; until timeout 10 nc $p 5009 </dev/null >/dev/null 2>&1 || [ $i -ge 30 ]; do i=$((i+1)); sleep 1; done
done
finish A
EOF
guest_script go b.sh <<'EOF'
# Guest B (10.0.0.2, vale5:2): offloads. One stream each way with A, then A's short streams.
. /test/lib.sh; . /test/common.sh
up B 10.0.0.2
waitfor 10.0.0.1
recv B ab 5001 >/tmp/recv-ab & rp=$!
send B ab 10.0.0.1 5002 "$BACK"
wait $rp; cat /tmp/recv-ab
k=0
while [ $k -lt 17 ]; do
  k=$((k+1)); r=$(recv B q$k 5003); echo "$r"
  case "$r" in *" 0 d41d8cd98f00b204e9800998ecf8427e") break;; esac
done
stats B queues
recv B v6b 5011
timeout 200 nc -l -p 5009 </tmp/hold >/dev/null
finish B
EOF
guest_script go c.sh <<'EOF'
# Guest C (10.0.0.3, vale5:3): ptnet.ko vnet_hdr=0, no offloads. One stream each way with A.
. /test/lib.sh; . /test/common.sh
# a pacing_shift out of range is refused at load, with a message
insmod /lib/modules/ptnet.ko pacing_shift=11 2>/dev/null; echo "C-BADPACING $? $(dmesg | grep -c 'pacing_shift=11: give')"
up C 10.0.0.3 vnet_hdr=0
stats C before
timeout 630 nc -l -p 5008 </tmp/hold >/dev/null
recv C ac 5004 >/tmp/recv-ac & rp=$!
send C ac 10.0.0.1 5005 "$MIX"
wait $rp; cat /tmp/recv-ac
stats C mixed
recv C v6c 5012
stats C v6
timeout 250 nc -l -p 5009 </tmp/hold >/dev/null
finish C
EOF
head -c 1048583 /dev/urandom >go/test/r
guest_vars go BIG BACK MIX V6
pack_initrd go initrd-off
# data MIB: what `tcp-stream send ... /test/r MIB` sends: MIB MiB of go/test/r (1 MiB + 7
# random bytes, so the stream does not repeat on a round boundary) over and over.
data() {
  i=0
  while [ $i -lt $(( $1 / 8 + 1 )) ]; do
    cat go/test/r go/test/r go/test/r go/test/r go/test/r go/test/r go/test/r go/test/r; i=$((i+1))
  done | head -c $(( $1 * 1048576 ))
}
# expect MIB: "bytes md5" of `data MIB`, by busybox's md5sum (not the guests' tool)
expect() { echo "$(( $1 * 1048576 )) $(data "$1" | md5sum | cut -c1-32)"; }

# The host's view of the ports while the guests run (the last listing before they go).
(while [ ! -f vale.stop ]; do
   ./ptvmm-vale-ctl list vale5 >vale.tmp 2>/dev/null && grep -q 'vale5:1 ' vale.tmp && mv vale.tmp vale.last
   sleep 1; done) &
vpid=$!
t0=$(date +%s)
# guest NAME PORT MAC: boot one offloading guest on vale5, its console in NAME.log
guest() { boot_guest 660 initrd-off "$1.sh" "vale5:$2,offloads" "$3" $RINGS >"$1.log" 2>&1; }
guest b 2 02:00:00:00:00:0b & bpid=$!
guest c 3 02:00:00:00:00:0c & cpid=$!
guest a 1 02:00:00:00:00:0a; arc=$?
wait $bpid; brc=$?
wait $cpid; crc=$?
touch vale.stop; wait $vpid
echo "    (guests ran $(( $(date +%s) - t0 )) s)"
a=$(console a.log) b=$(console b.log) c=$(console c.log)
for g in A B C; do
  eval "t=\$$(echo $g | tr ABC abc)"
  echo "$t" | grep -E "^$g-" | grep -vE "^$g-FEATURE|^$g-[a-z]+-STAT (rx|tx)[01]_(kicks|irqs|polls)" | show $g
  ran_through $g "$t" || show_tail $g "$t" 30
done
[ -f vale.last ] && show host <vale.last

feat() { echo "$1" | sed -n "s/^$2-FEATURE $3 //p"; }     # feat TEXT GUEST NAME: on|off...
st() { val "$1" "$2-STAT $3"; }                            # st TEXT GUEST-TAG NAME
num() { echo "${1:-0}"; }
stream() { # stream NAME SENDER-TEXT SENDER-TAG RECEIVER-TEXT RECEIVER-TAG MIB: size and md5 equal
  s=$(expect "$6") g=$(val "$4" "$5-GOT") r=$(val "$2" "$3-SENT")
  rc=$(echo "$r" | cut -d' ' -f1) t=$(echo "$r" | cut -d' ' -f2)
  check "$1 (sender status $rc, ${t:-?}0 ms, $(( $6 * 8 * 100 / ${t:-1} )) Mbit/s; sent '$s', got '$g')" \
    test -n "$g" -a "$s" = "$g" -a "$rc" = 0
}

check "A, B and C load ptnet.ko and bring eth0 up (C with vnet_hdr=0)" \
  test "$(val "$a" A-INSMOD)$(val "$a" A-UP)$(val "$b" B-INSMOD)$(val "$b" B-UP)$(val "$c" C-INSMOD)$(val "$c" C-UP)" = 000000
check "ptnet.ko asks TCP for TSO frames of ~4 ms (pacing_shift: A $(val "$a" A-PACING), B $(val "$b" B-PACING), default 8)" \
  test "$(val "$a" A-PACING) $(val "$b" B-PACING)" = "8 8"
check "ptnet.ko refuses pacing_shift=11 at load and says why (insmod status, messages: $(val "$c" C-BADPACING))" \
  test "$(val "$c" C-BADPACING | cut -d' ' -f1)" != 0 -a "$(val "$c" C-BADPACING | cut -d' ' -f2)" -ge 1
check "A and B ack VNET_HDR and use a 12-byte header; C (vnet_hdr=0) acks nothing and has none" \
  test "$(val "$a" A-PROBE)|$(val "$b" B-PROBE)|$(val "$c" C-PROBE)" = "ptfeat 0x1 hdr 12|ptfeat 0x1 hdr 12|ptfeat 0x0 hdr 0"
for g in A B; do
  eval "t=\$$(echo $g | tr AB ab)"
  f="$(feat "$t" $g tx-checksum-ip-generic) $(feat "$t" $g tx-scatter-gather) $(feat "$t" $g tx-tcp-segmentation) $(feat "$t" $g tx-tcp6-segmentation) $(feat "$t" $g rx-checksum) $(feat "$t" $g rx-gro)"
  check "$g's offloads are on: HW_CSUM, SG, TSO, TSO6, RXCSUM, GRO ($f)" test "$f" = "on on on on on on"
done
f="$(feat "$c" C tx-checksum-ip-generic) $(feat "$c" C tx-scatter-gather) $(feat "$c" C tx-tcp-segmentation) $(feat "$c" C rx-checksum)"
check "C's offloads are off: HW_CSUM, SG, TSO, RXCSUM ($f)" test "$f" = "off [fixed] off [fixed] off [fixed] off [fixed]"

stream "A -> B: a $BIG MiB TCP stream arrives intact" "$a" A-ab "$b" B-ab "$BIG"
stream "B -> A: a $BACK MiB TCP stream at the same time arrives intact" "$b" B-ab "$a" A-ab "$BACK"
# Whether TCP builds TSO frames depends on its rate (tso autosizing, ACK clocking): in this slow
# harness a stream may send none, so the GSO checks take the whole run, every peer, both ways.
ag=$(( $(num "$(st "$a" A-mixed tx0_gso)") + $(num "$(st "$a" A-mixed tx1_gso)") ))
bg=$(( $(num "$(st "$b" B-queues tx0_gso)") + $(num "$(st "$b" B-queues tx1_gso)") ))
rg=$(( $(num "$(st "$b" B-queues rx0_gso)") + $(num "$(st "$b" B-queues rx1_gso)") + $(num "$(st "$a" A-mixed rx0_gso)") + $(num "$(st "$a" A-mixed rx1_gso)") ))
rc=$(( $(num "$(st "$b" B-queues rx0_chains)") + $(num "$(st "$b" B-queues rx1_chains)") + $(num "$(st "$a" A-mixed rx0_chains)") + $(num "$(st "$a" A-mixed rx1_chains)") ))
check "TSO frames were sent whole (A: $ag, B: $bg GSO frames)" test $((ag + bg)) -gt 0
check "GSO frames were received whole from the other offloading guest ($rg by A and B, $rc over several slots)" \
  test "$rg" -gt 0 -a "$rc" -gt 0 -a "$rg" -le $((ag + bg))
ac=$(( $(num "$(st "$a" A-big tx0_csum)") + $(num "$(st "$a" A-big tx1_csum)") ))
# Every data frame of the stream carries NEEDS_CSUM when the checksum is left to the header, and
# a frame holds at most 64 KiB (a whole TSO frame): so at least 16 such frames per MiB. Without
# the offload there are none. (How many more depends on TSO's sizes: 3964 and over 6400 seen.)
check "A handed the TCP checksums to the header ($ac frames with NEEDS_CSUM for $BIG MiB, >= 16 per MiB)" test "$ac" -ge $((BIG * 16))
ok_q=1 nq=0 k=1 s=$(expect 1)
while [ $k -le "$(num "$(val "$a" A-QUEUE-STREAMS)")" ]; do
  g=$(val "$b" "B-q$k-GOT"); nq=$k
  [ -n "$s" ] && [ "$s" = "$g" ] && [ "$(val "$a" "A-q$k-SENT" | cut -d' ' -f1)" = 0 ] || ok_q=0
  k=$((k+1))
done
check "$nq short streams A -> B (1 MiB each) arrive intact" test "$ok_q" = 1 -a "$nq" -ge 2
t0g=$(st "$a" A-queues tx0_csum) t1g=$(st "$a" A-queues tx1_csum)
check "A's TCP went out on both TX queues (NEEDS_CSUM frames on queue 0: $t0g, queue 1: $t1g; GSO: $(st "$a" A-queues tx0_gso), $(st "$a" A-queues tx1_gso))" \
  test "$(num "$t0g")" -gt 0 -a "$(num "$t1g")" -gt 0
r0=$(st "$b" B-queues rx0_packets) r1=$(st "$b" B-queues rx1_packets)
# The switch puts what A's TX queue k sends on B's RX ring k (both have 2 rings). How the flows
# hash onto the queues varies from run to run (once only 4 of A's TCP frames took queue 0), and
# a frame the switch drops on a full ring is counted by A but not by B, so the check is that
# both rings received, not how much.
check "B received on both RX rings (ring 0: $r0, ring 1: $r1 frames; A sent $t0g and $t1g TCP frames on queues 0 and 1; GSO: $(st "$b" B-queues rx0_gso), $(st "$b" B-queues rx1_gso))" \
  test "$(num "$r0")" -gt 0 -a "$(num "$r1")" -gt 0

stream "A -> C (no offloads): a $MIX MiB TCP stream through the switch's segmentation arrives intact" "$a" A-ac "$c" C-ac "$MIX"
stream "C -> A: a $MIX MiB TCP stream at the same time arrives intact (a zero header put in front)" "$c" C-ac "$a" A-ac "$MIX"
am=$(( $(num "$(st "$a" A-mixed tx0_gso)") + $(num "$(st "$a" A-mixed tx1_gso)") - $(num "$(st "$a" A-queues tx0_gso)") - $(num "$(st "$a" A-queues tx1_gso)") ))
check "A sent TSO frames to C ($am GSO frames; the switch segmented them)" test "$am" -gt 0
ce="$(st "$c" C-mixed rx_errors) $(st "$c" C-mixed rx_length_errors) $(st "$c" C-mixed rx_dropped)"
cg=$(( $(num "$(st "$c" C-mixed rx0_gso)") + $(num "$(st "$c" C-mixed rx1_gso)") + $(num "$(st "$c" C-mixed rx0_chains)") + $(num "$(st "$c" C-mixed rx1_chains)") ))
check "C got only frames that fit a slot, no errors or drops (errors, length errors, drops: $ce; GSO/chains: $cg)" \
  test "$ce" = "0 0 0" -a "$cg" = 0
check "A and B have no RX errors (A: $(st "$a" A-mixed rx_errors), B: $(st "$b" B-queues rx_errors))" \
  test "$(st "$a" A-mixed rx_errors)$(st "$b" B-queues rx_errors)" = 00
check "A pings C after the streams" test "$(val "$a" A-PING-C)" = 0
stream "A -> B over IPv6: a $V6 MiB TCP stream (TSO6, frames whole through the switch) arrives intact" "$a" A-v6b "$b" B-v6b "$V6"
stream "A -> C over IPv6: a $V6 MiB TCP stream through the switch's TSO6 segmentation arrives intact" "$a" A-v6c "$c" C-v6c "$V6"
# As above for IPv4: every IPv6 data frame carries NEEDS_CSUM (the TCP checksum over the IPv6
# pseudo-header left to the header), at least 16 per MiB, over the two IPv6 streams.
a6=$(( $(num "$(st "$a" A-v6 tx0_csum)") + $(num "$(st "$a" A-v6 tx1_csum)") - $(num "$(st "$a" A-mixed tx0_csum)") - $(num "$(st "$a" A-mixed tx1_csum)") ))
a6g=$(( $(num "$(st "$a" A-v6 tx0_gso)") + $(num "$(st "$a" A-v6 tx1_gso)") - $(num "$(st "$a" A-mixed tx0_gso)") - $(num "$(st "$a" A-mixed tx1_gso)") ))
check "A handed the IPv6 TCP checksums to the header ($a6 frames with NEEDS_CSUM for 2 x $V6 MiB, >= 16 per MiB; $a6g TSO6 frames)" \
  test "$a6" -ge $((2 * V6 * 16))
c6="$(st "$c" C-v6 rx_errors) $(st "$c" C-v6 rx_length_errors) $(st "$c" C-v6 rx_dropped)"
c6g=$(( $(num "$(st "$c" C-v6 rx0_gso)") + $(num "$(st "$c" C-v6 rx1_gso)") + $(num "$(st "$c" C-v6 rx0_chains)") + $(num "$(st "$c" C-v6 rx1_chains)") ))
check "C got only slot-sized IPv6 frames too, no errors or drops ($c6; GSO/chains: $c6g)" \
  test "$c6" = "0 0 0" -a "$c6g" = 0
# The host's view (information: TCP in this slow harness sends few TSO frames, see above).
hl=$(grep ' vale5:1 ' vale.last 2>/dev/null)
echo "    (host: A's port sent $(echo "$hl" | awk '{print $8}') bytes in $(echo "$hl" | awk '{print $7}') frames)"
check "rmmod clean in A, B and C, no oops/BUG/WARNING" \
  test "$(val "$a" A-RMMOD)$(val "$b" B-RMMOD)$(val "$c" C-RMMOD)$(val "$a" A-BAD)$(val "$b" B-BAD)$(val "$c" C-BAD)" = 000000
check "all three guests power off cleanly (ptvmm status A $arc, B $brc, C $crc)" test "$arc$brc$crc" = 000
check "the vale5 ports are removed after the guests exit" shm_empty

report_and_exit
