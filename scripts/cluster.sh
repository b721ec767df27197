#!/usr/bin/env bash
# Starts an N-peer shoal swarm on this machine, for trying shoal by hand.
#
#   scripts/cluster.sh start [N]   build (release) and start N peers (default 3)
#   scripts/cluster.sh status      show the swarm as the first peer sees it
#   scripts/cluster.sh stop        stop the peers this script started
#
# Peer i (from 0) serves its API on 127.0.0.1:$((BASE + i)) and S3 on
# 127.0.0.1:$((BASE + 200 + i)), and listens for other peers on
# 127.0.0.1:$((BASE + 100 + i)); peers 1.. join through peer 0.
# mDNS is off so the cluster stays separate from any other peers on the LAN.
# Environment: SHOAL_CLUSTER_DIR (default /tmp/shoal-cluster) holds the data,
# logs and pids; SHOAL_CLUSTER_BASE (default 7100) is the first port; a
# cluster secret is generated into the directory on first start.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${SHOAL_CLUSTER_DIR:-/tmp/shoal-cluster}
base=${SHOAL_CLUSTER_BASE:-7100}
shoal=target/release/shoal

start() {
  local n=${1:-3}
  if [ -e "$dir/pids" ]; then
    echo "a cluster is already running from $dir (scripts/cluster.sh stop first)" >&2
    exit 1
  fi
  cargo build --release --locked --quiet
  mkdir -p "$dir"
  [ -e "$dir/secret" ] || "$shoal" keygen -o "$dir/secret"
  for ((i = 0; i < n; i++)); do
    local join=()
    [ "$i" -gt 0 ] && join=(--join "/ip4/127.0.0.1/tcp/$((base + 100))")
    "$shoal" node --data "$dir/peer$i" --api "127.0.0.1:$((base + i))" \
      --s3 "127.0.0.1:$((base + 200 + i))" \
      --listen "/ip4/127.0.0.1/tcp/$((base + 100 + i))" --no-mdns \
      --secret-file "$dir/secret" "${join[@]}" \
      >"$dir/peer$i.out" 2>"$dir/peer$i.log" &
    echo $! >>"$dir/pids"
    # Each peer announces readiness on stdout once it has joined.
    for _ in $(seq 100); do
      grep -q "serving the API" "$dir/peer$i.out" 2>/dev/null && break
      if ! kill -0 "$(tail -1 "$dir/pids")" 2>/dev/null; then
        echo "peer $i failed to start:" >&2
        tail -3 "$dir/peer$i.log" >&2
        stop
        exit 1
      fi
      sleep 0.1
    done
  done
  echo "started $n peers; logs in $dir/peer*.log"
  for ((i = 0; i < n; i++)); do
    echo "  peer $i: $shoal status --api http://127.0.0.1:$((base + i)); S3 on http://127.0.0.1:$((base + 200 + i))"
  done
}

stop() {
  [ -e "$dir/pids" ] || { echo "no cluster running from $dir"; return; }
  while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$dir/pids"
  while read -r pid; do
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  done <"$dir/pids"
  rm -f "$dir/pids"
  echo "stopped (data kept in $dir; remove it to start afresh)"
}

case ${1:-} in
  start) start "${2:-3}" ;;
  stop) stop ;;
  status) "$shoal" --version >/dev/null && "$shoal" status --api "http://127.0.0.1:$base" ;;
  *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
