#!/usr/bin/env bash
# Benchmark of the NSS module (libnss_dircache.so.2) beside glibc's `files` backend and
# Debian's libnss-cache, on the same 1,000 / 100,000 / 1,000,000 users: the first lookup in
# a fresh process and warm lookups by name and by uid (median, p99), through glibc's
# getpwnam_r/getpwuid_r and by calling the modules' functions directly. Each backend runs in
# a private mount namespace with a prepared copy of /etc bind-mounted over /etc, so the
# machine's own files are never touched. Needs root (unshare -m, mount --bind); takes a few
# minutes and about 3 GB under $NSS_BENCH_DIR (default: a temporary directory, removed
# afterwards). Prints tables and ratios; the README records the figures.
#     scripts/bench-nss.sh [SIZES...]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "bench-nss.sh: needs root for unshare -m and mount --bind" >&2
  exit 1
fi
scripts/install-deps.sh --bench
cargo build --release -p nss_dircache --lib --examples --quiet
# The module measured is the one the package ships (scripts/build-modules.sh).
modules=$(scripts/build-modules.sh | tail -n 1)
if [ -n "${NSS_BENCH_DIR:-}" ]; then
  work=$NSS_BENCH_DIR
else
  work=$(mktemp -d /var/tmp/dircache-nss-bench.XXXXXX)
  trap 'rm -rf "$work"' EXIT
fi
echo "NSS lookups: $(nproc) cores, kernel $(uname -r), glibc $(ldd --version | head -n 1 | awk '{print $NF}')"
NSS_BENCH_DIR=$work NSS_BENCH_MODULE=$modules/libnss_dircache.so \
  target/release/examples/nss_bench run "$@"
