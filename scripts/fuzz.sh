#!/usr/bin/env bash
# Fuzzes every decoder that reads bytes from outside (src/fuzzing.rs) with
# libFuzzer, without a sanitizer, on the stable toolchain, and prints per
# target the executions, libFuzzer's coverage counter (`cov`, edges hit)
# and the corpus size. New inputs go into fuzz/corpus/<target>/, which is
# committed and replayed by `cargo test` (tests/fuzz_corpora.rs); a crash
# leaves its input in fuzz/artifacts/<target>/ and fails the run.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET ...]   (default 60, all)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). After a long run,
# `cargo fuzz cmin -s none TARGET` keeps the corpus small.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi
cargo fuzz build -s none >/dev/null
printf '| target | seconds | execs | exec/s | cov | corpus |\n|---|---|---|---|---|---|\n'
status=0
for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target"
  log=$(mktemp)
  if ! cargo fuzz run -s none "$target" "fuzz/corpus/$target" -- \
      -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
      >"$log" 2>&1; then
    echo "$target FAILED; its log:" >&2
    tail -40 "$log" >&2
    status=1
  fi
  execs=$(awk '/stat::number_of_executed_units/ { print $2 }' "$log")
  rate=$(awk '/stat::average_exec_per_sec/ { print $2 }' "$log")
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | awk '{ print $2 }')
  corpus=$(find "fuzz/corpus/$target" -type f | wc -l)
  printf '| %s | %s | %s | %s | %s | %s |\n' "$target" "$seconds" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$corpus"
  rm -f "$log"
done
exit $status
