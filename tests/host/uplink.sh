#!/usr/bin/env bash
# tests/host/uplink.sh — VALE uplinks on this host, inside network namespaces this script creates
# (and removes, even on failure). Needs root (ip netns) and the release binaries.
#
#   1. two "hosts": namespaces A and B, each with its own switch (PTVMM_SHM_DIR), joined by a veth
#      pair carrying a VXLAN device; each switch uplinked to its side (packet: on the VXLAN
#      device; tap: a tap bridged with it). pkt-gen on A's vale0:1 -> pkt-gen on B's vale0:1 and
#      back, paced: exactly the count sent arrives, every frame verified;
#   2. a namespace's kernel stack behind an uplink: its interface's rx_packets grows by exactly
#      what pkt-gen sent to its address; frames over its MTU are dropped and counted by the
#      uplink, not delivered; its ping (to a static neighbour) and ARP requests arrive on a
#      VALE port (5 ICMP frames of 98 bytes plus ARP frames of 42 bytes, nothing else);
#   3. detach with traffic running (the sender goes on, the port goes away, a tap disappears);
#      SIGKILL of the uplink process (the port is reclaimed, re-attach works, exact counts again);
#   4. bad input: unknown interface, interface down, already attached, MTU too large for the
#      switch's buffers, no permission -> exit status 2 and one line on stderr; the default mode
#      is xdp (libxdp1 must be installed; scripts/test installs it);
#   xdp mode also: the XDP program is removed on detach, and after SIGKILL + re-attach + detach;
#   5. ptvmm-afpacket, the AF_PACKET baseline of scripts/bench-uplink, counts exactly (paced
#      frames of 60 and 1514 bytes over a veth pair, every one verified).
# usage: tests/host/uplink.sh [BINDIR] [MODE...]   (default: target/release, modes packet tap xdp)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${1:-$ROOT/target/release}
shift || true
MODES=("$@")
[ ${#MODES[@]} -gt 0 ] || MODES=(packet tap xdp)
CTL=$BIN/ptvmm-vale-ctl
PKTGEN=$BIN/ptvmm-pktgen
P=ptu$$                          # namespace prefix, unique per run
T=$(mktemp -d /tmp/ptvmm-uplink.XXXXXX)
FAILS=0

say() { echo "uplink.sh: $*" >&2; }
die() { echo "uplink.sh: FAIL: $*" >&2; exit 1; }
check() { if eval "$2"; then say "ok: $1"; else say "FAIL: $1 ($2)"; FAILS=$((FAILS + 1)); fi; }

cleanup() {
  local n pid
  for n in a b c; do
    if [ -e "/run/netns/$P$n" ]; then
      # every process still running in the namespace (uplinks, pkt-gen) ends with it
      for pid in $(ip netns pids "$P$n" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
      ip netns del "$P$n" 2>/dev/null || true
    fi
  done
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || die "must run as root: it creates network namespaces (ip netns add)"
for b in "$CTL" "$PKTGEN" "$BIN/ptvmm-afpacket"; do [ -x "$b" ] || die "missing $b (cargo build --release -p pktgen)"; done
command -v ip >/dev/null || die "no ip command (apt-get install iproute2)"
command -v ping >/dev/null || die "no ping command (apt-get install iputils-ping)"
ip netns add "${P}probe" 2>"$T/netns.err" ||
  die "cannot create a network namespace: $(cat "$T/netns.err") — these tests need root with CAP_SYS_ADMIN and a kernel with network namespaces"
ip netns del "${P}probe"

# in NS CMD...: run CMD in namespace $P<NS> with that namespace's switch directory, bounded in time.
inns() { local n=$1; shift; ip netns exec "$P$n" env PTVMM_SHM_DIR="$T/$n" timeout 60 "$@"; }
# the same as words, for background jobs (so that $! is the process itself, which signals reach)
nsx() { echo ip netns exec "$P$1" env PTVMM_SHM_DIR="$T/$1" timeout 60; }
newns() {
  ip netns add "$P$1"; mkdir -p "$T/$1"
  # no IPv6: router/neighbour solicitations would be extra frames on the switches
  ip netns exec "$P$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n "$P$1" link set lo up
}

# rx_start NS PORT NAME [ARGS]: pkt-gen rx in the background, waits for its ready line.
rx_start() {
  local n=$1 port=$2 name=$3; shift 3
  $(nsx "$n") "$PKTGEN" -i "$port" -f rx "$@" >"$T/$name.out" 2>"$T/$name.err" &
  echo $! >"$T/$name.pid"
  local i
  for i in $(seq 100); do grep -q ready "$T/$name.err" 2>/dev/null && return 0; sleep 0.05; done
  die "pkt-gen rx $name never became ready: $(cat "$T/$name.err")"
}
# rx_stop NAME: SIGINT after the last frames settle; sets RX_PKTS RX_BYTES RX_GOOD.
rx_stop() {
  local name=$1 pid
  sleep 0.5
  pid=$(cat "$T/$name.pid")
  kill -INT "$pid" 2>/dev/null || true
  wait "$pid" || die "pkt-gen rx $name failed: $(cat "$T/$name.err")"
  RX_PKTS=$(awk '/^Received/ {print $2}' "$T/$name.out")
  RX_BYTES=$(awk '/^Received/ {print $4}' "$T/$name.out")
  RX_GOOD=$(awk '/^Verified/ {print $2}' "$T/$name.out")
  [ -n "$RX_PKTS" ] || die "no Received line from pkt-gen rx $name: $(cat "$T/$name.out")"
}
tx() { local n=$1 port=$2; shift 2; inns "$n" "$PKTGEN" -i "$port" -f tx "$@" >"$T/tx.out" 2>&1 || die "pkt-gen tx failed: $(cat "$T/tx.out")"; }
attach() { local n=$1; shift; inns "$n" "$CTL" attach vale0 "$@" >"$T/attach.out" 2>&1 || die "attach $* failed: $(cat "$T/attach.out")"; }
detach() { local n=$1; shift; inns "$n" "$CTL" detach vale0 "$@" >"$T/detach.out" 2>&1 || die "detach $* failed: $(cat "$T/detach.out")"; }
uplink_pid() { sed -n 's/^pid //p' "$T/$1/ptvmm-uplink.0.$2" 2>/dev/null; }
uplink_field() { sed -n "s/^$3 //p" "$T/$1/ptvmm-uplink.0.$2" 2>/dev/null; }
has_port() { inns "$1" "$CTL" list 2>/dev/null | grep -q " vale0:$2 "; }
wait_until() { local i; for i in $(seq "$1"); do eval "$2" && return 0; sleep 0.1; done; return 1; }

N=20000 RATE=20000   # paced: 1 s per direction

# --- the two "hosts" --------------------------------------------------------------------------
newns a; newns b
ip link add ua netns "${P}a" type veth peer name ub netns "${P}b"
ip -n "${P}a" addr add 10.99.0.1/24 dev ua; ip -n "${P}a" link set ua up
ip -n "${P}b" addr add 10.99.0.2/24 dev ub; ip -n "${P}b" link set ub up
ip -n "${P}a" link add vx type vxlan id 42 local 10.99.0.1 remote 10.99.0.2 dev ua dstport 4789
ip -n "${P}b" link add vx type vxlan id 42 local 10.99.0.2 remote 10.99.0.1 dev ub dstport 4789
for n in a b; do
  ip -n "$P$n" link set vx up
  ip -n "$P$n" link add br0 type bridge stp_state 0 forward_delay 0
  ip -n "$P$n" link set br0 up
done

# attach_host NS MODE: the uplink of a "host" (IF is where it sits); a tap goes into the bridge
attach_host() {
  local n=$1 mode=$2
  case $mode in
    tap) attach "$n" tp --mode tap; ip -n "$P$n" link set vx master br0; ip -n "$P$n" link set tp master br0 ;;
    *) ip -n "$P$n" link set vx nomaster 2>/dev/null || true; attach "$n" vx --mode "$mode" ;;
  esac
}
host_if() { [ "$1" = tap ] && echo tp || echo vx; }

exact_both_ways() {
  local mode=$1 what=$2 count=${3:-$N}
  rx_start b vale0:1 rxb
  tx a vale0:1 -n "$count" -R "$RATE"
  rx_stop rxb
  check "$mode: A->B $what: $count sent, $RX_PKTS received, $RX_GOOD verified" \
    "[ '$RX_PKTS' = $count ] && [ '$RX_GOOD' = $count ]"
  rx_start a vale0:1 rxa
  tx b vale0:1 -n "$count" -R "$RATE"
  rx_stop rxa
  check "$mode: B->A $what: $count sent, $RX_PKTS received, $RX_GOOD verified" \
    "[ '$RX_PKTS' = $count ] && [ '$RX_GOOD' = $count ]"
}

for mode in "${MODES[@]}"; do
  say "== mode $mode: two hosts over VXLAN"
  IF=$(host_if "$mode")
  attach_host a "$mode"; attach_host b "$mode"
  grep -q "($mode, pid" "$T/attach.out" || die "attach did not report mode $mode: $(cat "$T/attach.out")"
  exact_both_ways "$mode" "over VXLAN"
  inns a "$CTL" list >"$T/list.out"
  check "$mode: list shows the uplink's mode and its $N frames out" \
    "grep -Eq '^  vale0:$IF +$IF +$mode ' '$T/list.out' && [ \"\$(uplink_field a $IF out_pkts)\" -ge $N ]"

  say "== mode $mode: detach with traffic running"
  rx_start b vale0:1 rxb
  $(nsx a) "$PKTGEN" -i vale0:1 -f tx -n 200000 -R 50000 >"$T/txbg.out" 2>&1 &
  txpid=$!
  sleep 1
  start=$(date +%s%N)
  detach a "$IF"
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  check "$mode: detach with traffic running took ${ms} ms (< 5000)" "[ $ms -lt 5000 ]"
  check "$mode: the sender goes on after the detach" "kill -0 $txpid 2>/dev/null"
  check "$mode: the uplink port is gone from A's switch" "! has_port a $IF"
  [ "$mode" != tap ] || check "tap: the tap interface is gone" "! ip -n ${P}a link show tp >/dev/null 2>&1"
  [ "$mode" != xdp ] || check "xdp: the XDP program is removed from vx" "! ip -n ${P}a link show vx | grep -q xdp"
  kill -INT "$txpid" 2>/dev/null || true; wait "$txpid" || die "pkt-gen tx failed after the detach: $(cat "$T/txbg.out")"
  rx_stop rxb
  check "$mode: B received frames before the detach ($RX_PKTS, all verified)" "[ '$RX_PKTS' -gt 0 ] && [ '$RX_PKTS' = '$RX_GOOD' ]"

  say "== mode $mode: SIGKILL of the uplink process"
  attach_host a "$mode"
  pid=$(uplink_pid a "$IF")
  [ -n "$pid" ] || die "no uplink state file for $IF in A"
  $(nsx a) "$PKTGEN" -i vale0:1 -f tx -n 100000 -R 20000 >"$T/txbg.out" 2>&1 &
  txpid=$!
  sleep 0.5
  kill -9 "$pid"
  check "$mode: the sender goes on after SIGKILL of the uplink" "sleep 0.5; kill -0 $txpid 2>/dev/null"
  check "$mode: the killed uplink's port is reclaimed by the sender" "wait_until 50 '! has_port a $IF'"
  [ "$mode" != tap ] || check "tap: the killed uplink's tap interface is gone" "wait_until 50 '! ip -n ${P}a link show tp >/dev/null 2>&1'"
  kill -INT "$txpid" 2>/dev/null || true; wait "$txpid" || true
  attach_host a "$mode"
  check "$mode: re-attach after SIGKILL replaced the stale state" "[ \"\$(uplink_pid a $IF)\" != '$pid' ]"
  exact_both_ways "$mode" "after SIGKILL and re-attach" 2000
  detach a "$IF"; detach b "$IF"
  [ "$mode" != xdp ] || check "xdp: no XDP program left on vx after SIGKILL, re-attach and detach" \
    "! ip -n ${P}a link show vx | grep -q xdp && ! ip -n ${P}b link show vx | grep -q xdp"
done

# --- a kernel stack behind an uplink ----------------------------------------------------------
newns c
mac_of() { ip -n "${P}c" -br link show "$1" | awk '{print $3}'; }
rxp() { ip netns exec "${P}c" cat "/sys/class/net/$1/statistics/rx_packets"; }
for mode in "${MODES[@]}"; do
  say "== mode $mode: the kernel stack of a namespace behind the uplink"
  if [ "$mode" = tap ]; then
    attach c kt --mode tap; K=kt UP=kt
  else
    ip -n "${P}c" link add ka type veth peer name kb
    ip -n "${P}c" link set ka up; ip -n "${P}c" link set kb up
    attach c ka --mode "$mode"; K=kb UP=ka
  fi
  ip -n "${P}c" addr add 10.1.0.1/24 dev "$K"
  mac=$(mac_of "$K")
  before=$(rxp "$K")
  tx c vale0:1 -n 1000 -R 10000 -D "$mac" -d 10.1.0.1
  sleep 0.3
  after=$(rxp "$K")
  check "$mode: $K's rx_packets grew by exactly the 1000 frames pkt-gen sent to it ($before -> $after)" \
    "[ $((after - before)) = 1000 ]"

  # its own traffic on a VALE port: 5 pings to a static neighbour, then ARP for an unknown one
  rx_start c vale0:2 rxc --no-verify
  ip -n "${P}c" neigh replace 10.1.0.99 lladdr 02:00:00:00:00:99 dev "$K" nud permanent
  ip netns exec "${P}c" ping -q -c 5 -i 0.2 -W 1 10.1.0.99 >/dev/null 2>&1 || true
  ip netns exec "${P}c" ping -q -c 1 -W 1 10.1.0.98 >/dev/null 2>&1 || true
  rx_stop rxc
  arps=$((RX_PKTS - 5))
  check "$mode: the namespace's 5 pings and $arps ARP requests arrived on vale0:2 ($RX_PKTS frames, $RX_BYTES bytes)" \
    "[ $arps -ge 1 ] && [ '$RX_BYTES' = $((5 * 98 + arps * 42)) ]"

  # frames over the interface's MTU: dropped and counted by the uplink, never delivered (the
  # uplink re-reads the MTU once a second)
  ip -n "${P}c" link set "$UP" mtu 1000
  [ "$K" = "$UP" ] || ip -n "${P}c" link set "$K" mtu 1000
  sleep 1.5
  before=$(rxp "$K")
  tx c vale0:1 -n 100 -R 10000 -l 1100 -D "$mac" -d 10.1.0.1
  sleep 1.5
  after=$(rxp "$K")
  d=$(uplink_field c "$UP" drop_mtu)
  check "$mode: 100 frames of 1100 bytes over MTU 1000: none delivered ($before -> $after), $d counted as drop_mtu" \
    "[ $after = $before ] && [ '$d' = 100 ]"
  detach c "$UP"
  [ "$mode" = tap ] || ip -n "${P}c" link del ka
done

# --- the kernel-only baseline of scripts/bench-uplink -------------------------------------
# ptvmm-afpacket (AF_PACKET sender -> veth -> AF_PACKET receiver, no switch) must count exactly,
# or the benchmark's baseline row means nothing.
say "== the AF_PACKET baseline tool (ptvmm-afpacket)"
AFP=$BIN/ptvmm-afpacket
ip -n "${P}c" link add bl0 type veth peer name bl1
ip -n "${P}c" link set bl0 up; ip -n "${P}c" link set bl1 up
for len in 60 1514; do
  $(nsx c) "$AFP" -i bl1 -f rx >"$T/afrx.out" 2>"$T/afrx.err" &
  afrx=$!
  wait_until 50 "grep -q ready '$T/afrx.err'" || die "ptvmm-afpacket rx never became ready: $(cat "$T/afrx.err")"
  inns c "$AFP" -i bl0 -f tx -l "$len" -n 5000 -R 20000 >"$T/aftx.out" 2>&1 || die "ptvmm-afpacket tx failed: $(cat "$T/aftx.out")"
  sleep 0.5
  kill -INT "$afrx"; wait "$afrx" || die "ptvmm-afpacket rx failed: $(cat "$T/afrx.err")"
  got=$(awk '/^Received/ {print $2 "/" $4}' "$T/afrx.out") good=$(awk '/^Verified/ {print $2}' "$T/afrx.out")
  check "ptvmm-afpacket: 5000 frames of $len bytes over a veth pair: $(awk '/^Sent/ {print $2}' "$T/aftx.out") sent, $got received (frames/bytes), $good verified" \
    "grep -q '^Sent 5000 packets' '$T/aftx.out' && [ '$got' = 5000/$((5000 * len)) ] && [ '$good' = 5000 ]"
done
ip -n "${P}c" link del bl0

# --- bad input ----------------------------------------------------------------------------
say "== bad input"
ip -n "${P}c" link add dn0 type veth peer name dn1
ip -n "${P}c" link add big0 type veth peer name big1
ip -n "${P}c" link set big0 mtu 9000 up
ip -n "${P}c" link add ok0 type veth peer name ok1
ip -n "${P}c" link set ok0 up
# bad NAME EXPECTED ARGS...: exit status 2, one line on stderr containing EXPECTED
bad() {
  local name=$1 want=$2 rc=0; shift 2
  inns c "$@" >"$T/bad.out" 2>"$T/bad.err" || rc=$?
  check "bad input, $name: status $rc, one line: $(head -c 200 "$T/bad.err")" \
    "[ $rc = 2 ] && [ \$(wc -l <'$T/bad.err') = 1 ] && grep -q '$want' '$T/bad.err'"
}
bad "unknown interface" "Unknown interface nosuch0" "$CTL" attach vale0 nosuch0 --mode packet
bad "unknown interface, default mode" "Unknown interface nosuch0" "$CTL" attach vale0 nosuch0
bad "interface down" "Interface dn0 is down" "$CTL" attach vale0 dn0 --mode packet
bad "MTU over the switch's buffers" "MTU of big0 is 9000" "$CTL" attach vale0 big0 --mode packet
bad "not a tap" "exists and is not a tap" "$CTL" attach vale0 ok0 --mode tap
bad "bad mode" "invalid value .raw. for" "$CTL" attach vale0 ok0 --mode raw
bad "no permission (uid 65534)" "No permission" setpriv --reuid=65534 --regid=65534 --clear-groups \
  --inh-caps=-all "$CTL" attach vale0 ok0 --mode packet
inns c "$CTL" attach vale0 ok0 >"$T/attach.out" 2>"$T/attach.err" || die "default attach failed: $(cat "$T/attach.out" "$T/attach.err")"
check "the default mode is xdp (libxdp present): $(cat "$T/attach.out")" "grep -q '(xdp, pid' '$T/attach.out' && [ ! -s '$T/attach.err' ]"
detach c ok0
attach c ok0 --mode packet
bad "already attached" "already attached to vale0 by process" "$CTL" attach vale0 ok0 --mode packet
bad "already attached, another switch" "already attached to vale0" "$CTL" attach vale1 ok0 --mode packet
bad "detach of an interface not attached" "not attached to vale0" "$CTL" detach vale0 dn0
detach c ok0
check "nothing disturbed: the switch of C is gone with its last port" "! inns c '$CTL' list | grep -q vale0"

[ "$FAILS" = 0 ] || die "$FAILS check(s) failed"
say "all uplink tests passed (modes: ${MODES[*]})"
