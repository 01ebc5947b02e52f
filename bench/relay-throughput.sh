#!/usr/bin/env bash
# End-to-end relay throughput, next to a stock Postfix doing the same job in the same run:
#   smtp-source -d -s 20 -l 4096 → relay → smtp-sink
# Prints msgs/s from the first message sent to the last one received by smtp-sink.
# Usage: bench/relay-throughput.sh [MESSAGES] (default 50000)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
N=${1:-50000}
work=$(mktemp -d /tmp/mailops-bench-XXXX)
chmod 755 "$work" # Postfix daemons run as the postfix user
pids=()
cleanup() { stop_postfix "$work/postfix"; kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT

run() { # NAME LISTEN_PORT SINK_LOG
  local start end
  start=$(date +%s%3N)
  smtp-source -d -s 20 -m "$N" -l 4096 -f bench@sender.test -t rcpt@dest.test "127.0.0.1:$2"
  end=$(wait_for_count "$3" "$N" 900)
  local ms=$((end - start))
  printf '%-8s %7d msgs in %6.2f s = %6.0f msgs/s\n' "$1" "$N" "$(echo "$ms/1000" | bc -l)" "$(echo "$N*1000/$ms" | bc -l)"
  echo "$N*1000/$ms" | bc -l >"$work/$1.rate"
}

# mailops
sink1=$(free_port); smtp1=$(free_port); http1=$(free_port)
pids+=("$(start_smtp_sink "$sink1" "$work/sink-mailops.log")")
node_modules/.bin/node bin/mailops relay start --smtp "127.0.0.1:$smtp1" --http "127.0.0.1:$http1" \
  --spool "$work/spool" --smarthost "127.0.0.1:$sink1" >"$work/relay.log" 2>&1 &
pids+=($!)
until grep -qs '"listening"' "$work/relay.log"; do sleep 0.1; done
run mailops "$smtp1" "$work/sink-mailops.log"
rss=$(ps -o rss= -p "${pids[1]}")

# stock Postfix
sink2=$(free_port); smtp2=$(free_port)
pids+=("$(start_smtp_sink "$sink2" "$work/sink-postfix.log")")
start_postfix "$work/postfix" "$smtp2" "$sink2"
until (echo QUIT | timeout 1 bash -c "cat > /dev/tcp/127.0.0.1/$smtp2") 2>/dev/null; do sleep 0.2; done
run postfix "$smtp2" "$work/sink-postfix.log"

printf 'ratio    %.2f x Postfix (mailops relay RSS %d MB)\n' "$(echo "$(cat "$work/mailops.rate")/$(cat "$work/postfix.rate")" | bc -l)" $((rss / 1024))
