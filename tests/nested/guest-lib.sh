# tests/nested/guest-lib.sh — the helpers of the nested suites' guest scripts (busybox sh in an L2
# guest). pack_initrd (lib.sh) puts it into every test initrd as /test/lib.sh; a guest script
# starts with `. /test/lib.sh`, which also reads the host's values from /test/vars.sh (BAD, and
# what the suite gave guest_vars).
[ -r /test/vars.sh ] && . /test/vars.sh

# report_bad NAME: NAME-BAD and how many dmesg lines match BAD (an oops, BUG, WARNING, ...),
# then the first 20 of them as NAME-OOPS lines.
report_bad() {
  echo "$1-BAD $(dmesg | grep -cE "$BAD")"
  dmesg | grep -E "$BAD" | head -n 20 | sed "s/^/$1-OOPS /"
}

# wait_ready LOG: until LOG has a "ready" line (pkt-gen's: it is registered), 60 s at most.
wait_ready() {
  _i=0; while [ $_i -lt 60 ] && ! grep -q ready "$1"; do sleep 1; _i=$((_i+1)); done
}

# pktgen TAG ARGS...: pkt-gen ARGS (120 s at most); then TAG-RC <status> and its output as
# "TAG: ..." lines.
pktgen() {
  _tag=$1; shift
  timeout 120 pkt-gen "$@" >"/tmp/$_tag.log" 2>&1; echo "$_tag-RC $?"
  sed "s/^/$_tag: /" "/tmp/$_tag.log"
}

# pktgen_ready TAG ARGS...: pkt-gen ARGS (120 s at most) in the background; TAG-READY 1 once it
# is registered (0 if it never said so in 60 s), so that the host may start sending; then, when
# it is done, TAG-RC <status> and its output as "TAG: ..." lines.
pktgen_ready() {
  _tag=$1; shift
  timeout 120 pkt-gen "$@" >"/tmp/$_tag.log" 2>&1 & _p=$!
  wait_ready "/tmp/$_tag.log"
  echo "$_tag-READY $(grep -c ready "/tmp/$_tag.log")"
  wait $_p; echo "$_tag-RC $?"
  sed "s/^/$_tag: /" "/tmp/$_tag.log"
}
