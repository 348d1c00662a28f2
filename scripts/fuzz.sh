#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ for a bounded time each and prints, per target, the
# executions, the coverage reached and the crashes found. Not part of scripts/test.sh (CI).
#
#   scripts/fuzz.sh [SECONDS] [-j JOBS] [--merge] [TARGET...]
#
#   SECONDS   time per target (default 60; the figures in the README are from 600)
#   -j JOBS   targets run at once (default 1; each target uses one core)
#   --merge   afterwards, replace fuzz/corpus/TARGET by a minimal set of inputs covering every
#             edge that it and this run's corpus reach (libFuzzer -merge=1 -set_cover_merge=1
#             -use_counters=0), so the committed corpus stays small
#   TARGET    default: every target (cargo fuzz list)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). cargo-fuzz wants nightly flags
# (-Zsanitizer=address); on a stable toolchain RUSTC_BOOTSTRAP=1 enables them, which this
# script sets. Each run works on a copy of the committed corpus in fuzz/target/, so the
# repository only changes with --merge. Crash inputs go to fuzz/artifacts/TARGET/; the exit
# status is 1 if any target crashed.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=60
jobs=1
merge=false
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    -j) jobs="$2"; shift 2 ;;
    --merge) merge=true; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *[!0-9]*) targets+=("$1"); shift ;;
    *) seconds="$1"; shift ;;
  esac
done

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: cargo-fuzz is missing: cargo install cargo-fuzz" >&2
  exit 2
fi
export RUSTC_BOOTSTRAP=1
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)

# Inputs larger than this are not generated (the hostile-input tests cover huge ones).
max_len() {
  case "$1" in
    cache_reader) echo 16384 ;;
    *) echo 8192 ;;
  esac
}

work=target/fuzz-runs
mkdir -p "$work"
echo "fuzz.sh: building the targets (release, debug assertions, AddressSanitizer)" >&2
if ! cargo fuzz build --debug-assertions >"$work/build.log" 2>&1; then
  cat "$work/build.log" >&2
  exit 2
fi

run_one() {
  local target="$1"
  local corpus="$work/corpus-$target"
  local log="$work/$target.log"
  rm -rf "$corpus"
  mkdir -p "$corpus" "artifacts/$target"
  cp -r "corpus/$target/." "$corpus/" 2>/dev/null || true
  local before
  before=$(find "artifacts/$target" -type f | wc -l)
  # -rss_limit_mb / -malloc_limit_mb: an input that makes one allocation or the whole process
  # use more than 2 GB is a finding (memory must stay bounded); -timeout: so is one input
  # taking 10 s.
  cargo fuzz run --debug-assertions "$target" "$corpus" -- \
    -max_total_time="$seconds" -max_len="$(max_len "$target")" -timeout=10 \
    -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="artifacts/$target/" >"$log" 2>&1 || true
  local after
  after=$(find "artifacts/$target" -type f | wc -l)
  local execs cov corpus_size
  execs=$(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo 0)
  corpus_size=$(find "$corpus" -type f | wc -l)
  printf '%s %s %s %s %s\n' "$target" "${execs:-0}" "${cov:-0}" "$corpus_size" "$((after - before))" \
    >"$work/$target.result"
  if [ "$merge" = true ]; then
    # A fresh, minimal set (edge coverage, set cover) of the committed corpus and this run's.
    local minimal="$work/minimal-$target"
    rm -rf "$minimal"
    mkdir -p "$minimal"
    if cargo fuzz run --debug-assertions "$target" "$minimal" "corpus/$target" "$corpus" -- \
      -merge=1 -set_cover_merge=1 -use_counters=0 -max_len="$(max_len "$target")" \
      >>"$log" 2>&1 && [ -n "$(ls -A "$minimal")" ]; then
      rm -rf "corpus/$target"
      mv "$minimal" "corpus/$target"
    fi
  fi
}

running=0
for target in "${targets[@]}"; do
  echo "fuzz.sh: $target for ${seconds}s (log: fuzz/$work/$target.log)" >&2
  run_one "$target" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

status=0
printf '\n%-16s %8s %14s %10s %8s %9s %8s\n' target seconds execs execs/s coverage corpus crashes
for target in "${targets[@]}"; do
  read -r name execs cov corpus_size crashes <"$work/$target.result"
  printf '%-16s %8s %14s %10s %8s %9s %8s\n' "$name" "$seconds" "$execs" \
    "$((execs / (seconds > 0 ? seconds : 1)))" "$cov" "$corpus_size" "$crashes"
  if [ "$crashes" -gt 0 ]; then
    status=1
    echo "  crash input(s) in fuzz/artifacts/$name/; reproduce with:" \
      "RUSTC_BOOTSTRAP=1 cargo fuzz run $name fuzz/artifacts/$name/<file>" >&2
  fi
done
exit "$status"
