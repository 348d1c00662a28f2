#!/usr/bin/env bash
# The main job on an embedded default: build dircache, start the bundled demo directory (a
# small server speaking the IceWarp admin API), "Test Settings" (sync --dry-run), "Synchronize
# now" (sync), list the users, then log a directory user in through the real libpam with
# pam_dircache.so — the password checked by the directory — and a manually created local
# user too. Everything happens in a temporary directory on 127.0.0.1; nothing in /etc changes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --demo

echo "== building (cargo build --workspace)"
cargo build --workspace --quiet
bin=$PWD/target/debug
demo=$(mktemp -d "${TMPDIR:-/tmp}/dircache-demo.XXXXXX")
directory_pid=
cleanup() {
  [ -n "$directory_pid" ] && kill "$directory_pid" 2>/dev/null
  rm -rf "$demo"
}
trap cleanup EXIT

echo "== starting the bundled demo directory (dircache-demo-directory)"
"$bin/dircache-demo-directory" > "$demo/directory.url" &
directory_pid=$!
for _ in $(seq 50); do [ -s "$demo/directory.url" ] && break; sleep 0.1; done
url=$(head -n 1 "$demo/directory.url")
echo "IceWarp admin API at $url (admin@example.com; users alice, bob, carol)"

cat > "$demo/dircache.toml" <<TOML
# A demo configuration: everything under $demo.
[cache]
dir = "$demo/cache"

[directory]
type = "icewarp"
server = "$url"
username = "admin@example.com"
password = "demo-admin-password"
timeout_secs = 10

[sync]
default_privileges = ["login", "read_own_archive"]
TOML
chmod 600 "$demo/dircache.toml"
dircache_sync() { "$bin/dircache-sync" --config "$demo/dircache.toml" "$@"; }

echo
echo "== dircache-sync sync --dry-run    (Test Settings: nothing is written)"
dircache_sync sync --dry-run
echo
echo "== dircache-sync sync              (Synchronize now)"
dircache_sync sync
echo
echo "== dircache-sync user add demo     (a manually created user with a local password)"
printf 'demo-password\n' | dircache_sync user add demo --full-name "Demo User" --email demo@example.com \
  --privilege login --privilege change_password --password-stdin
echo
echo "== dircache-sync user list"
dircache_sync user list
echo
echo "== dircache-sync status"
dircache_sync status

mkdir -p "$demo/pam.d"
for stack in auth account password session; do
  echo "$stack required $bin/libpam_dircache.so config=$demo/dircache.toml"
done > "$demo/pam.d/dircache-demo"
for stack in auth account password session; do echo "$stack required pam_deny.so"; done > "$demo/pam.d/other"
pamtester_() {
  LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libpam_wrapper.so PAM_WRAPPER=1 \
  PAM_WRAPPER_SERVICE_DIR="$demo/pam.d" pamtester -v dircache-demo "$@" 2>&1
}

echo
echo "== NSS: getent passwd / id through libnss_dircache.so (nss_wrapper, nothing installed)"
: > "$demo/empty"
nss_() {
  LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libnss_wrapper.so NSS_WRAPPER_PASSWD="$demo/empty" \
  NSS_WRAPPER_GROUP="$demo/empty" NSS_WRAPPER_MODULE_SO_PATH="$bin/libnss_dircache.so" \
  NSS_WRAPPER_MODULE_FN_PREFIX=dircache DIRCACHE_CACHE_DIR="$demo/cache" "$@"
}
nss_ getent passwd alice@example.com demo
nss_ id alice@example.com

echo
echo "== PAM: alice@example.com with a wrong password (the directory says no)"
if printf 'not-the-password\n' | pamtester_ alice@example.com authenticate; then
  echo "FAILED: a wrong password was accepted" >&2; exit 1
fi
echo
echo "== PAM: carol@example.com is disabled in the directory"
if printf 'carol-password\n' | pamtester_ carol@example.com authenticate acct_mgmt; then
  echo "FAILED: a disabled user got in" >&2; exit 1
fi
echo
echo "== PAM: the local user demo"
printf 'demo-password\n' | pamtester_ demo authenticate acct_mgmt
echo
echo "== PAM: alice@example.com with her directory password"
printf 'alice-password\n' | pamtester_ alice@example.com authenticate acct_mgmt
echo
echo "PAM login of 'alice@example.com' (password checked by the demo directory) through pam_dircache.so: SUCCESS"
