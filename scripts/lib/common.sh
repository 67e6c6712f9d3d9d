# scripts/lib/common.sh — shared by the bash scripts: scripts/test, scripts/soak, scripts/demo,
# scripts/bench*, scripts/nested and guest-images/build.
# Provides: say, die, apt_install, ensure_tools and ensure_debs (apt-get installs what is missing
# when root), build_release.

ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
PROG=${PROG:-$(basename "$0")}

say() { echo "$PROG: $*" >&2; }
die() { echo "$PROG: error: $*" >&2; exit 1; }

# apt_install PACKAGE... — installs Debian packages (as root; otherwise says how and stops),
# refreshing the package lists once if the first try fails.
apt_install() {
  [ "$(id -u)" = 0 ] ||
    die "missing $*: run as root, or: sudo apt-get install --no-install-recommends $*"
  say "installing $* (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get install -y -qq --no-install-recommends "$@" ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@"; }; } \
    >/dev/null 2>&1 || die "apt-get install $* failed"
}

# ensure_tools COMMAND:PACKAGE... — installs the Debian packages of missing commands.
ensure_tools() {
  local pair cmd pkg missing=()
  for pair in "$@"; do
    cmd=${pair%%:*} pkg=${pair#*:}
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
}

# ensure_debs PACKAGE... — installs the Debian packages that are not installed (libraries).
ensure_debs() {
  local p missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
}

# The tools every path needs: a Rust toolchain (cannot be installed from here), a C compiler
# for the guest's helpers, and what the guest image and the nested harness use.
ensure_base_tools() {
  command -v cargo >/dev/null 2>&1 ||
    die "no cargo on PATH: install Rust (https://rustup.rs) and run this again"
  ensure_tools gcc:gcc cpio:cpio qemu-system-x86_64:qemu-system-x86 unshare:util-linux \
    dpkg-deb:dpkg
}

# build_release [CARGO ARGS] — release build (default: every binary of the workspace).
build_release() {
  local args=("$@")
  [ ${#args[@]} -gt 0 ] || args=(--workspace --bins)
  say "building release binaries (cargo build --release ${args[*]})"
  (cd "$ROOT" && cargo build --release --quiet "${args[@]}") || die "cargo build failed"
}

# The guest's pkt-gen: ptvmm-pktgen linked statically (glibc, +crt-static) into target/guest,
# where guest-images/build picks it up as /bin/pkt-gen.
build_guest_pktgen() {
  say "building the guest pkt-gen (static ptvmm-pktgen in target/guest)"
  (cd "$ROOT" && RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --quiet \
    -p pktgen --bin ptvmm-pktgen --target x86_64-unknown-linux-gnu --target-dir target/guest) ||
    die "building the static guest pkt-gen failed"
}

# The nested suites, in the order scripts/test runs them: NAME L1-CPUS SCRIPT L1-TIME-LIMIT (s;
# a suite takes a third of it or less on an idle machine).
NESTED_SUITES=(
  "linux-boot 2 tests/nested/linux-boot.sh 420"
  "ptnet-driver 3 tests/nested/ptnet-driver.sh 420"
  "ptnet-pktgen 3 tests/nested/ptnet-pktgen.sh 420"
  "ptnet-stack 3 tests/nested/ptnet-stack.sh 420"
  "ptnet-hostile 3 tests/nested/ptnet-hostile.sh 420"
  "ptnet-offload 3 tests/nested/ptnet-offload.sh 900"
  "ptnet-uplink 3 tests/nested/ptnet-uplink.sh 420"
)

# prepare_nested_job — builds ptvmm, pkt-gen (host and static guest) and the guest image, and
# copies what the nested suites need into a fresh folder; sets NESTED_JOB (removed on exit).
prepare_nested_job() {
  build_release -p ptvmm -p pktgen
  build_guest_pktgen
  "$ROOT/guest-images/build"
  NESTED_JOB=$(mktemp -d)
  trap 'rm -rf "$NESTED_JOB"' EXIT
  cp "$ROOT/target/release/ptvmm" "$ROOT/target/release/ptvmm-pktgen" \
    "$ROOT/target/release/ptvmm-vale-ctl" \
    "$ROOT/tests/nested/lib.sh" "$ROOT/tests/nested/guest-lib.sh" "$ROOT/.cache/guest/bzImage" \
    "$ROOT/.cache/guest/initramfs.cpio.gz" "$NESTED_JOB/"
  copy_l1_net "$NESTED_JOB"
}

# copy_l1_net DIR — what network namespaces with veth pairs and VXLAN need in L1, whose busybox
# `ip` has neither: iproute2's ip as DIR/bin/ip (scripts/nested copies its shared libraries)
# and the modules tun veth udp_tunnel ip6_udp_tunnel vxlan in DIR/l1mod, in load order.
copy_l1_net() {
  ensure_tools ip:iproute2
  mkdir -p "$1/bin" "$1/l1mod"
  cp "$(command -v ip)" "$1/bin/ip"
  local m
  for m in tun veth udp_tunnel ip6_udp_tunnel vxlan; do
    cp "$ROOT/.cache/guest/modules/$m.ko" "$1/l1mod/" || die "no $m.ko in .cache/guest/modules (guest-images/build)"
  done
}
