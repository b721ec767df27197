#!/usr/bin/env bash
# Measures what users wait for, on a fresh local swarm of release peers,
# each figure beside a baseline taken in the same run, and prints one table:
#
#   big    a 1 GiB put (against dd with fsync / 3: three copies, one disk),
#          `get -o -` (against a one-core md5sum), `get -o FILE` (against dd
#          with fsync), the peer's own serving rate (curl), peak RSS;
#   small  10,000 files of 4 KiB through `put -r` and `get -r` (against
#          cp -r and a sync of the same tree), and one 4 KiB put at a time
#          over a kept-alive connection (p50, p99);
#   heal   the time back to 3 live copies after a peer is SIGKILLed, against
#          detection + `--rereplicate-after` + the copying + 2 s;
#   repair a 128 MiB put and get while repair copies a dead peer's share of
#          1 GiB, against the same before the death, and repair's rate;
#   hang   a SIGSTOPped peer declared dead, and back after SIGCONT (5 peers,
#          6 tries; scripts/bench-membership.sh hang);
#   load   suspicions of healthy peers while 10 writers load 5 peers for
#          180 s (scripts/bench-membership.sh load);
#   secure small puts and big gets on a swarm that needs tokens and serves
#          HTTPS, against a plain swarm (scripts/secure_bench.py).
#
#   scripts/bench.sh [SECTION ...]     (default: all of them)
#
# Environment: BENCH_MIB, BENCH_FILES, BENCH_PEERS, BENCH_HEAL_MIB,
# BENCH_REPAIR_MIB (see
# scripts/bench.py); BENCH_NODE_ARGS adds flags to the peers of repair
# (e.g. "--repair-parallelism 2"), SHOAL_NODE_ARGS to those of hang and
# load. Each section starts its own peers in a temporary directory under
# TMPDIR (default /var/tmp, on the disk rather than in memory).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
shoal="$PWD/target/release/shoal"
sections=("$@")
[ ${#sections[@]} -eq 0 ] && sections=(big small heal repair hang load secure)
wants() { local s; for s in "${sections[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -r); $(git rev-parse --short HEAD)"
data=()
for s in big small heal repair; do wants "$s" && data+=("$s"); done
if [ ${#data[@]} -gt 0 ]; then
  python3 scripts/bench.py "$shoal" "${data[@]}"
fi
if wants hang; then
  python3 scripts/membership_bench.py "$shoal" hang 5 6 | tail -1
fi
if wants load; then
  python3 scripts/membership_bench.py "$shoal" load 5 180 | tail -1
fi
if wants secure; then
  python3 scripts/secure_bench.py "$shoal"
fi
