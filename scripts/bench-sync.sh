#!/usr/bin/env bash
# Benchmark: a full sync of 100,000 IceWarp accounts in 100 domains and of 100,000
# Application Integration users, from the mock directory in a separate process, measured
# with GNU time (wall clock, peak RSS of dircache-sync alone). Then a second sync with no
# change, which must write nothing. Prints a table; the README records the figures.
#     scripts/bench-sync.sh [USERS]
set -euo pipefail
cd "$(dirname "$0")/.."
users=${1:-100000}
command -v /usr/bin/time >/dev/null || { echo "needs GNU time: apt-get install -y time" >&2; exit 1; }
cargo build --release --workspace --quiet
bin=$PWD/target/release
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
  cat > "$work/$1.toml" <<TOML
[cache]
dir = "$work/$1-cache"
[directory]
$2
timeout_secs = 120
TOML
  chmod 600 "$work/$1.toml"
}

measure() { # $1 = label, $2 = config name
  /usr/bin/time -f '%e %M' -o "$work/time" "$bin/dircache-sync" --config "$work/$2.toml" sync --json > "$work/out.json"
  read -r secs rss_kb < "$work/time"
  local summary
  summary=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(len(r["created"]), len(r["updated"]), r["unchanged"], r["generation"])' "$work/out.json")
  printf '%-34s %8s s %8d MB   created/updated/unchanged/generation: %s\n' "$1" "$secs" $((rss_kb / 1024)) "$summary"
}

start_directory icewarp
url=$(head -n 1 "$work/icewarp.url")
config icewarp "type = \"icewarp\"
server = \"$url\"
username = \"admin@example.com\"
password = \"demo-admin-password\""
start_directory appint --app-integration
url=$(head -n 1 "$work/appint.url")
config appint "type = \"application-integration\"
url = \"$url\""

echo "dircache-sync, $users users, $(nproc) cores"
measure "IceWarp, first sync" icewarp
measure "IceWarp, second sync (no change)" icewarp
measure "AppInt, first sync" appint
measure "AppInt, second sync (no change)" appint
