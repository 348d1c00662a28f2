#!/usr/bin/env bash
# Large and hostile Application Integration replies (issue 10, point 7): what a sync costs in
# time and peak memory (GNU time -v, "Maximum resident set size") for
#   realistic-250  250 MiB of users like the mock's (about 150 bytes each: 1.7 M users)
#   tiny-250       250 MiB of {"userName":"userNNNNNNN"} (27 bytes each: 9.7 M users)
#   million        1,000,000 users like the mock's (146 MiB): what the default cap is sized for
#   aliases        one user with 20,000 addresses (the per-user de-duplication)
#   tiny-1023      1023 MiB of tiny users: the worst a reply within the default cap can be
#   giant-1023     one user whose fullName is 1023 MiB
# each served by a small Python HTTP server on 127.0.0.1 and synced with `sync --dry-run`
# (the listing and the plan, nothing written). Run by hand (several minutes, 5 GB of disk, up
# to 10 GB of RAM with an old binary); not part of scripts/test.sh. Prints one line per case.
#
#     [CASES="million aliases"] scripts/bench-replies.sh [DIRCACHE_SYNC] [EXTRA_DIRECTORY_LINE]
#
# DIRCACHE_SYNC defaults to target/release/dircache-sync (built first); EXTRA_DIRECTORY_LINE
# is added to [directory], e.g. "max_reply_mib = 4096" to let a case through the cap.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v /usr/bin/time >/dev/null || { echo "needs GNU time: apt-get install -y time" >&2; exit 1; }
bin=${1:-}
extra=${2:-}
if [ -z "$bin" ]; then
  cargo build --release -p dircache-sync --quiet
  bin=$PWD/target/release/dircache-sync
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/dircache-replies.XXXXXX")
server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT

python3 - "$work" <<'PY'
import itertools, json, sys
work = sys.argv[1]
def write(name, users, limit=None):
    """Writes users until the file would pass `limit` bytes (if given)."""
    with open(f"{work}/{name}.json", "w") as f:
        size, count = 1, 0
        f.write("[")
        for user in users:
            text = ("," if count else "") + json.dumps(user, separators=(",", ":"))
            if limit is not None and size + len(text) + 1 > limit:
                break
            f.write(text)
            size, count = size + len(text), count + 1
        f.write("]")
    print(f"{name}: {count} users", file=sys.stderr)
def realistic():
    for i in itertools.count():
        name = f"user{i:07d}"
        yield {"userName": name, "distinguishedName": f"UID={name},DC=example,DC=com",
               "fullName": f"User {i}", "emailAddresses": [f"{name}@example.com"]}
mib = 1 << 20
write("realistic-250", realistic(), 250 * mib)
write("tiny-250", ({"userName": f"user{i:07d}"} for i in itertools.count()), 250 * mib)
write("million", itertools.islice(realistic(), 1_000_000))
write("aliases", [{"userName": "many", "emailAddresses":
                   [f"alias{i}@example.com" for i in range(20_000)]}])
write("tiny-1023", ({"userName": f"user{i:07d}"} for i in itertools.count()), 1023 * mib)
write("giant-1023", [{"userName": "giant", "fullName": "x" * (1023 * mib - 64)}])
PY

cat > "$work/serve.py" <<'PY'
import http.server, os, shutil, sys
root = sys.argv[1]
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        path = f"{root}/{self.path.strip('/')}.json"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(os.path.getsize(path)))
        self.send_header("Connection", "close")
        self.end_headers()
        with open(path, "rb") as f:
            shutil.copyfileobj(f, self.wfile, 1 << 20)
    def log_message(self, *args):
        pass
httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(httpd.server_address[1], flush=True)
httpd.serve_forever()
PY
python3 "$work/serve.py" "$work" > "$work/port" &
server=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(head -n 1 "$work/port")
printf 'root:x:0:0::/root:/bin/sh\n' > "$work/passwd"
: > "$work/group"

echo "bench-replies: $bin ${extra:+($extra)}, $(nproc) cores"
for case in ${CASES:-realistic-250 tiny-250 million aliases tiny-1023 giant-1023}; do
  cat > "$work/dircache.toml" <<TOML
[cache]
dir = "$work/cache"
[directory]
type = "application-integration"
url = "http://127.0.0.1:$port/$case"
timeout_secs = 900
$extra
[unix]
local_passwd = "$work/passwd"
local_group = "$work/group"
TOML
  chmod 600 "$work/dircache.toml"
  status=ok
  /usr/bin/time -v -o "$work/time" "$bin" --config "$work/dircache.toml" sync --dry-run --json \
    > "$work/out" 2> "$work/err" || status=$(head -c 160 "$work/err")
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time")
  rss=$(awk -F': ' '/Maximum resident set size/ {print int($2 / 1024)}' "$work/time")
  size=$(( $(stat -c %s "$work/$case.json") >> 20 ))
  printf '%-14s %5d MiB reply  %9s  %6d MiB peak RSS  %s\n' "$case" "$size" "$secs" "$rss" "$status"
done
