#!/usr/bin/env bash
# Builds every fuzz target in fuzz/ and runs each for a bounded time, starting from the
# committed seeds (fuzz/seeds/<target>/); fails if any target crashes, hangs or runs out of
# memory. On stable Rust: cargo-fuzz with `-s none` (no sanitizer) needs no nightly flag.
# See docs/fuzzing.md.
#
#   scripts/fuzz-ci.sh                 # every target, FUZZ_SECONDS (default 30) each
#   FUZZ_SECONDS=60 scripts/fuzz-ci.sh http tls
#
# Two targets run at a time (FUZZ_JOBS, default 2: the machine has two cores): the runs take
# about 160 s, after a build from scratch of about 4 minutes of CPU time.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
seconds=${FUZZ_SECONDS:-30}
jobs=${FUZZ_JOBS:-2}

if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  echo "fuzz-ci: installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --quiet
fi
# libfuzzer-sys builds libFuzzer from its C++ sources.
if ! command -v c++ >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq g++ >/dev/null
fi

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

start=$SECONDS
# Release build with debug assertions and overflow checks (-a), coverage instrumentation,
# no sanitizer (-s none: AddressSanitizer needs the nightly -Zsanitizer flag).
if [ $# -gt 0 ]; then
  for t in "${targets[@]}"; do cargo fuzz build -s none -a "$t"; done
else
  cargo fuzz build -s none -a
fi
echo "fuzz-ci: built ${#targets[@]} targets in $((SECONDS - start)) s"

bin=fuzz/target/x86_64-unknown-linux-gnu/release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

max_len() {
  case $1 in
    decode) echo 16384 ;;
    reassembly | escape | filter) echo 4096 ;;
    *) echo 65536 ;; # captures and conversations: up to 64 KiB
  esac
}

run_one() {
  local t=$1
  mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
  if "$bin/$t" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len="$(max_len "$t")" \
    -timeout=25 -print_final_stats=1 -artifact_prefix="$work/$t/artifacts/" \
    "$work/$t/corpus" "fuzz/seeds/$t" >"$work/$t/log" 2>&1; then
    printf 'fuzz-ci: %-10s ok   %s\n' "$t" \
      "$(grep -a -E '^stat::number_of_executed_units' "$work/$t/log" | awk '{print $2 " execs"}')"
  else
    printf 'fuzz-ci: %-10s FAILED\n' "$t"
    grep -a -E -A12 "panicked|ERROR: libFuzzer|SUMMARY" "$work/$t/log" | head -40
    mkdir -p fuzz/artifacts/"$t"
    cp "$work/$t"/artifacts/* fuzz/artifacts/"$t"/ 2>/dev/null || true
    echo "fuzz-ci: the input is under fuzz/artifacts/$t/; save it as" \
      "tests/regressions/fuzz/$t/<name> (see docs/fuzzing.md)"
    return 1
  fi
}

failed=0
running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || failed=1
    running=$((running - 1))
  fi
done
while [ "$running" -gt 0 ]; do
  wait -n || failed=1
  running=$((running - 1))
done

echo "fuzz-ci: ${#targets[@]} targets, ${seconds} s each, $((SECONDS - start)) s in all"
if [ "$failed" -ne 0 ]; then
  echo "fuzz-ci: a fuzz target failed"
  exit 1
fi
