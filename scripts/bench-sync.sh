#!/usr/bin/env bash
# Benchmark: a full sync of 100,000 IceWarp accounts in 100 domains and of 100,000
# Application Integration users, from the mock directory in a separate process, measured
# with GNU time (wall clock, peak RSS of dircache-sync alone, and that RSS per user). Then a
# second sync with no change, which must write nothing. Prints a table; the README records
# the figures.
#     scripts/bench-sync.sh [USERS] [both|icewarp|appint]
# 1,000,000 IceWarp accounts take one request each: give it time, or measure appint only.
set -euo pipefail
cd "$(dirname "$0")/.."
users=${1:-100000}
which=${2:-both}
command -v /usr/bin/time >/dev/null || { echo "needs GNU time: apt-get install -y time" >&2; exit 1; }
cargo build --release --workspace --quiet
bin=${CARGO_TARGET_DIR:-$PWD/target}/release
work=$(mktemp -d "${TMPDIR:-/tmp}/dircache-bench.XXXXXX")
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$work"' EXIT

start_directory() { # $1 = name, rest = arguments; not in $(…), so the pid is kept
  local name=$1; shift
  "$bin/dircache-demo-directory" --generate "$users" "$@" > "$work/$name.url" &
  pids+=($!)
  for _ in $(seq 600); do [ -s "$work/$name.url" ] && break; sleep 0.1; done
}

config() { # $1 = name, $2 = [directory] body
  # Past 100,000 users: ids for all of them, and a reply cap that charges them all
  # (1 KiB per account, 128 bytes per group member).
  local large="" cap=""
  if [ "$users" -gt 90000 ]; then
    large="[unix]
uid_range = [1879048192, 2147352575]"
    cap="max_reply_mib = $(( users / 256 + 64 ))"
  fi
  cat > "$work/$1.toml" <<TOML
[cache]
dir = "$work/$1-cache"
$large
[directory]
$2
timeout_secs = 600
$cap
TOML
  chmod 600 "$work/$1.toml"
}

measure() { # $1 = label, $2 = config name
  /usr/bin/time -f '%e %M' -o "$work/time" "$bin/dircache-sync" --config "$work/$2.toml" sync --json > "$work/out.json"
  read -r secs rss_kb < "$work/time"
  local summary
  summary=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(len(r["created"]), len(r["updated"]), r["unchanged"], r["generation"])' "$work/out.json")
  printf '%-34s %8s s %8d MB %6d B/user   created/updated/unchanged/generation: %s\n' \
    "$1" "$secs" $((rss_kb / 1024)) $((rss_kb * 1024 / users)) "$summary"
}

if [ "$which" != appint ]; then
  start_directory icewarp
  url=$(head -n 1 "$work/icewarp.url")
  config icewarp "type = \"icewarp\"
server = \"$url\"
username = \"admin@example.com\"
password = \"demo-admin-password\""
fi
if [ "$which" != icewarp ]; then
  start_directory appint --app-integration
  url=$(head -n 1 "$work/appint.url")
  config appint "type = \"application-integration\"
url = \"$url\""
fi

echo "dircache-sync, $users users, $(nproc) cores"
if [ "$which" != appint ]; then
  measure "IceWarp, first sync" icewarp
  measure "IceWarp, second sync (no change)" icewarp
fi
if [ "$which" != icewarp ]; then
  measure "AppInt, first sync" appint
  measure "AppInt, second sync (no change)" appint
fi
