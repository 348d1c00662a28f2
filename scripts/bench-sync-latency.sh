#!/usr/bin/env bash
# Benchmark (issue 12 §1): an IceWarp sync of USERS generated accounts (100 domains) against
# the mock directory in a separate process answering every request LATENCY ms late, with
# one request at a time (max_parallel_requests = 1) beside the default number in flight.
# Prints one row per latency and mode: wall time, requests the mock answered, requests ×
# latency (what the latency alone costs one request at a time), and time / (requests ×
# latency): the issue's target is at most 1/3 for the parallel sync.
#     scripts/bench-sync-latency.sh [USERS] [LATENCIES…]       (default: 100000 0 1 5)
# Sequential runs at a latency of SEQ_SCALE_FROM_MS or more (default 5) are measured on
# SEQ_USERS accounts (default 10000) and scaled to USERS: the sync is linear in the accounts
# and at 5 ms it would take over 8 minutes. Such rows say "scaled".
# OLD_BIN=DIR also runs DIR/dircache-sync (a build without max_parallel_requests) at the
# first latency, for a "before" row.
# The uid range is widened to 1,000,000 ids so that id allocation near a full default range
# (issue 12 §4, measured by scripts/bench-sync.sh) stays out of these figures.
set -euo pipefail
cd "$(dirname "$0")/.."
users=${1:-100000}
shift || true
latencies=("$@")
[ ${#latencies[@]} -gt 0 ] || latencies=(0 1 5)
seq_users=${SEQ_USERS:-10000}
seq_scale_from=${SEQ_SCALE_FROM_MS:-5}
command -v /usr/bin/time >/dev/null || { echo "needs GNU time: apt-get install -y time" >&2; exit 1; }
command -v python3 >/dev/null || { echo "needs python3" >&2; exit 1; }
cargo build --release -p dircache-sync -p mock_directory --quiet
bin=${CARGO_TARGET_DIR:-$PWD/target}/release
work=$(mktemp -d "${TMPDIR:-/tmp}/dircache-bench-latency.XXXXXX")
pid=
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT

start_directory() { # $1 = accounts, $2 = latency in ms
  [ -z "$pid" ] || { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; }
  rm -f "$work/url" "$work/count"
  "$bin/dircache-demo-directory" --generate "$1" --latency "$2" --count-file "$work/count" > "$work/url" &
  pid=$!
  for _ in $(seq 600); do [ -s "$work/url" ] && [ -s "$work/count" ] && break; sleep 0.1; done
}

requests_now() { # the mock's count, once it has been rewritten after the last request
  sleep 0.3
  cat "$work/count"
}

measure() { # $1 = label, $2 = binary dir, $3 = [directory] extra lines, $4 = scale factor
  rm -rf "$work/cache"
  cat > "$work/config.toml" <<TOML
[cache]
dir = "$work/cache"
[directory]
type = "icewarp"
server = "$(head -n 1 "$work/url")"
username = "admin@example.com"
password = "demo-admin-password"
timeout_secs = 120
$3
[unix]
uid_range = [200000, 1199999]
TOML
  chmod 600 "$work/config.toml"
  local before after secs
  before=$(requests_now)
  /usr/bin/time -f '%e %U %S' -o "$work/time" "$2/dircache-sync" --config "$work/config.toml" sync --json > "$work/out.json"
  after=$(requests_now)
  read -r secs user sys < "$work/time"
  python3 - "$1" "$secs" "$((after - before))" "$latency" "$4" "$user" "$sys" "$work/out.json" <<'PY'
import json, sys
label, secs, requests, latency, scale, user, sys_cpu, out = sys.argv[1:]
secs, requests, latency, scale = float(secs), int(requests), float(latency), float(scale)
created = len(json.load(open(out))["created"])
secs, requests = secs * scale, requests * scale
cpu = (float(user) + float(sys_cpu)) * scale
cost = requests * latency / 1000
ratio = f"{secs / cost:.2f}" if cost > 0 else "-"
note = f"scaled ×{scale:g}" if scale != 1 else ""
print(f"{label:<30} {latency:>5g} ms {secs:>9.1f} s {requests:>9.0f} {cost:>9.1f} s {ratio:>6}   cpu {cpu:6.1f} s  users {created * scale:>7.0f}  {note}")
PY
}

echo "IceWarp sync of $users accounts, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-30s %8s %11s %9s %11s %6s\n' "mode" "latency" "time" "requests" "req×lat" "ratio"
for latency in "${latencies[@]}"; do
  start_directory "$users" "$latency"
  if [ -n "${OLD_BIN:-}" ] && [ "$latency" = "${latencies[0]}" ]; then
    measure "before (one at a time)" "$OLD_BIN" "" 1
  fi
  measure "parallel (default)" "$bin" "" 1
  if python3 -c "import sys; sys.exit(0 if float('$latency') >= float('$seq_scale_from') and $users > $seq_users else 1)"; then
    start_directory "$seq_users" "$latency"
    measure "max_parallel_requests = 1" "$bin" "max_parallel_requests = 1" "$(python3 -c "print($users / $seq_users)")"
  else
    measure "max_parallel_requests = 1" "$bin" "max_parallel_requests = 1" 1
  fi
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
