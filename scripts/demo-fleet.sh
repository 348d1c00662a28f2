#!/usr/bin/env bash
# Fleets end to end (README "FLEETS"): a publisher syncs from the bundled demo directory and
# publishes a signed snapshot into the root of a real nginx (HTTPS on 127.0.0.1, its own
# configuration, never the system service); two hosts with no directory administrator
# credentials pull it, look users up through NSS and log a directory user in through the real
# libpam; an unchanged pull is one 304; a tampered file is refused with the cache unchanged.
# Everything happens in a temporary directory; nothing in /etc changes.
#
# Scripted runs (benchmarks): DIRCACHE_DEMO_KEEP=1 keeps the temporary directory and prints
# its path; the commands it runs are the ones to time (`publish DIR --json`, `sync --json`).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/https-nginx.sh
scripts/install-deps.sh --fleet
for tool in /usr/sbin/nginx /usr/bin/minisign /usr/bin/openssl; do
  [ -x "$tool" ] || { echo "demo-fleet: $tool is missing: apt-get install -y nginx minisign openssl" >&2; exit 1; }
done

echo "== building (cargo build --workspace)"
cargo build --workspace --quiet
bin=${CARGO_TARGET_DIR:-$PWD/target}/debug
demo=$(mktemp -d "${TMPDIR:-/tmp}/dircache-fleet.XXXXXX")
chmod 755 "$demo"
directory_pid=
nginx_pid=
cleanup() {
  [ -n "$nginx_pid" ] && kill -TERM "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
  [ -n "$directory_pid" ] && kill "$directory_pid" 2>/dev/null
  if [ "${DIRCACHE_DEMO_KEEP:-}" = 1 ]; then echo "kept $demo"; else rm -rf "$demo"; fi
}
trap cleanup EXIT

echo "== starting the bundled demo directory (dircache-demo-directory)"
"$bin/dircache-demo-directory" > "$demo/directory.url" &
directory_pid=$!
for _ in $(seq 50); do [ -s "$demo/directory.url" ] && break; sleep 0.1; done
url=$(head -n 1 "$demo/directory.url")

echo "== the publisher: keygen, sync, publish"
mkdir -p "$demo/publisher" "$demo/www"
"$bin/dircache-sync" keygen --secret-key "$demo/publisher/publish.key" --public-key "$demo/publish.pub"
cat > "$demo/publisher/dircache.toml" <<TOML
[cache]
dir = "$demo/publisher/cache"

[directory]
type = "icewarp"
server = "$url"
username = "admin@example.com"
password = "demo-admin-password"
timeout_secs = 10

[publish]
signing_key_file = "$demo/publisher/publish.key"
TOML
chmod 600 "$demo/publisher/dircache.toml"
publisher() { "$bin/dircache-sync" --config "$demo/publisher/dircache.toml" "$@"; }
publisher sync
publisher publish "$demo/www/dircache"
echo
echo "== minisign -Vm manifest.json -p publish.pub   (an administrator checks by hand)"
minisign -Vm "$demo/www/dircache/manifest.json" -p "$demo/publish.pub"

echo
echo "== nginx on 127.0.0.1 over HTTPS, serving $demo/www"
# A throwaway CA and a server certificate it signs; the hosts trust the CA (ca_file).
start_https_nginx "$demo" "access_log $demo/nginx-access.log;" 64 dircache-demo-ca \
  || { echo "demo-fleet: see above" >&2; exit 1; }
snapshot_url="https://127.0.0.1:$port/dircache/"
echo "serving $snapshot_url"

host_config() {  # NAME
  mkdir -p "$demo/$1"
  cat > "$demo/$1/dircache.toml" <<TOML
[cache]
dir = "$demo/$1/cache"

[directory]                # only for password checks at login: no administrator here
type = "icewarp"
server = "$url"
timeout_secs = 10

[snapshot]
url = "$snapshot_url"
public_key_file = "$demo/publish.pub"
ca_file = "$demo/ca.pem"
TOML
  chmod 600 "$demo/$1/dircache.toml"
}
host() { local name=$1; shift; "$bin/dircache-sync" --config "$demo/$name/dircache.toml" "$@"; }

for name in host1 host2; do
  host_config "$name"
  echo
  echo "== $name: dircache-sync sync   (pulls the snapshot)"
  host "$name" sync
done
echo
echo "== the same users with the same uids everywhere"
publisher user list > "$demo/publisher.users"
host host1 user list > "$demo/host1.users"
host host2 user list > "$demo/host2.users"
cat "$demo/host1.users"
cmp "$demo/publisher.users" "$demo/host1.users" && cmp "$demo/publisher.users" "$demo/host2.users"
echo "identical on the publisher, host1 and host2"

echo
echo "== host1: an unchanged snapshot is one conditional request (304), nothing written"
host host1 sync
tail -n 1 "$demo/nginx-access.log"

echo
echo "== host1: NSS (nss_wrapper) and a PAM login of a directory user (pam_wrapper)"
: > "$demo/empty"
LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libnss_wrapper.so NSS_WRAPPER_PASSWD="$demo/empty" \
  NSS_WRAPPER_GROUP="$demo/empty" NSS_WRAPPER_MODULE_SO_PATH="$bin/libnss_dircache.so" \
  NSS_WRAPPER_MODULE_FN_PREFIX=dircache DIRCACHE_CACHE_DIR="$demo/host1/cache" \
  getent passwd alice@example.com
mkdir -p "$demo/pam.d"
for stack in auth account password session; do
  echo "$stack required $bin/libpam_dircache.so config=$demo/host1/dircache.toml"
done > "$demo/pam.d/dircache-fleet"
for stack in auth account password session; do echo "$stack required pam_deny.so"; done > "$demo/pam.d/other"
printf 'alice-password\n' | LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libpam_wrapper.so PAM_WRAPPER=1 \
  PAM_WRAPPER_SERVICE_DIR="$demo/pam.d" pamtester -v dircache-fleet alice@example.com authenticate acct_mgmt 2>&1

echo
echo "== host1 is a replica: user add is refused"
host host1 user add eve 2>&1 || true

echo
echo "== a republication of the same data: host1 fetches the manifest and its signature only"
publisher publish "$demo/www/dircache" > /dev/null
host host1 sync
tail -n 2 "$demo/nginx-access.log"

echo
echo "== a tampered file in nginx's root is refused, host1's cache unchanged"
publisher user set carol@example.com --grant export_email > /dev/null   # new data to publish
publisher publish "$demo/www/dircache" > /dev/null
for f in "$demo/www/dircache/"*.users.jsonl.gz; do printf 'x' >> "$f"; done
before=$(find "$demo/host1/cache" -type f ! -name status.json -exec sha256sum {} + | sort)
if host host1 sync; then echo "FAILED: a tampered snapshot was installed" >&2; exit 1; fi
after=$(find "$demo/host1/cache" -type f ! -name status.json -exec sha256sum {} + | sort)
[ "$before" = "$after" ] && echo "host1's cache is byte-identical"
publisher publish "$demo/www/dircache" > /dev/null
host host1 sync
echo
echo "Fleet demo: publisher → nginx (HTTPS) → 2 hosts without directory credentials: SUCCESS"
