# scripts/lib/bench-json.sh — machine-readable benchmark results, sourced by scripts/bench and the
# scripts it runs (bench-vale, bench-net, bench-boot-qemu, bench-ptnet, bench-uplink). Bash.
#
#   bench_json_init "$0" "$@"   once, first thing: records the command line and a run id for every
#                               line of this run. A script run by another (scripts/bench vale runs
#                               scripts/bench-vale) keeps the outer one's, from the environment.
#                               BENCH_ENV="NAME..." names environment settings of the script to
#                               put in front of the command line when they are set.
#   bench_json SECTION KEY=VALUE...
#       appends one line to $BENCH_RESULTS (default <repo>/.cache/bench/results.jsonl):
#       {"date":"2026-12-01T09:40:12Z","run":"20261201T094001Z-1234","command":"scripts/bench vale",
#        "commit":"3d09739","host":{"hostname":"...","nproc":2,"cpu":"..."},"load_1m":0.12,
#        "section":"vale","figures":{"frame_bytes":60,"rx_mode":"verify","rx_mpps":24.432,...}}
#       commit ends in -dirty when files outside docs/ differ from it.
#       A VALUE that is a JSON number is written as one, "" or "-" as null, anything else as a
#       string. KEYs are lower case with digits and '_'; the unit goes into the name (rx_mpps,
#       rtt_ms_avg, median_ms). One line per measured figure or table row.
# BENCH_RESULTS=/dev/null turns the lines off.

# bench_json_init ARGV0 ARGS...: exports BENCH_COMMAND and BENCH_RUN unless an outer script did.
bench_json_init() {
  if [ -z "${BENCH_COMMAND:-}" ]; then
    local root=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)} cmd a
    cmd=$1; shift
    cmd=${cmd#"$root"/}; cmd=${cmd#./}
    for a in ${BENCH_ENV:-}; do   # settings taken from the environment go in front, NAME=VALUE
      [ -z "${!a+set}" ] || cmd="$a=$(bench_json_quote "${!a}") $cmd"
    done
    for a in "$@"; do cmd+=" $(bench_json_quote "$a")"; done
    export BENCH_COMMAND=$cmd
  fi
  [ -n "${BENCH_RUN:-}" ] || export BENCH_RUN="$(date -u +%Y%m%dT%H%M%SZ)-$$"
}

# bench_json_quote WORD -> WORD as a shell would need it (single quotes unless it is plain)
bench_json_quote() {
  if [[ $1 =~ ^[A-Za-z0-9_./:,=+@%-]+$ ]]; then printf '%s' "$1"
  else printf "'%s'" "${1//\'/\'\\\'\'}"; fi
}

# bench_json_str TEXT -> TEXT as a JSON string (quotes, backslashes and control characters escaped)
bench_json_str() {
  local s=$1
  s=${s//\\/\\\\}; s=${s//\"/\\\"}
  s=${s//$'\t'/\\t}; s=${s//$'\n'/\\n}; s=${s//$'\r'/\\r}
  s=$(printf '%s' "$s" | tr -d '\000-\037')
  printf '"%s"' "$s"
}

# bench_json_val VALUE -> a JSON number, null or string
bench_json_val() {
  if [[ $1 =~ ^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$ ]]; then
    printf '%s' "$1"
  elif [ -z "$1" ] || [ "$1" = - ]; then
    printf 'null'
  else
    bench_json_str "$1"
  fi
}

bench_json() {
  local section=${1:?bench_json wants a SECTION}; shift
  local root=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
  local out=${BENCH_RESULTS:-$root/.cache/bench/results.jsonl}
  local kv k figs=
  for kv in "$@"; do
    k=${kv%%=*}
    [[ $kv == *=* && $k =~ ^[a-z][a-z0-9_]*$ ]] ||
      { echo "bench_json: bad figure '$kv' (want key=value, key in [a-z0-9_])" >&2; return 2; }
    figs+="${figs:+,}\"$k\":$(bench_json_val "${kv#*=}")"
  done
  if [ -z "${BENCH_JSON_HOST:-}" ]; then
    local cpu commit
    cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
    commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || true)
    [ -z "$commit" ] || git -C "$root" diff --quiet HEAD -- . ':!docs' 2>/dev/null || commit+=-dirty
    BENCH_JSON_HOST="\"commit\":$(bench_json_str "$commit"),\"host\":{\"hostname\":$(bench_json_str "$(hostname 2>/dev/null || cat /proc/sys/kernel/hostname)"),\"nproc\":$(nproc),\"cpu\":$(bench_json_str "${cpu:-unknown}")}"
  fi
  [ "$out" = /dev/null ] || mkdir -p "$(dirname "$out")"
  printf '{"date":"%s","run":%s,"command":%s,%s,"load_1m":%s,"section":%s,"figures":{%s}}\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(bench_json_str "${BENCH_RUN:-unknown}")" \
    "$(bench_json_str "${BENCH_COMMAND:-unknown}")" "$BENCH_JSON_HOST" \
    "$(bench_json_val "$(cut -d' ' -f1 /proc/loadavg)")" "$(bench_json_str "$section")" "$figs" >>"$out"
}
