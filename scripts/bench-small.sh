#!/usr/bin/env bash
# Durable small-file puts through one local peer: files per second and disk
# used per byte stored, next to a baseline measured in the same run (the
# same number of 4 KiB writes each followed by fdatasync, one writer).
#
#   scripts/bench-small.sh [FILES] [SIZE_BYTES] [PARALLEL]   (default 2000 4096 8)
#
# Needs a release build (cargo build --release), curl and python3.
# The load comes from one Python process with one keep-alive connection per
# client, so it measures the peer rather than process start-up.
set -euo pipefail
files=${1:-2000}
size=${2:-4096}
parallel=${3:-8}
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/target/release/shoal"
[ -x "$bin" ] || { echo "error: build first: cargo build --release" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/shoal-small.XXXXXX")
node_pid=
cleanup() { [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

baseline=$(python3 - "$work/baseline" "$files" "$size" <<'PY'
import os, sys, time
path, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
data = os.urandom(size)
start = time.monotonic()
for i in range(n):
    os.pwrite(fd, data, i * size)
    os.fdatasync(fd)
print(n / (time.monotonic() - start))
PY
)
printf 'baseline (%d-byte write + fdatasync, serial): %.0f/s\n' "$size" "$baseline"

"$bin" node --data "$work/data" --api 127.0.0.1:0 --s3 off > "$work/node.out" 2> "$work/node.log" &
node_pid=$!
for _ in $(seq 100); do grep -q "serving the API" "$work/node.out" && break; sleep 0.1; done
api=$(grep -o 'http://[0-9.:]*' "$work/node.out")

rate=$(python3 - "$api" "$files" "$size" "$parallel" <<'PY'
import http.client, os, sys, threading, time, urllib.parse
api, n, size, parallel = urllib.parse.urlparse(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
template = os.urandom(size)
failures = []
def worker(k):
    conn = http.client.HTTPConnection(api.hostname, api.port)
    for i in range(k, n, parallel):
        body = b"%08d" % i + template
        conn.request("PUT", f"/v1/files/small/{i}", body=body)
        response = conn.getresponse()
        response.read()
        if response.status != 201:
            failures.append(response.status)
threads = [threading.Thread(target=worker, args=(k,)) for k in range(parallel)]
start = time.monotonic()
for t in threads: t.start()
for t in threads: t.join()
elapsed = time.monotonic() - start
if failures:
    sys.exit(f"error: {len(failures)} puts failed")
print(f"{n / elapsed:.0f}")
PY
)
echo "shoal durable puts ($parallel clients, keep-alive HTTP): $rate/s = $(awk -v r="$rate" -v b="$baseline" 'BEGIN { printf "%.2f", r / b }') x baseline"

status=$(curl -sf "$api/v1/status")
python3 - "$status" "$((files * (size + 8)))" <<'PY'
import json, sys
s = json.loads(sys.argv[1])["store"]
print(f"files {s['files']}, bytes stored {s['bytes']} (expected {sys.argv[2]}), disk used {s['disk_bytes']}: "
      f"{s['disk_bytes'] / s['bytes']:.2f} x the data (segments plus the redb index)")
PY
