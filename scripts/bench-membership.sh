#!/usr/bin/env bash
# Measures the membership layer with release peers on this machine:
#   detect   N peers (default 5); SIGKILL one peer ROUNDS times (default 10)
#            and time until every survivor lists it dead; restart it between
#            rounds. Prints each time, the median and the worst.
#   hang     as detect, but the peer is stopped (SIGSTOP), keeping its
#            connections open like a hung machine, then resumed (SIGCONT):
#            times its death and its return (it must refute).
#   traffic  for each swarm size (default "5 20 50"), the bytes per second
#            one peer sends on average once the swarm has settled, measured
#            on the loopback of a private network namespace (needs root), so
#            only the swarm's own traffic, TCP/IP headers included, counts.
#   load     N peers (default 5) while every peer takes uploads flat out for
#            SECONDS (default 60); counts suspicions and deaths in the logs,
#            which must stay zero.
# Usage: scripts/bench-membership.sh detect [N] [ROUNDS]
#        scripts/bench-membership.sh hang [N] [ROUNDS]
#        scripts/bench-membership.sh traffic [SIZES] [SECONDS]
#        scripts/bench-membership.sh load [N] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
exec python3 scripts/membership_bench.py "$PWD/target/release/shoal" "$@"
