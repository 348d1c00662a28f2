#!/usr/bin/env bash
# Benchmark of fleets (README "FLEETS", "PERFORMANCE"; issue 13 "Tests and figures"):
#  1. a publisher syncs USERS generated users from the mock directory (Application Integration,
#     the fast one), then `publish DIR --json`: wall clock, peak RSS (GNU time), bytes written;
#  2. a real nginx (HTTPS on 127.0.0.1, its own configuration, never the system service, access
#     log with $bytes_sent) serves DIR; one host pulls (`sync --json`): time, peak RSS, requests
#     and bytes (the JSON "snapshot" object and nginx's log); then an unchanged pull;
#  3. a fleet: HOSTS hosts (each its own config and cache) pull a snapshot of FLEET_USERS users
#     with CONCURRENCY pulls at a time (xargs -P): requests and bytes nginx served, wall clock,
#     for the first pulls and for unchanged pulls;
#  4. beside it, what the same hosts would cost syncing from IceWarp directly: one IceWarp sync
#     of FLEET_USERS accounts through a counting proxy (requests and bytes measured on one host),
#     multiplied by HOSTS (extrapolated, not run HOSTS times).
#     scripts/bench-fleet.sh [USERS [HOSTS [CONCURRENCY [FLEET_USERS]]]]
# Defaults: 100000 1000 16 10000. Everything happens in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/https-nginx.sh
users=${1:-100000}
hosts=${2:-1000}
conc=${3:-16}
fleet_users=${4:-10000}
for tool in /usr/bin/time /usr/sbin/nginx /usr/bin/openssl /usr/bin/python3; do
  [ -x "$tool" ] || { echo "bench-fleet: $tool is missing: apt-get install -y time nginx openssl python3" >&2; exit 1; }
done
cargo build --release --workspace --quiet
bin=${CARGO_TARGET_DIR:-$PWD/target}/release
work=$(mktemp -d "${TMPDIR:-/tmp}/dircache-bench-fleet.XXXXXX")
chmod 755 "$work"
pids=()
nginx_pid=
cleanup() {
  [ -n "$nginx_pid" ] && kill -TERM "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
  [ "${#pids[@]}" -gt 0 ] && kill "${pids[@]}" 2>/dev/null
  if [ "${DIRCACHE_BENCH_KEEP:-}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
now() { date +%s.%N; }
secs_since() { python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.1f}")' "$1" "$(now)"; }
mb() { python3 -c 'import sys; b = int(sys.argv[1]); print(f"{b / 1e9:.1f} GB" if b >= 1e9 else f"{b / 1e6:.1f} MB" if b >= 1e6 else f"{b / 1e3:.1f} kB")' "$1"; }

start_directory() { # $1 = name, rest = arguments; not in $(…), so the pid is kept
  local name=$1; shift
  "$bin/dircache-demo-directory" "$@" > "$work/$name.url" &
  pids+=($!)
  for _ in $(seq 600); do [ -s "$work/$name.url" ] && break; sleep 0.1; done
  [ -s "$work/$name.url" ] || { echo "bench-fleet: the mock directory did not start" >&2; exit 1; }
}

# ---- publishers: one per user count (the fleet uses a smaller snapshot when asked)
"$bin/dircache-sync" keygen --secret-key "$work/publish.key" --public-key "$work/publish.pub" > /dev/null
mkdir -p "$work/www"
publisher_config() { # $1 = name, $2 = directory URL
  mkdir -p "$work/$1"
  cat > "$work/$1/dircache.toml" <<TOML
[cache]
dir = "$work/$1/cache"
[directory]
type = "application-integration"
url = "$2"
timeout_secs = 120
[publish]
signing_key_file = "$work/publish.key"
TOML
  chmod 600 "$work/$1/dircache.toml"
}
start_directory appint --generate "$users" --app-integration
publisher_config publisher "$(head -n 1 "$work/appint.url")"
"$bin/dircache-sync" --config "$work/publisher/dircache.toml" sync > /dev/null
/usr/bin/time -f '%e %M' -o "$work/time" \
  "$bin/dircache-sync" --config "$work/publisher/dircache.toml" publish "$work/www/big" --json > "$work/publish.json"
read -r publish_secs publish_rss < "$work/time"
publish_bytes=$(du -sb "$work/www/big" | cut -f1)
publish_files=$(find "$work/www/big" -type f | wc -l)

if [ "$fleet_users" != "$users" ]; then
  start_directory appint-fleet --generate "$fleet_users" --app-integration
  publisher_config publisher-fleet "$(head -n 1 "$work/appint-fleet.url")"
  "$bin/dircache-sync" --config "$work/publisher-fleet/dircache.toml" sync > /dev/null
  "$bin/dircache-sync" --config "$work/publisher-fleet/dircache.toml" publish "$work/www/fleet" > /dev/null
else
  cp -a "$work/www/big" "$work/www/fleet"
fi

# ---- nginx over HTTPS with a throwaway CA (scripts/lib/https-nginx.sh)
log="$work/nginx-access.log"
start_https_nginx "$work" "log_format bench '\$status \$bytes_sent \$request_uri'; access_log $log bench;" \
  1024 dircache-bench-ca || { echo "bench-fleet: see above" >&2; exit 1; }
touch "$log"

host_config() { # $1 = name, $2 = snapshot directory under nginx's root
  mkdir -p "$work/hosts/$1"
  cat > "$work/hosts/$1/dircache.toml" <<TOML
[cache]
dir = "$work/hosts/$1/cache"
[directory]
type = "application-integration"
url = "http://127.0.0.1:9/unused"
[snapshot]
url = "https://127.0.0.1:$port/$2/"
public_key_file = "$work/publish.pub"
ca_file = "$work/ca.pem"
TOML
  chmod 600 "$work/hosts/$1/dircache.toml"
}
mark() { wc -l < "$log"; }
served() { # $1 = log line mark: "requests bytes statuses" served since
  tail -n +"$(( $1 + 1 ))" "$log" | awk '{n++; b+=$2; s[$1]++} END {
    out=""; for (k in s) out=out k "×" s[k] " "; printf "%d %d %s\n", n, b, out }'
}
pull() { # $1 = label, $2 = host
  local m; m=$(mark)
  /usr/bin/time -f '%e %M' -o "$work/time" \
    "$bin/dircache-sync" --config "$work/hosts/$2/dircache.toml" sync --json > "$work/pull.json"
  sleep 0.2 # nginx writes its log line after the reply
  local secs rss; read -r secs rss < "$work/time"
  local reported; reported=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["snapshot"]; print(s["requests"], s["bytes_fetched"], "unchanged" if s["unchanged"] else "installed")' "$work/pull.json")
  read -r n b statuses <<< "$(served "$m")"
  printf '| %s | %s s | %d MB | %s requests, %s fetched (%s) | %d requests, %s sent (%s) |\n' \
    "$1" "$secs" $((rss / 1024)) "${reported%% *}" "$(mb "$(cut -d' ' -f2 <<< "$reported")")" \
    "${reported##* }" "$n" "$(mb "$b")" "${statuses% }"
}

host_config single big
fleet() { # $1 = label
  local m start; m=$(mark); start=$(now)
  seq "$hosts" | xargs -P "$conc" -I{} \
    "$bin/dircache-sync" --config "$work/hosts/h{}/dircache.toml" sync > /dev/null 2> "$work/fleet.err" \
    || { echo "bench-fleet: a fleet pull failed: $(head -n 5 "$work/fleet.err")" >&2; exit 1; }
  local wall; wall=$(secs_since "$start")
  sleep 0.5
  read -r n b statuses <<< "$(served "$m")"
  printf '| %s | %s s | %d requests (%s per host), %s sent (%s per host) | %s |\n' "$1" "$wall" "$n" \
    "$(python3 -c "print(f'{$n/$hosts:.1f}')")" "$(mb "$b")" \
    "$(python3 -c "print(f'{$b/$hosts/1e3:.1f} kB')")" "${statuses% }"
}

# ---- IceWarp directly: one host's sync through a counting proxy, then × HOSTS
start_directory icewarp --generate "$fleet_users"
icewarp_url=$(head -n 1 "$work/icewarp.url")
cat > "$work/proxy.py" <<'PY'
# Counts the requests and bytes (request + reply bodies and headers) between dircache-sync and
# the mock IceWarp server; prints its URL, then writes the counts to COUNTS at every request.
import http.client, http.server, sys, urllib.parse
upstream = urllib.parse.urlsplit(sys.argv[1]); counts = sys.argv[2]
state = {"requests": 0, "bytes": 0}
class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One write per reply and no Nagle: otherwise delayed ACKs cost 40 ms a request.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if not hasattr(self, "conn"):
            self.conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=120)
        conn = self.conn
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        conn.request("POST", self.path, body, headers)
        reply = conn.getresponse(); data = reply.read()
        self.send_response(reply.status)
        sent_headers = [(k, v) for k, v in reply.getheaders()
                        if k.lower() not in ("content-length", "connection", "transfer-encoding")]
        for k, v in sent_headers: self.send_header(k, v)
        self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
        state["requests"] += 1
        state["bytes"] += len(body) + sum(len(k) + len(v) + 4 for k, v in self.headers.items()) \
            + len(data) + sum(len(k) + len(v) + 4 for k, v in sent_headers) + 40
        with open(counts, "w") as f: f.write(f"{state['requests']} {state['bytes']}\n")
    def log_message(self, *args): pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
print(f"http://127.0.0.1:{server.server_address[1]}{upstream.path}", flush=True)
server.serve_forever()
PY
python3 "$work/proxy.py" "$icewarp_url" "$work/proxy.counts" > "$work/proxy.url" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/proxy.url" ] && break; sleep 0.1; done
mkdir -p "$work/icewarp-host"
cat > "$work/icewarp-host/dircache.toml" <<TOML
[cache]
dir = "$work/icewarp-host/cache"
[directory]
type = "icewarp"
server = "$(head -n 1 "$work/proxy.url")"
username = "admin@example.com"
password = "demo-admin-password"
timeout_secs = 120
TOML
chmod 600 "$work/icewarp-host/dircache.toml"
start=$(now)
"$bin/dircache-sync" --config "$work/icewarp-host/dircache.toml" sync > /dev/null
icewarp_secs=$(secs_since "$start")
read -r icewarp_requests icewarp_bytes < "$work/proxy.counts"

echo
echo "dircache fleet benchmark, $(date -u +%F), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "Publisher and one host, $users users (Application Integration mock):"
echo
echo "| step | wall clock | peak RSS | dircache-sync says | nginx served |"
echo "|---|---:|---:|---|---|"
printf '| publish DIR --json | %s s | %d MB | %d files, %s written | |\n' \
  "$publish_secs" $((publish_rss / 1024)) "$publish_files" "$(mb "$publish_bytes")"
pull "host, first pull" single
pull "host, unchanged pull" single
"$bin/dircache-sync" --config "$work/publisher/dircache.toml" publish "$work/www/big" > /dev/null
pull "host, republished same data" single

for i in $(seq "$hosts"); do host_config "h$i" fleet; done
echo
echo "Fleet: $hosts hosts pulling a snapshot of $fleet_users users, $conc at a time (xargs -P $conc):"
echo
echo "| run | wall clock | nginx served | statuses |"
echo "|---|---:|---|---|"
fleet "first pulls"
fleet "unchanged pulls"
echo
echo "The same $hosts hosts syncing from IceWarp directly ($fleet_users accounts; one host's sync"
echo "measured through a counting proxy in ${icewarp_secs} s, multiplied by $hosts):"
echo
echo "| | requests | bytes |"
echo "|---|---:|---:|"
printf '| one host (measured) | %d | %s |\n' "$icewarp_requests" "$(mb "$icewarp_bytes")"
printf '| %d hosts, every interval (extrapolated) | %d | %s |\n' "$hosts" \
  $((icewarp_requests * hosts)) "$(mb $((icewarp_bytes * hosts)))"
