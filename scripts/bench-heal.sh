#!/usr/bin/env bash
# Measures self-healing on a swarm on this machine: the time to get back to
# 3 live copies of everything after a peer is SIGKILLed, the repair
# throughput next to the put throughput of the same run, and how much data
# moves when a peer joins, next to the ideal 1/n.
#
#   scripts/bench-heal.sh [SIZE_MIB] [PEERS]     (default 512 MiB, 5 peers)
#
# Peers run with --rereplicate-after 5s and --repair-interval 1s so the
# run is short; the defaults (10m, 30s) only shift when repair starts.
# Needs a release build (cargo build --release).
set -euo pipefail
size_mib=${1:-512}
peers=${2:-5}
delay=5
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/target/release/shoal"
[ -x "$bin" ] || { echo "error: build first: cargo build --release" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/shoal-heal.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
json() { "$bin" "$@" --json; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

apis=()
join=
start_peer() {
  local i=$1
  args=(node --data "$work/peer$i" --api 127.0.0.1:0 --s3 off --listen /ip4/127.0.0.1/tcp/0 --no-mdns
        --rereplicate-after "${delay}s" --repair-interval 1s)
  [ -n "$join" ] && args+=(--join "$join")
  "$bin" "${args[@]}" > "$work/peer$i.out" 2> "$work/peer$i.log" &
  pids+=($!)
  for _ in $(seq 100); do grep -q "serving the API" "$work/peer$i.out" && break; sleep 0.1; done
  apis+=("$(grep -o 'http://[0-9.:]*' "$work/peer$i.out")")
}
for i in $(seq 0 $((peers - 1))); do
  start_peer "$i"
  [ -z "$join" ] && join=$(json status --api "${apis[0]}" | field 'd["listen"][0]')
done
for _ in $(seq 200); do
  alive=$(json status --api "${apis[0]}" | field 'sum(m["state"] == "alive" for m in d["members"])')
  [ "$alive" = "$peers" ] && break
  sleep 0.1
done

echo "input: $size_mib MiB of random data, $peers peers on one machine"
head -c $((size_mib * 1024 * 1024)) /dev/urandom > "$work/input"
t0=$(now)
"$bin" put "$work/input" --name big --api "${apis[0]}" > /dev/null
put_s=$(elapsed "$t0" "$(now)")
echo "put: ${put_s}s ($(awk -v m="$size_mib" -v s="$put_s" 'BEGIN { printf "%.0f", m / s }') MiB/s of file, 3 copies)"

# Whether every chunk and the manifest have 3 live copies, asked of $1.
replicated() {
  json stat big --api "$1" | field 'len(d["manifest_replicas"]) == 3 and all(len(c["replicas"]) == 3 for c in d["chunks"])'
}
repair_bytes() {
  local sum=0
  for api in "$@"; do
    sum=$((sum + $(json status --api "$api" | field 'd["repair"]["bytes_sent"]')))
  done
  echo "$sum"
}

victim=$((peers - 1))
lost=$(json status --api "${apis[$victim]}" | field 'd["store"]["bytes"]')
kill -9 "${pids[$victim]}"
t_kill=$(now)
survivors=("${apis[@]:0:$victim}")
t_repair=
while [ "$(replicated "${apis[0]}")" != "True" ]; do
  if [ -z "$t_repair" ] && [ "$(repair_bytes "${survivors[@]}")" -gt 0 ]; then t_repair=$(now); fi
  sleep 0.2
done
t_done=$(now)
[ -z "$t_repair" ] && t_repair=$t_done
moved=$(repair_bytes "${survivors[@]}")
echo "after SIGKILL of a peer holding $((lost / 1048576)) MiB: 3 live copies of everything again after $(elapsed "$t_kill" "$t_done")s"
echo "  (detection ~2s + --rereplicate-after ${delay}s + repair $(elapsed "$t_repair" "$t_done")s)"
repair_s=$(elapsed "$t_repair" "$t_done")
echo "repair: $((moved / 1048576)) MiB copied in ${repair_s}s = $(awk -v b="$moved" -v s="$repair_s" 'BEGIN { printf "%.0f", b / 1048576 / s }') MiB/s; put ran at $(awk -v m="$size_mib" -v s="$put_s" 'BEGIN { printf "%.0f", m / s }') MiB/s: ratio $(awk -v b="$moved" -v s="$repair_s" -v m="$size_mib" -v p="$put_s" 'BEGIN { printf "%.2f", (b / 1048576 / s) / (m / p) }')"

# A new peer joins the survivors.
join=$(json status --api "${apis[0]}" | field 'd["listen"][0]')
total=$(for api in "${survivors[@]}"; do json status --api "$api" | field 'd["store"]["bytes"]'; done | awk '{ s += $1 } END { print s }')
start_peer "$peers"
newcomer=${apis[$peers]}
t_join=$(now)
sleep 2
until [ "$(replicated "${apis[0]}")" = "True" ] &&
      [ "$(for api in "${survivors[@]}" "$newcomer"; do json status --api "$api" | field 'd["store"]["bytes"]'; done | awk '{ s += $1 } END { print s }')" = "$total" ]; do
  sleep 0.5
done
got=$(json status --api "$newcomer" | field 'd["store"]["bytes"]')
n=$peers
echo "join: the new peer received $((got / 1048576)) MiB of $((total / 1048576)) MiB stored = $(awk -v g="$got" -v t="$total" 'BEGIN { printf "%.3f", g / t }') (ideal 1/$n = $(awk -v n="$n" 'BEGIN { printf "%.3f", 1 / n }')) in $(elapsed "$t_join" "$(now)")s; surplus copies dropped, 3 copies of everything"
