#!/usr/bin/env bash
# Regenerates nss_module/first-lookup-functions.txt: the functions of the NSS module that a
# process's first lookup runs (the module's constructors, which run when glibc loads it;
# then by name, by uid and initgroups, most instructions first),
# profiled with callgrind on the module as scripts/build-modules.sh builds it, over 1,000
# users in a private mount namespace as scripts/bench-nss.sh measures them.
# scripts/build-modules.sh places these functions together at the start of the module's
# code. Run it again when a change to the lookup path makes build-modules.sh warn that the
# list is stale. Needs root (unshare -m, mount --bind) and valgrind.
#     scripts/nss-first-lookup-functions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "nss-first-lookup-functions.sh: needs root for unshare -m and mount --bind" >&2
  exit 1
fi
for tool in valgrind callgrind_annotate; do
  command -v "$tool" >/dev/null || { echo "nss-first-lookup-functions.sh: $tool is missing: apt-get install -y valgrind" >&2; exit 1; }
done
list=nss_module/first-lookup-functions.txt
work=$(mktemp -d /var/tmp/dircache-first-lookup.XXXXXX)
trap 'rm -rf "$work"' EXIT
cargo build --release -p nss_dircache --examples --quiet
bench=${CARGO_TARGET_DIR:-$PWD/target}/release/examples/nss_bench
# The profile is of the module as shipped: which functions LTO keeps depends on the build.
scripts/build-modules.sh --out "$work/modules" > /dev/null
module=$work/modules/libnss_dircache.so
NSS_BENCH_DIR=$work NSS_BENCH_MODULE=$module "$bench" generate 1000
fixture=$work/1000

profile() { # $1 = output name, $2 = callgrind's --toggle-collect, rest = nss_bench measure arguments
  local name=$1 toggle=$2; shift 2
  unshare -m -- sh -c 'mount --bind "$1" /etc || exit 99; shift; exec "$@"' sh "$fixture/etc-dircache" \
    env LD_LIBRARY_PATH="$fixture/lib" DIRCACHE_CACHE_DIR="$fixture/cache" \
    valgrind --quiet --tool=callgrind --callgrind-out-file="$work/$name.out" \
    --toggle-collect="$toggle" "$bench" measure "$@" 1000 > /dev/null
  callgrind_annotate --inclusive=no --threshold=100 "$work/$name.out" \
    | grep -F "[$module]" \
    | sed -E 's/^ *[0-9,]+ +\([^)]*\) +//; s/^(\?\?\?|[^ ]*\.rs):([0-9]+:)?//; s/ \[[^]]*\]$//' \
    | sed -E "s/'[0-9]+$//"
}

{
  echo "# The NSS module's functions that a process's first lookup runs: its constructors (run"
  echo "# when glibc loads it), then by name, by uid and initgroups, most instructions first."
  echo "# scripts/build-modules.sh places them together, in this order."
  echo "# Made by scripts/nss-first-lookup-functions.sh with $(rustc --version); do not edit."
  {
    # crtbegin.o's constructor, which callgrind shows as an address; its code is one
    # section with three other functions, which come along.
    printf '%s\n' frame_dummy register_tm_clones deregister_tm_clones __do_global_dtors_aux
    profile load _dl_init "direct:$module:dircache" name first
    profile by-name '_nss_dircache_*' "direct:$module:dircache" name first
    profile by-uid '_nss_dircache_*' "direct:$module:dircache" uid first
    profile initgroups '_nss_dircache_*' glibc name initgroups-first
  } | grep -v '^0x' | awk '!seen[$0]++'
} > "$work/list"
[ "$(grep -vc '^#' "$work/list")" -gt 10 ] || { echo "nss-first-lookup-functions.sh: the profile found almost nothing:" >&2; cat "$work/list" >&2; exit 1; }
mv "$work/list" "$list"
echo "$list: $(grep -vc '^#' "$list") functions"
