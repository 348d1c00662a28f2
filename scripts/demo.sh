#!/usr/bin/env bash
# The main job on an embedded default: build dircache, create a user with
# `dircache-sync user add`, then log that user in through the real libpam with
# pam_dircache.so. Everything happens in a temporary directory; nothing in /etc changes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

echo "== building (cargo build --workspace)"
cargo build --workspace --quiet
bin=$PWD/target/debug
demo=$(mktemp -d "${TMPDIR:-/tmp}/dircache-demo.XXXXXX")
trap 'rm -rf "$demo"' EXIT

cat > "$demo/dircache.toml" <<TOML
# A demo configuration: everything under $demo.
[cache]
dir = "$demo/cache"

[directory]
type = "none"

[unix]
home = "/home/{name}"
TOML
chmod 600 "$demo/dircache.toml"
sync() { "$bin/dircache-sync" --config "$demo/dircache.toml" "$@"; }

echo "== dircache-sync user add demo (password from stdin)"
printf 'demo-password\n' | sync user add demo --full-name "Demo User" --email demo@example.com \
  --privilege login --privilege change_password --password-stdin
echo "== dircache-sync user list"
sync user list
echo "== dircache-sync user show demo"
sync user show demo

mkdir -p "$demo/pam.d"
for stack in auth account password session; do
  echo "$stack required $bin/libpam_dircache.so config=$demo/dircache.toml"
done > "$demo/pam.d/dircache-demo"
for stack in auth account password session; do echo "$stack required pam_deny.so"; done > "$demo/pam.d/other"
pamtester_() {
  LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libpam_wrapper.so PAM_WRAPPER=1 \
  PAM_WRAPPER_SERVICE_DIR="$demo/pam.d" pamtester -v dircache-demo "$@"
}

echo "== PAM: a wrong password is refused"
if printf 'not-the-password\n' | pamtester_ demo authenticate 2>&1; then
  echo "FAILED: a wrong password was accepted" >&2; exit 1
fi
echo
echo "== PAM: authenticate + account with the right password"
printf 'demo-password\n' | pamtester_ demo authenticate acct_mgmt 2>&1
echo
echo "PAM login of 'demo' through pam_dircache.so: SUCCESS"
