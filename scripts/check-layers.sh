#!/usr/bin/env bash
# Checks that modules only use the modules below them (docs/architecture.md).
# Every `crate::<module>` reference in src/<module>/ must be to a module in
# that module's allowed list. Exits non-zero, naming each offending line.
set -euo pipefail
cd "$(dirname "$0")/../src"

declare -A allowed=(
  [chunk]="codec"
  [codec]=""
  [config]="chunk gossip net"
  [identity]=""
  [activity]="chunk"
  [secret]=""
  [invite]="secret"
  [store]="chunk codec config"
  [dht]="chunk"
  [protocol]="chunk codec"
  [replica]="chunk config metrics net protocol store"
  [gossip]="chunk codec"
  [net]="codec gossip protocol secret"
  [files]="chunk config identity store dht gossip net protocol replica"
  [heal]="chunk config dht files protocol replica store"
  [serving]="tls"
  [tls]=""
  [metrics]=""
  [s3]="chunk codec files protocol secret"
  [tokens]="chunk codec files"
  [api]="activity chunk config files gossip heal invite metrics net s3 secret serving tokens"
  [fuzzing]="api chunk codec gossip invite net protocol s3 tokens"
  [node]="activity api chunk config files gossip heal identity metrics net protocol replica s3 serving store tls tokens web"
  [web]="activity api chunk files gossip net tokens"
  [client]="api chunk tokens"
  [cli]="api chunk client config identity secret tokens"
  # The binary's own: it reaches the library as `shoal::`, not `crate::`.
  [cmdline]=""
)

status=0
# Every module must be listed: a new one is placed in the layering on purpose.
for entry in *; do
  module=${entry%.rs}
  case "$module" in lib | main) continue ;; esac
  if [ -z "${allowed[$module]+set}" ]; then
    echo "layering: module $module is not listed in scripts/check-layers.sh"
    status=1
  fi
done
for module in "${!allowed[@]}"; do
  paths=()
  [ -d "$module" ] && paths+=("$module")
  [ -f "$module.rs" ] && paths+=("$module.rs")
  [ ${#paths[@]} -gt 0 ] || continue
  # Code lines only: doc comments may link to any module.
  while IFS= read -r hit; do
    code=${hit#*:*:}
    for used in $(grep -oE 'crate::[a-z_0-9]+' <<<"$code" | sed 's/crate:://' | sort -u); do
      [ "$used" = "$module" ] && continue
      if ! grep -qw -- "$used" <<<"${allowed[$module]}"; then
        echo "layering: $module may not use $used: $hit"
        status=1
      fi
    done
  done < <(grep -rnHE 'crate::[a-z_0-9]+' "${paths[@]}" | grep -vE '^[^:]+:[0-9]+:[[:space:]]*//')
done
exit $status
