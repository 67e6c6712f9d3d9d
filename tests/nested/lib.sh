# tests/nested/lib.sh — the check helpers of the nested test scripts (busybox sh), sourced from
# the job folder (scripts/test copies it there beside the binaries).
pass=0; fail=0
ok()     { pass=$((pass+1)); echo "ok - $*"; }
not_ok() { fail=$((fail+1)); echo "not ok - $*"; }
check()  { name=$1; shift; if "$@"; then ok "$name"; else not_ok "$name"; fi; }
has()    { case "$1" in *"$2"*) return 0;; esac; return 1; }       # has TEXT SUBSTRING
val()    { echo "$1" | sed -n "s/^$2 //p" | tail -n1; }                # val TEXT KEY: what follows "KEY "
