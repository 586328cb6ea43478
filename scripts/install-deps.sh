#!/bin/sh
# Install every Debian package the build, the tests and the demo need.
# Idempotent: does nothing when all are present; runs `apt-get update` only
# when something is missing, so a warm machine never touches the network.
# --check: only say what is missing (exit 1), install nothing.
set -eu
check_only=0
[ "${1:-}" = "--check" ] && check_only=1

PACKAGES="
make gcc g++ clang llvm lld pkg-config
libbpf-dev bpftool libelf-dev libdw-dev zlib1g-dev libdeflate-dev libzstd-dev
libcapstone-dev libiberty-dev
protobuf-c-compiler libprotobuf-c-dev protobuf-compiler
python3 jq libcap2-bin bpftrace uftrace linux-perf time chromium valgrind
libjson-c-dev gcc-riscv64-linux-gnu binutils-riscv64-linux-gnu qemu-user
librust-tokio-dev librust-async-std-dev librust-futures-dev
librust-async-executor-dev librust-async-task-dev
librust-libc-dev librust-hyper-dev
"

missing=""
for pkg in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $pkg"
	fi
done

# A Rust toolchain: the image ships one in root's cargo home; otherwise use Debian's.
if ! command -v cargo >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/cargo" ] && [ ! -x /root/.cargo/bin/cargo ]; then
	missing="$missing cargo rustc"
fi

if [ -n "$missing" ] && [ "$check_only" -eq 1 ]; then
	echo "install-deps: missing packages:$missing" >&2
	exit 1
fi
if [ -n "$missing" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "install-deps: missing packages:$missing (run as root to install them)" >&2
		exit 1
	fi
	echo "install-deps: installing$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >&2
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing >&2
fi

# Node.js reads our exports back in the tests with independent readers
# (tests/web: pprof-format; speedscope's own app, in Debian's Chromium), from
# the npm registry, pinned by its lock file.
if ! command -v npm >/dev/null 2>&1; then
	if [ "$check_only" -eq 1 ] || [ "$(id -u)" -ne 0 ]; then
		echo "install-deps: missing: nodejs npm" >&2
		exit 1
	fi
	apt-get update -q >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm >&2
fi
web="$(dirname "$0")/../tests/web"
if [ ! -e "$web/node_modules/.package-lock.json" ] || [ "$web/package-lock.json" -nt "$web/node_modules/.package-lock.json" ]; then
	if [ "$check_only" -eq 1 ]; then
		echo "install-deps: missing: the npm packages of tests/web" >&2
		exit 1
	fi
	(cd "$web" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi

# tracefs is needed by bpftrace (benchmarks) and handy for debugging uprobes.
if [ "$(id -u)" -eq 0 ] && [ -d /sys/kernel/tracing ] && [ ! -e /sys/kernel/tracing/uprobe_events ]; then
	mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
fi
exit 0
