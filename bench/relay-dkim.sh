#!/usr/bin/env bash
# End to end with RSA-2048 DKIM on every message (4 KB):
#   smtp-source -d -s 20 -m N -l 4096 -f a@signed.test → relay (signs at intake) → smtp-sink
# next to the ceiling: the machine's RSA-2048 signing rate (`openssl speed -seconds 3 rsa2048`,
# one process) × number of cores. Target: at least 0.6 × ceiling.
# Usage: bench/relay-dkim.sh [MESSAGES] (default 20000); PROFILE=1 writes a --cpu-prof of the relay;
# DKIM=0 runs without signing (the relay's own cost, for comparison); SPOOL_EXTRA adds spool keys
# (e.g. ', commitInterval: 2ms'); NODE_FLAGS adds flags to the relay's node.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
N=${1:-20000}
work=$(mktemp -d /tmp/mailops-dkim-bench-XXXX)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT

cores=$(nproc)
per_core=$(openssl speed -seconds 3 rsa2048 2>/dev/null | awk '/^rsa +2048 bits/ {print $6}')
ceiling=$(echo "$per_core * $cores" | bc -l)
printf 'ceiling  %.0f RSA-2048 signs/s per core x %d cores = %.0f msgs/s\n' "$per_core" "$cores" "$ceiling"

node_modules/.bin/node bin/mailops dkim keygen --domain signed.test --selector bench --out "$work" --json >"$work/key.json"
sink=$(free_port); smtp=$(free_port); http=$(free_port)
cat >"$work/relay.yaml" <<YAML
smtp: { listen: "127.0.0.1:$smtp" }
http: { listen: "127.0.0.1:$http" }
spool: { dir: "$work/spool"${SPOOL_EXTRA:-} }
delivery: { smarthost: "127.0.0.1:$sink" }
YAML
# DKIM=0 runs the same without signing, for comparison
[ "${DKIM:-1}" = 0 ] || printf 'dkim:\n  - { domain: signed.test, selector: bench, privateKey: "%s" }\n' "$work/bench._domainkey.signed.test.pem" >>"$work/relay.yaml"
sinkpid=$(start_smtp_sink "$sink" "$work/sink.log")
pids+=("$sinkpid")
prof=()
[ "${PROFILE:-}" = 1 ] && prof=(--cpu-prof --cpu-prof-dir "$work/prof")
# NODE_FLAGS: extra V8/Node flags for the relay (e.g. --max-semi-space-size=16 to try a bigger young generation)
read -ra node_flags <<<"${NODE_FLAGS:-}"
node_modules/.bin/node "${prof[@]}" "${node_flags[@]}" bin/mailops relay start --config "$work/relay.yaml" >"$work/relay.log" 2>&1 &
relay=$!
pids+=("$relay")
until grep -qs '"listening"' "$work/relay.log"; do sleep 0.1; done

# the spool's depth each second: a growing queue means delivery, not intake, sets the pace
( while kill -0 "$relay" 2>/dev/null; do
    curl -s "http://127.0.0.1:$http/metrics" | awk '/^mailops_queue_messages /{print $2}'; sleep 1
  done >"$work/depth" ) &
pids+=($!)
idle_before=$(awk '/^cpu /{print $5 + $6}' /proc/stat)
start=$(date +%s%3N)
src_cpu=$( { /usr/bin/time -f '%U %S' smtp-source -d -s 20 -m "$N" -l 4096 -f a@signed.test -t b@dest.test "127.0.0.1:$smtp" >/dev/null; } 2>&1 | awk '{print $1 + $2}')
end=$(wait_for_count "$work/sink.log" "$N" 900)
ms=$((end - start))
idle_after=$(awk '/^cpu /{print $5 + $6}' /proc/stat)
rate=$(echo "$N*1000/$ms" | bc -l)
cpu=$(ps -o time= -p "$relay")
signed=$(grep -c '"event":"received"' "$work/relay.log" || true)
size=$(grep -m1 '"event":"received"' "$work/relay.log" | grep -o '"size":[0-9]*' | cut -d: -f2)
printf 'relay    %d msgs in %.2f s = %.0f msgs/s (%.2f x ceiling); relay CPU time %s; stored size %s bytes (DKIM-Signature + Received added)\n' \
  "$N" "$(echo "$ms/1000" | bc -l)" "$rate" "$(echo "$rate/$ceiling" | bc -l)" "$cpu" "$size"
printf 'CPU      relay %s s, smtp-source %s s, smtp-sink %s s (%.2f ms per message in all); relay threads:\n' \
  "$(proc_cpu "$relay")" "$src_cpu" "$(proc_cpu "$sinkpid")" "$(echo "($(proc_cpu "$relay") + $src_cpu + $(proc_cpu "$sinkpid")) * 1000 / $N" | bc -l)"
cpu_report "$relay"
printf 'machine  %.0f %% of the cores idle during the run (idle + iowait from /proc/stat)\n' \
  "$(echo "($idle_after - $idle_before) * 1000 / $(getconf CLK_TCK) / $ms / $cores * 100" | bc -l)"
printf 'queue    messages in the spool, sampled each second: %s\n' "$(tr '\n' ' ' <"$work/depth")"
curl -s "http://127.0.0.1:$http/metrics" | grep -E '^mailops_spool_(commits_total|sync_seconds_(count|sum))' | sed 's/^/  /'
if [ "${PROFILE:-}" = 1 ]; then
  kill -TERM "$relay"; wait "$relay" 2>/dev/null || true
  echo "profile: $(ls "$work"/prof/*.cpuprofile)"
fi
