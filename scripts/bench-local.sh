#!/usr/bin/env bash
# Puts and gets one large file through a single local peer and reports
# throughput and peak resident memory of the peer and of the CLI, next to
# the raw disk baseline measured in the same run (dd with fdatasync).
#
#   scripts/bench-local.sh [SIZE_MIB]     (default 2048)
#
# Needs a release build (cargo build --release) and GNU time.
set -euo pipefail
size_mib=${1:-2048}
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/target/release/shoal"
[ -x "$bin" ] || { echo "error: build first: cargo build --release" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/shoal-bench.XXXXXX")
node_pid=
cleanup() { [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

seconds() { date +%s.%N; }
rate() { awk -v mib="$size_mib" -v s="$1" 'BEGIN { printf "%.0f MiB/s", mib / s }'; }

echo "input: $size_mib MiB of random data"
head -c $((size_mib * 1024 * 1024)) /dev/urandom > "$work/input"

t0=$(seconds)
dd if="$work/input" of="$work/dd-copy" bs=1M conv=fdatasync status=none
t1=$(seconds)
rm -f "$work/dd-copy"
raw=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
echo "baseline dd (write + fdatasync): $(rate "$raw")"

"$bin" node --data "$work/data" --api 127.0.0.1:0 --s3 off > "$work/node.out" 2> "$work/node.log" &
node_pid=$!
for _ in $(seq 100); do grep -q "serving the API" "$work/node.out" && break; sleep 0.1; done
export SHOAL_API
SHOAL_API=$(grep -o 'http://[0-9.:]*' "$work/node.out")

t0=$(seconds)
/usr/bin/time -f "%M" -o "$work/put.rss" "$bin" put "$work/input" --name big > /dev/null
t1=$(seconds)
put=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
node_rss_put=$(awk '/VmHWM/ { print $2 }' "/proc/$node_pid/status")

t0=$(seconds)
/usr/bin/time -f "%M" -o "$work/get.rss" "$bin" get big -o "$work/output" > /dev/null
t1=$(seconds)
get=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
node_rss=$(awk '/VmHWM/ { print $2 }' "/proc/$node_pid/status")
cmp "$work/input" "$work/output"

disk=$("$bin" status --json | awk -F': ' '/"disk_bytes"/ { gsub(/[ ,]/, "", $2); print $2 }')
stored=$("$bin" status --json | awk -F': ' '/"bytes"/ && !/disk/ { gsub(/[ ,]/, "", $2); print $2 }')

echo "put (hash pass + upload + durable store): $(rate "$put")  = $(awk -v r="$raw" -v p="$put" 'BEGIN { printf "%.2f", r / p }') x dd"
echo "get (verified, written, synced):          $(rate "$get")  = $(awk -v r="$raw" -v g="$get" 'BEGIN { printf "%.2f", r / g }') x dd"
echo "peak RSS: peer $((node_rss_put / 1024)) MiB during put, $((node_rss / 1024)) MiB after get; CLI put $(( $(cat "$work/put.rss") / 1024 )) MiB, CLI get $(( $(cat "$work/get.rss") / 1024 )) MiB"
echo "disk used / bytes stored: $(awk -v d="$disk" -v s="$stored" 'BEGIN { printf "%.4f", d / s }')"
