#!/usr/bin/env bash
# Measures the S3 endpoint against shoal's own API on a 3-peer swarm of
# release peers on this machine, all in one run:
#   - a SIZE_MIB (default 1024) MiB object PUT and GET through boto3's
#     transfer manager (multipart, 8 MiB parts, 10 threads, as aws-cli
#     does) and the same file through the native HTTP API with curl, as
#     rates and S3/native ratios; the same one-stream transfers with curl
#     through presigned S3 URLs (the client's cost equal on both sides);
#     plus the coordinating peer's peak
#     resident memory after each (streams keep it bounded);
#   - SMALL (default 2000) PutObjects of 4 KiB from one kept-alive boto3
#     client, one after another: objects/s and p50/p99 latency, against the
#     same client putting to a trivial local HTTP endpoint that answers
#     every PUT at once (what the client itself costs).
# Prints a report, then one JSON line with the figures. Needs the test
# venv (scripts/test.sh makes it) for boto3.
# Usage: scripts/bench-s3.sh [SIZE_MIB] [SMALL]
set -euo pipefail
cd "$(dirname "$0")/.."
python=.venv/bin/python
[ -x "$python" ] || { echo "error: run scripts/test.sh first to set up .venv (boto3)" >&2; exit 1; }
cargo build --release --locked --quiet
exec "$python" scripts/s3_bench.py "$PWD/target/release/shoal" "$@"
