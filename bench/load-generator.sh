#!/usr/bin/env bash
# Generator alone: `mailops load newsletter --rate max --size 4096` versus Postfix's
# `smtp-source -d -s 20 -l 4096`, both into the same smtp-sink, same run, alternating, ROUNDS times.
# Usage: bench/load-generator.sh [MESSAGES=200000] [ROUNDS=3] [PORT=25300]
set -euo pipefail
cd "$(dirname "$0")/.."
MESSAGES=${1:-200000}
ROUNDS=${2:-3}
PORT=${3:-25300}
NODE=node_modules/.bin/node
work=$(mktemp -d)
trap 'kill "$sink_pid" 2>/dev/null || true; rm -rf "$work"' EXIT

# Same shape as smtp-source: one lane, fixed size, 20 connections kept for the whole run.
cat > "$work/bench.yaml" <<YAML
name: bench-generator
description: generator benchmark against smtp-sink (bulk only, like smtp-source)
rate: max
connections: 20
messagesPerConnection: 100000000
recipients: { providers: { gmail.com: 1 }, corporate: { weight: 0 } }
thresholds: []
YAML

user=(); [ "$(id -u)" = 0 ] && user=(-u nobody)
/usr/sbin/smtp-sink "${user[@]}" 127.0.0.1:"$PORT" 1000 & sink_pid=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.1; done

rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
echo "messages per run: $MESSAGES, 4096 bytes, 20 connections, smtp-sink on 127.0.0.1:$PORT"
for round in $(seq "$ROUNDS"); do
  start=$(date +%s.%N)
  /usr/sbin/smtp-source -d -s 20 -l 4096 -m "$MESSAGES" 127.0.0.1:"$PORT"
  end=$(date +%s.%N)
  src_secs=$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')

  start=$(date +%s.%N)
  out=$("$NODE" bin/mailops load newsletter --scenario "$work/bench.yaml" --target smtp://127.0.0.1:"$PORT" \
    --rate max --size 4096 --messages "$MESSAGES" --no-report --json | tail -1)
  end=$(date +%s.%N)
  wall_secs=$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')
  accepted=$(printf '%s' "$out" | "$NODE" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s).report;console.log(r.totals.accepted, r.totals.sendSeconds, r.totals.failed)})')
  read -r acc send_secs failed <<<"$accepted"
  echo "round $round: smtp-source $(rate "$MESSAGES" "$src_secs") msgs/s ($src_secs s) | mailops $(rate "$acc" "$send_secs") msgs/s sending ($send_secs s), $(rate "$acc" "$wall_secs") msgs/s wall incl. node start ($wall_secs s), accepted $acc failed $failed | ratio (wall) $(awk -v a="$src_secs" -v b="$wall_secs" 'BEGIN { printf "%.2f", a / b }')x"
done
