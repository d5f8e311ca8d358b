#!/usr/bin/env bash
# Builds every fuzz target with the nightly toolchain and runs each for an equal
# share of SECONDS (default 60), starting from the committed seed corpus. Prints
# how many executions each target ran; fails on the first crash, leaving the
# reproducer under fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"
budget="${1:-60}"

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo +nightly install cargo-fuzz --locked
fi

targets=$(cargo +nightly fuzz list)
count=$(echo "$targets" | wc -l)
share=$(( budget / count ))
[ "$share" -ge 1 ] || share=1

cargo +nightly fuzz build --release --debug-assertions >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for target in $targets; do
  mkdir -p "corpus/$target" "$work/$target"
  log="$work/$target.log"
  # New inputs go to a scratch directory, so the committed corpus stays as it is.
  if ! cargo +nightly fuzz run --release --debug-assertions "$target" "$work/$target" "corpus/$target" -- \
      -max_total_time="$share" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    echo "fuzz target $target failed:"
    tail -n 40 "$log"
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  echo "$target: ${runs:-0} executions in ${share}s, no crash"
done
