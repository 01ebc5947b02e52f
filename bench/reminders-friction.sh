#!/usr/bin/env bash
# Priority under provider friction: password reminders while a newsletter floods the relay, all of
# it delivered into the simulated internet of `mailops sink --dns` on its shipped provider profiles
# (connection caps per sending address, rates, slow answers, session limits). Two phases in one
# run against the same relay and sink: a baseline with reminders and member mail only (60 s), then
# the newsletter (`reminders-during-newsletter`, BULK messages at max rate) with the reminders
# alongside. Prints transactional (and member) arrival p50/p99/max of both phases and the ratio of
# the p99s: the target is ratio <= 1.5.
#
# Usage: bench/reminders-friction.sh [MODE=separate] [BULK=200000]
#   MODE separate  lanes on their own egress addresses (transactional 127.0.0.2, bulk 127.0.0.3)
#        shared    every lane sends from 127.0.0.1
#        smarthost the README's old layout: one smarthost (the sink's shared port, profile by domain)
# Env: BASE_PORT (default 25500), DRAIN (seconds to wait for arrival after sending, default 60),
#      BASELINE (seconds, default 60), KEEP=1 keeps the work directory (logs, reports),
#      SENDERS: `apart` (default) sends the reminders and member mail from a load process of their
#      own, as an application server does, for DURING seconds (default 150) while another process
#      injects the newsletter; `together` sends all lanes from one load process (the newsletter's
#      generation then delays the reminders inside the load generator too).
#      RELAY_NODE_ARGS: extra Node options for the relay alone (e.g. --cpu-prof --cpu-prof-dir=DIR)
#      BULK_RATE: the newsletter's injection rate in msgs/s (default max: as fast as the relay answers)
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-separate}
BULK=${2:-200000}
BASE=${BASE_PORT:-25500}
DRAIN=${DRAIN:-60}
BASELINE=${BASELINE:-60}
NODE=node_modules/.bin/node
work=$(mktemp -d /tmp/mailops-friction-XXXXXX)
pids=()
. bench/lib.sh
trap 'stop_pids_and_remove "$work"' EXIT
[ -n "${KEEP:-}" ] && trap 'stop_pids_and_remove /nonexistent; echo "kept $work"' EXIT


SINK_SMTP=$((BASE + 2)); SINK_HTTP=$((BASE + 3)); DNS=$((BASE + 4))
"$NODE" bin/mailops sink --dns 127.0.0.1:$DNS --smtp 127.0.0.1:$SINK_SMTP --http 127.0.0.1:$SINK_HTTP --quiet > "$work/sink.log" 2>&1 &
sink_pid=$!; pids+=("$sink_pid")
wait_for_line "$work/sink.log" "SMTP on"

case "$MODE" in
  separate) lanes='lanes:
  transactional: { egress: { address: 127.0.0.2, helo: egress-2.mailops.test } }
  bulk: { egress: { address: 127.0.0.3, helo: egress-3.mailops.test } }' ;;
  shared|smarthost) lanes='' ;;
  *) echo "MODE: separate, shared or smarthost, got $MODE" >&2; exit 2 ;;
esac
cat > "$work/relay.yaml" <<YAML
smtp: { hostname: relay1.mailops.test }
delivery: { dnsServers: ["127.0.0.1:$DNS"], port: $SINK_SMTP }
$lanes
YAML
smarthost=()
[ "$MODE" = smarthost ] && smarthost=(--smarthost 127.0.0.1:$SINK_SMTP)
"$NODE" ${RELAY_NODE_ARGS:-} bin/mailops relay start --config "$work/relay.yaml" --smtp 127.0.0.1:$BASE --http 127.0.0.1:$((BASE + 1)) --spool "$work/spool" "${smarthost[@]}" > "$work/relay.log" 2>&1 &
relay_pid=$!; pids+=("$relay_pid")
wait_for_line "$work/relay.log" '"listening"'

# the shipped scenario, with a drain that fits a benchmark (the newsletter itself drains for an hour at the providers' rates)
sed "s/^drainTimeout:.*/drainTimeout: ${DRAIN}s/" scenarios/reminders-during-newsletter.yaml > "$work/scenario.yaml"

SENDERS=${SENDERS:-apart}
DURING=${DURING:-150}
# the newsletter alone, for the process that injects it when the reminders come from another
grep -v -E '^(transactional|member):' "$work/scenario.yaml" | sed "s/^rate:.*/rate: ${BULK_RATE:-max}/" > "$work/scenario-bulk.yaml"

phase() { # NAME [--scenario FILE] ARGS... : runs one load phase, prints its lanes' arrival from report.json
  local name=$1; shift
  local scenario="$work/scenario.yaml" reset=--sink-reset
  if [ "${1:-}" = --scenario ]; then scenario=$2; shift 2; fi
  if [ "${1:-}" = --keep-sink ]; then reset=; shift; fi
  phase_start=$(date +%s%3N)
  set +e
  "$NODE" bin/mailops load newsletter --scenario "$scenario" --target smtp://127.0.0.1:$BASE --sink http://127.0.0.1:$SINK_HTTP \
    $reset --report "$work/reports-$name" "$@" > "$work/load-$name.log" 2>&1
  set -e
  local report; report=$(ls -d "$work/reports-$name"/*/ | head -1)report.json
  "$NODE" -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const out = { lanes: {} };
    for (const [lane, l] of Object.entries(r.lanes)) {
      if (l.arrival) out.lanes[lane] = { n: l.arrival.count, ...l.arrival.latencyMs, sendP50: l.send.p50, sendP99: l.send.p99, serviceP99: l.service.p99 };
    }
    console.log(JSON.stringify(out));
  ' "$report" > "$work/$name.json"
  echo "$name: $(cat "$work/$name.json")"
  grep -E "^- (started|accepted|arrived at the sink|worst transactional)" "$work/load-$name.log" | sed 's/^/  /'
  # where a reminder's time went inside the relay: 250 at receipt -> 250 from the receiver (queuedMs), and the attempt itself (deliveryMs)
  "$NODE" -e '
    const [log, from, to] = process.argv.slice(1);
    const q = { transactional: [], member: [] }, d = { transactional: [], member: [] };
    for (const line of require("fs").readFileSync(log, "utf8").split("\n")) {
      if (!line.includes("\"event\":\"delivered\"")) continue;
      const e = JSON.parse(line); const t = Date.parse(e.time);
      if (t < from || t > to || !q[e.lane]) continue;
      q[e.lane].push(e.queuedMs); d[e.lane].push(e.deliveryMs ?? 0);
    }
    const pct = (a, p) => a.length ? a.sort((x, y) => x - y)[Math.min(a.length - 1, Math.ceil(p * a.length) - 1)] : 0;
    for (const lane of Object.keys(q)) console.log(`  relay ${lane}: receipt->delivered p50 ${pct(q[lane], 0.5)} ms, p99 ${pct(q[lane], 0.99)} ms; of it the attempt p50 ${pct(d[lane], 0.5)} ms, p99 ${pct(d[lane], 0.99)} ms (n ${q[lane].length})`);
  ' "$work/relay.log" "$phase_start" "$(date +%s%3N)"
}

echo "mode $MODE, bulk $BULK, baseline ${BASELINE}s, drain ${DRAIN}s, senders $SENDERS"
phase baseline --messages 0 --duration ${BASELINE}s
if [ "$SENDERS" = together ]; then
  curl -s http://127.0.0.1:$((BASE + 1))/metrics > "$work/metrics-before.txt"; during_start=$(date +%s%3N)
  phase bulk --messages "$BULK"
  curl -s http://127.0.0.1:$((BASE + 1))/metrics > "$work/metrics-after.txt"; during_end=$(date +%s%3N)
else
  # the newsletter from one process; the reminders from another for DURING seconds inside its injection
  "$NODE" bin/mailops load newsletter --scenario "$work/scenario-bulk.yaml" --target smtp://127.0.0.1:$BASE --sink http://127.0.0.1:$SINK_HTTP \
    --sink-reset --report "$work/reports-newsletter" --messages "$BULK" > "$work/load-newsletter.log" 2>&1 &
  newsletter=$!; pids+=("$newsletter")
  sleep 5
  curl -s http://127.0.0.1:$((BASE + 1))/metrics > "$work/metrics-before.txt"; during_start=$(date +%s%3N)
  phase bulk --keep-sink --messages 0 --duration ${DURING}s
  curl -s http://127.0.0.1:$((BASE + 1))/metrics > "$work/metrics-after.txt"; during_end=$(date +%s%3N)
  if kill -0 "$newsletter" 2>/dev/null; then echo "  (the newsletter was still being injected when the reminders' ${DURING} s ended: they ran alongside it throughout)"
  else echo "  WARNING: the newsletter's injection ended before the reminders' ${DURING} s did: lower DURING or raise BULK"; fi
  wait "$newsletter" || true
  grep -E "^- (started|accepted)" "$work/load-newsletter.log" | sed 's/^/  newsletter: /'
fi
"$NODE" -e '
  const [b, d] = process.argv.slice(1).map((f) => JSON.parse(require("fs").readFileSync(f, "utf8")));
  for (const lane of ["transactional", "member"]) {
    const x = b.lanes[lane], y = d.lanes[lane];
    if (!x || !y) continue;
    console.log(`${lane}: arrival p99 baseline ${x.p99} ms, during bulk ${y.p99} ms: ratio ${(y.p99 / x.p99).toFixed(2)} (p50 ${x.p50} -> ${y.p50} ms, max ${x.max} -> ${y.max} ms, n ${x.n} / ${y.n}; send to the 250 p99 ${x.sendP99} -> ${y.sendP99} ms, of it the relay answering p99 ${x.serviceP99} -> ${y.serviceP99} ms)`);
  }
' "$work/baseline.json" "$work/bulk.json"
echo "relay queue after the run: $(curl -s http://127.0.0.1:$((BASE + 1))/api/v1/queue)"
echo "spool fsyncs: $(curl -s http://127.0.0.1:$((BASE + 1))/metrics | awk -F'[ {}=\"]+' '/^mailops_spool_sync_seconds_bucket/ { le[$3] = $4 } /^mailops_spool_sync_seconds_count/ { n = $2 } END { printf "%d, <= 10 ms %.1f %%, <= 100 ms %.1f %%, <= 500 ms %.2f %%", n, 100 * le["0.01"] / n, 100 * le["0.1"] / n, 100 * le["0.5"] / n }')"
# the relay's own view from /metrics over the reminders' phase alongside the newsletter (the
# difference of two snapshots)
window=("$work/metrics-before.txt" "$work/metrics-after.txt")
over="over the phase with the newsletter ($(( (during_end - during_start) / 1000 )) s)"
"$NODE" -e '
  const fs = require("fs");
  const [before, after, over, ms] = process.argv.slice(1);
  const parse = (file) => { const m = new Map(); for (const l of fs.readFileSync(file, "utf8").split("\n")) { const i = l.lastIndexOf(" "); if (i > 0 && !l.startsWith("#")) m.set(l.slice(0, i), Number(l.slice(i + 1))); } return m; };
  const a = parse(before), b = parse(after);
  const delta = (k) => (b.get(k) ?? 0) - (a.get(k) ?? 0);
  const hq = (name, sel) => { // p50 / p99 / max (bucket upper bounds) of the histogram difference
    const buckets = [...b.keys()].filter((k) => k.startsWith(name + "_bucket{") && k.includes(sel)).map((k) => [k.match(/le="([^"]+)"/)[1], delta(k)]);
    const n = buckets.at(-1)[1];
    return [0.5, 0.99, 1].map((q) => { const hit = buckets.find(([, c]) => c >= q * n); return hit[0] === "+Inf" ? "inf" : `${Number(hit[0]) * 1000} ms`; }).join(" / ");
  };
  console.log(`relay, ${over}:`);
  console.log(`  250 after DATA p50 / p99 / max: transactional ${hq("mailops_answer_seconds", "lane=\"transactional\"")}, bulk ${hq("mailops_answer_seconds", "lane=\"bulk\"")}`);
  console.log(`  event loop, worst lateness per 100 ms window p50 / p99 / max: ${hq("mailops_event_loop_delay_seconds", "")}`);
  console.log(`  spool transactions holding the loop p50 / p99 / max: ${hq("mailops_spool_commit_seconds", "")}`);
  const seconds = Number(ms) / 1000;
  console.log(`  newsletter taken in: ${Math.round(delta("mailops_received_total{lane=\"bulk\"}") / seconds)} msgs/s; 250s held by intake pacing: ${delta("mailops_intake_held_total")}`);
' "${window[@]}" "$over" "$(( during_end - during_start ))"
echo "shaping actions: $(grep -c '"event":"shaping"' "$work/relay.log" || true); requeued (not now): $(curl -s http://127.0.0.1:$((BASE + 1))/metrics | awk '/^mailops_requeued_total/ { s += $2 } END { print s + 0 }')"
