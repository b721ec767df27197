#!/usr/bin/env bash
# Measures what faults cost with release peers on this machine. Each mode
# starts its own swarm in a temporary directory, prints a short report and
# then one JSON line with the figures, and stops every peer it started.
#   space   N peers (default 5) started with --gc-grace 60s --gc-interval 10s
#           --audit-interval 60s --repair-interval 5s; one client overwrites
#           20 files of 1 MiB (space/0 .. space/19) with fresh random bytes,
#           round-robin through the peers that are up, for SECONDS (default
#           120); every 100 puts one peer (in turn) is SIGKILLed and restarted
#           at once on the same data. Counts puts that succeeded and failed,
#           then samples the disk every peer uses every 10 s for 5 minutes:
#           prints held / live (live = the last sizes written x 3 copies)
#           60, 120, 180 and 300 s after the load, and the whole series.
#   hung    N peers (default 5) started with --repair-interval 1s; one peer
#           is stopped (SIGSTOP: it keeps its connections open like a hung
#           machine) and another SIGKILLed, then PUTS puts (default 30) of 1
#           to 5 MiB go through the others in turn, each timed: successes,
#           median and worst latency. Every file written must read back the
#           same through every peer that is up. Then the hung peer is resumed
#           and the killed one restarted, and the time until every peer holds
#           no copy meant for another (repair held_chunks and held_records
#           both 0) is the time for hinted copies to drain.
#   random  N peers (default 5) started with --repair-interval 5s, for
#           SECONDS (default 300): 4 clients put (1 MiB, 50 names) and get
#           (names written) through random peers that are up, while every 5
#           to 10 s a random peer is SIGKILLed (restarted 5 to 15 s later) or
#           stopped (resumed 5 to 15 s later), at most two down at a time.
#           Reports the share of puts and of gets that succeeded among those
#           sent to a peer that stayed up throughout, and the failures by
#           status; then heals everything and checks that every file reads
#           back, through every peer, as its last successful put wrote it (or
#           as a later put left it whose outcome was unknown).
# Client requests time out after 60 s and count as failures. Set
# SHOAL_BENCH_KEEP=1 to keep the peers' data and logs.
# Usage: scripts/bench-faults.sh space [N] [SECONDS]
#        scripts/bench-faults.sh hung [N] [PUTS]
#        scripts/bench-faults.sh random [N] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
exec python3 scripts/faults_bench.py "$PWD/target/release/shoal" "$@"
