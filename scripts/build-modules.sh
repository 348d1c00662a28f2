#!/usr/bin/env bash
# Builds pam_dircache.so and libnss_dircache.so as the Debian package ships them (README
# PERFORMANCE, "The first lookup of a process"):
#   - release profile, each module a cdylib alone: built beside its rlib (which the tests
#     and benchmarks link), fat LTO keeps every public item, and the NSS module is 1.1 MB
#     instead of 0.74 MB, with more page faults on a process's first lookup;
#   - the NSS module's code laid out with the functions a process's first lookup runs placed
#     together at the start of .text (nss_module/first-lookup-functions.txt, made by
#     scripts/nss-first-lookup-functions.sh), so that lookup faults in one or two 64 kB
#     blocks of code instead of seven. This needs the LLD linker (rustc's default on
#     x86_64 Linux), whose --symbol-ordering-file takes the mangled names: they are read off
#     the module built a first time, so the list names functions, not one compiler's symbols.
#     A name the compiler inlined away or renamed is ignored: it costs locality, never
#     correctness.
#
#     scripts/build-modules.sh [--out DIR] [--check]
#
#   --out DIR   where the two modules go (default target/modules)
#   --check     fail, not warn, when the order cannot be applied (not LLD) or fewer than
#               80% of the listed functions were found (the list is stale: regenerate it)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/target/modules
check=0
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --check) check=1; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "build-modules.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
for tool in nm readelf; do
  command -v "$tool" >/dev/null || { echo "build-modules.sh: $tool is missing: apt-get install -y binutils" >&2; exit 1; }
done
release=${CARGO_TARGET_DIR:-$root/target}/release
list=$root/nss_module/first-lookup-functions.txt
work=$(mktemp -d "${TMPDIR:-/tmp}/dircache-modules.XXXXXX")
trap 'rm -rf "$work"' EXIT

problem() { # a warning, or with --check an error
  if [ "$check" = 1 ]; then echo "build-modules.sh: $*" >&2; exit 1; fi
  echo "build-modules.sh: warning: $*" >&2
}

cdylib() { # $1 = package, rest = extra rustc arguments
  local package=$1; shift
  cargo rustc --release --locked --quiet -p "$package" --lib --crate-type cdylib ${1:+--} "$@"
}

publish() { # both modules into $out, once both are built
  mkdir -p "$out"
  for module in libpam_dircache.so libnss_dircache.so; do
    cp "$work/$module" "$out/.$module.new"
    mv -f "$out/.$module.new" "$out/$module"
  done
  echo "$out"
}

cdylib pam_dircache
cp "$release/libpam_dircache.so" "$work/libpam_dircache.so"

cdylib nss_dircache
module=$release/libnss_dircache.so
if ! readelf -p .comment "$module" 2>/dev/null | grep -q 'Linker: LLD'; then
  problem "libnss_dircache.so was not linked by LLD: the first-lookup order is not applied"
  cp "$module" "$work/libnss_dircache.so"
  publish
  exit 0
fi
# Function symbols by their demangled name without the hash: the list's names.
nm --defined-only "$module" | awk '$2 ~ /^[tT]$/ {print $3}' > "$work/mangled"
nm --defined-only --demangle "$module" | awk '$2 ~ /^[tT]$/ {$1 = ""; $2 = ""; print substr($0, 3)}' \
  | sed -E 's/::h[0-9a-f]{16}$//' > "$work/demangled"
paste -d '\t' "$work/demangled" "$work/mangled" > "$work/names"
{ grep -v -e '^#' -e '^$' "$list" || true; } > "$work/wanted"
awk -F '\t' 'NR == FNR {wanted[$0] = NR; next} ($1 in wanted) {print wanted[$1] "\t" $2}' \
  "$work/wanted" "$work/names" | sort -n -s -k1,1 | cut -f2 > "$work/order"
listed=$(wc -l < "$work/wanted")
found=$(awk -F '\t' 'NR == FNR {wanted[$0] = 1; next} ($1 in wanted) {print $1}' \
  "$work/wanted" "$work/names" | sort -u | wc -l)
cdylib nss_dircache -C "link-arg=-Wl,--symbol-ordering-file=$work/order" \
  -C link-arg=-Wl,--no-warn-symbol-ordering
cp "$module" "$work/libnss_dircache.so"
# The second link must have put the listed functions before every other function.
# Prints how many listed symbols the module has and how many other functions come first.
read -r present misplaced < <(nm --defined-only "$module" | awk 'NR == FNR {ordered[$0] = 1; next}
  $2 !~ /^[tT]$/ || $3 ~ /^_(init|fini)$/ {next}
  ($3 in ordered) {present++; at[$1] = 1; if ($1 > last) last = $1; next}
  {other[$1] = 1}
  END {for (a in other) if (a < last && !(a in at)) before++; print present + 0, before + 0}' \
  "$work/order" -)
: "${present:=0}" "${misplaced:=1}"
if [ ! -s "$work/order" ] || [ "$present" -ne "$(wc -l < "$work/order")" ] || [ "$misplaced" -ne 0 ]; then
  problem "the first-lookup order was not applied ($misplaced other functions come before the listed ones)"
elif [ $((found * 100)) -lt $((listed * 80)) ]; then
  problem "only $found of the $listed functions in $list were found: regenerate it with scripts/nss-first-lookup-functions.sh"
fi
echo "build-modules.sh: $found of $listed first-lookup functions placed first in libnss_dircache.so"
publish
