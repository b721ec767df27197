#!/usr/bin/env bash
# Puts and gets one large file through a swarm of peers on this machine (3
# replicas of every chunk by default) and reports throughput next to the
# raw disk baseline measured in the same run, how evenly the chunks spread,
# and the peers' peak memory.
#
#   scripts/bench-cluster.sh [SIZE_MIB] [PEERS]     (default 1024 MiB, 5 peers)
#
# Every peer shares this machine's one disk, so each byte is written three
# times to it: the ceiling for a put is about a third of dd's rate. Needs a
# release build (cargo build --release).
set -euo pipefail
size_mib=${1:-1024}
peers=${2:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/target/release/shoal"
[ -x "$bin" ] || { echo "error: build first: cargo build --release" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/shoal-bench.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

seconds() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { print b - a }'; }
rate() { awk -v mib="$size_mib" -v s="$1" 'BEGIN { printf "%.0f MiB/s", mib / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "input: $size_mib MiB of random data, $peers peers on one machine"
head -c $((size_mib * 1024 * 1024)) /dev/urandom > "$work/input"

t0=$(seconds)
dd if="$work/input" of="$work/dd-copy" bs=1M conv=fdatasync status=none
raw=$(elapsed "$t0" "$(seconds)")
rm -f "$work/dd-copy"
echo "baseline dd (write + fdatasync): $(rate "$raw")"

apis=()
join=
for i in $(seq 0 $((peers - 1))); do
  args=(node --data "$work/peer$i" --api 127.0.0.1:0 --s3 off --listen /ip4/127.0.0.1/tcp/0 --no-mdns)
  [ -n "$join" ] && args+=(--join "$join")
  "$bin" "${args[@]}" > "$work/peer$i.out" 2> "$work/peer$i.log" &
  pids+=($!)
  for _ in $(seq 100); do grep -q "serving the API" "$work/peer$i.out" && break; sleep 0.1; done
  apis+=("$(grep -o 'http://[0-9.:]*' "$work/peer$i.out")")
  if [ -z "$join" ]; then
    join=$("$bin" status --json --api "${apis[0]}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["listen"][0])')
  fi
done
for _ in $(seq 200); do
  alive=$("$bin" status --json --api "${apis[0]}" | python3 -c 'import json,sys; print(sum(m["state"] == "alive" for m in json.load(sys.stdin)["members"]))')
  [ "$alive" = "$peers" ] && break
  sleep 0.1
done

t0=$(seconds)
"$bin" put "$work/input" --name big --api "${apis[0]}" > /dev/null
put=$(elapsed "$t0" "$(seconds)")

t0=$(seconds)
"$bin" get big -o "$work/output" --api "${apis[$((peers - 1))]}" > /dev/null
get=$(elapsed "$t0" "$(seconds)")
cmp "$work/input" "$work/output"
rm -f "$work/output"

echo "put through one peer (3 durable copies): $(rate "$put")  = $(ratio "$raw" "$put") x dd, $(ratio "$(awk -v r="$raw" 'BEGIN { print 3 * r }')" "$put") x the 3-copy ceiling (dd / 3)"
echo "get through another peer (verified, written, synced): $(rate "$get")  = $(ratio "$raw" "$get") x dd"

for i in $(seq 0 $((peers - 1))); do
  "$bin" status --json --api "${apis[$i]}" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["store"]["chunks"])'
done > "$work/chunks"
awk '{ s += $1; if ($1 > m) m = $1; if (n == 0 || $1 < lo) lo = $1; n++ } END {
  printf "chunks per peer: min %d, max %d, mean %.1f; busiest / mean = %.3f\n", lo, m, s / n, m / (s / n) }' "$work/chunks"
rss=$(for pid in "${pids[@]}"; do awk '/VmHWM/ { print $2 }' "/proc/$pid/status"; done | sort -n | tail -1)
echo "peak RSS of the busiest peer: $((rss / 1024)) MiB"
