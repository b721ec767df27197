#!/usr/bin/env bash
# Kills a peer with SIGKILL KILLS times (default 100) while clients write,
# restarting and checking it after each kill (tests/kill_loop.rs): every
# acknowledged write must read back whole, and no name may show bytes no
# write sent. CI runs the same test with a few kills.
#
#   scripts/kill-loop.sh [KILLS]
set -euo pipefail
cd "$(dirname "$0")/.."
SHOAL_KILLS=${1:-100} cargo test --release --locked --test kill_loop -- --nocapture
