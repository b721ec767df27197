#!/usr/bin/env bash
# A chaos run: PEERS release peers (default 5) on loopback and six clients
# (four through the native API, two through S3) putting, overwriting,
# reading, deleting and listing 200 names with fresh contents, while a
# nemesis applies a fault every few seconds for MINUTES (default 10):
# SIGKILL and restart, SIGSTOP and SIGCONT, two peers at once, a restart on
# a stale copy of the data directory, flipped bytes in a segment file and,
# where this machine allows them, a clock jumped minutes ahead or behind
# (libfaketime), a full disk (a tmpfs per peer) and a network cut, 2|3,
# 1|4 or one-way (iptables). As root the run gets a network namespace of
# its own, so its cuts touch nothing else.
#
# Every operation goes into WORK/history.jsonl; at the end every fault is
# healed, the swarm is left to converge, and scripts/chaos/check.py checks
# the history (the model is in its doc comment) and writes WORK/report.md.
# Exits non-zero if any anomaly was found.
#
# Usage: scripts/chaos.sh [MINUTES] [PEERS]
# Environment: SHOAL_BIN (a shoal binary to use instead of building one),
# CHAOS_SEED (replay the same random choices), CHAOS_WORK (where to keep
# the run; a temporary directory otherwise, removed if the run passed),
# SHOAL_PYTHON (a Python with boto3 and blake3; .venv's by default).
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=${1:-10}
peers=${2:-5}
if [ -z "${SHOAL_BIN:-}" ]; then
  cargo build --release --locked --quiet
  SHOAL_BIN=$PWD/target/release/shoal
fi
python=${SHOAL_PYTHON:-$PWD/.venv/bin/python}
if ! "$python" -c 'import boto3, blake3' >/dev/null 2>&1; then
  echo "error: $python lacks boto3 or blake3: run scripts/test.sh once, or set SHOAL_PYTHON" >&2
  exit 1
fi
work=${CHAOS_WORK:-$(mktemp -d /tmp/shoal-chaos.XXXXXX)}
mkdir -p "$work"
seed_args=()
[ -n "${CHAOS_SEED:-}" ] && seed_args=(--seed "$CHAOS_SEED")

netns=shoal-chaos-$$
runner=()
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null 2>&1 && ip netns add "$netns" 2>/dev/null; then
  trap 'ip netns del "$netns" 2>/dev/null || true' EXIT
  ip netns exec "$netns" ip link set lo up
  runner=(ip netns exec "$netns" env SHOAL_CHAOS_NETNS=1)
else
  echo "note: no network namespace here: the run has no network cuts or full disks" >&2
fi

status=0
"${runner[@]}" "$python" scripts/chaos/run.py "$SHOAL_BIN" "$work" "$minutes" "$peers" \
  "${seed_args[@]}" || status=$?
if [ "$status" = 0 ] && [ -z "${CHAOS_WORK:-}" ]; then
  rm -rf "$work"
else
  echo "the run's history, report and peer logs are in $work"
fi
exit "$status"
