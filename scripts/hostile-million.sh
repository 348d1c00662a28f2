#!/usr/bin/env bash
# Hostile input at scale (issue 6): a directory that lists 1,000,000 users. Syncs them from
# the mock Application Integration server (release build, the mock in its own process, GNU
# time measuring dircache-sync alone), then a second sync with no change, then reads every
# record back the way NSS does and checks that each one makes exactly one well-formed passwd
# line. Prints the figures the README records. Run by hand (about 2 minutes, 2 GB of RAM
# and 1.5 GB of disk); not part of scripts/test.sh.
#
#     scripts/hostile-million.sh [USERS]
set -euo pipefail
cd "$(dirname "$0")/.."
users=${1:-1000000}
command -v /usr/bin/time >/dev/null || { echo "needs GNU time: apt-get install -y time" >&2; exit 1; }
cargo build --release --workspace --quiet
cargo build --release --example passwd_lines --quiet
bin=$PWD/target/release
work=$(mktemp -d "${TMPDIR:-/tmp}/dircache-million.XXXXXX")
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT

"$bin/dircache-demo-directory" --generate "$users" --app-integration > "$work/url" &
pid=$!
for _ in $(seq 1200); do [ -s "$work/url" ] && break; sleep 0.1; done
url=$(head -n 1 "$work/url")
printf 'root:x:0:0::/root:/bin/sh\n' > "$work/passwd"
: > "$work/group"
cat > "$work/dircache.toml" <<TOML
[cache]
dir = "$work/cache"
[directory]
type = "application-integration"
url = "$url"
timeout_secs = 300
[unix]
local_passwd = "$work/passwd"
local_group = "$work/group"
TOML
chmod 600 "$work/dircache.toml"

measure() { # $1 = label, rest = command
  local label=$1; shift
  /usr/bin/time -f '%e %M' -o "$work/time" "$@" > "$work/out" 2> "$work/err" || {
    cat "$work/err" >&2; exit 1; }
  read -r secs rss_kb < "$work/time"
  printf '%-44s %8s s %8d MB\n' "$label" "$secs" $((rss_kb / 1024))
}

echo "hostile-million: $users users from Application Integration, $(nproc) cores"
measure "first sync (everyone created)" "$bin/dircache-sync" --config "$work/dircache.toml" sync --json
created=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["created"]))' "$work/out")
measure "second sync (no change, nothing written)" "$bin/dircache-sync" --config "$work/dircache.toml" sync --json
unchanged=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["unchanged"], r["generation"])' "$work/out")
measure "every record as a passwd line (NSS reader)" "$bin/examples/passwd_lines" "$work/cache"
lines=$(cat "$work/out")
du -sh "$work/cache/current/" | awk '{print "cache generation size: " $1}'
echo "created: $created; second sync unchanged/generation written: $unchanged; passwd lines: $lines"
