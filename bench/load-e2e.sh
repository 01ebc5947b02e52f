#!/usr/bin/env bash
# End to end: `mailops load newsletter` → `mailops relay start` → `mailops sink`, three processes
# on loopback, as an operator would run them. The sink's `lab` profile accepts at once and refuses
# only the generator's `unknown*` recipients (550 5.1.1), so injected = arrived + refused exactly.
# Usage: bench/load-e2e.sh [SCENARIO=newsletter-1m] [extra `load newsletter` flags...]
# Env: BASE_PORT (default 25400), PROFILE (default lab; "default" = shipped provider profiles).
set -euo pipefail
cd "$(dirname "$0")/.."
SCENARIO=${1:-newsletter-1m}; shift || true
BASE=${BASE_PORT:-25400}
NODE=node_modules/.bin/node
work=$(mktemp -d /tmp/mailops-e2e-XXXXXX)
pids=()
. bench/lib.sh
trap 'stop_pids_and_remove "$work"' EXIT

cat > "$work/lab.yaml" <<'YAML'
profiles:
  lab:
    unknownUsers: { share: 0, prefix: unknown, reply: "550 5.1.1 <{recipient}>: User unknown" }
YAML


profile_args=(--profiles "$work/lab.yaml" --profile lab)
[ "${PROFILE:-lab}" = default ] && profile_args=(--greylist-delay 5s)
"$NODE" bin/mailops sink --smtp 127.0.0.1:$((BASE + 2)) --http 127.0.0.1:$((BASE + 3)) "${profile_args[@]}" --no-tls --quiet > "$work/sink.log" 2>&1 &
sink_pid=$!; pids+=("$sink_pid")
wait_for_line "$work/sink.log" "SMTP on"
"$NODE" bin/mailops relay start --smtp 127.0.0.1:$BASE --http 127.0.0.1:$((BASE + 1)) --spool "$work/spool" \
  --smarthost 127.0.0.1:$((BASE + 2)) > "$work/relay.log" 2>&1 &
relay_pid=$!; pids+=("$relay_pid")
wait_for_line "$work/relay.log" '"listening"'

hwm() { awk '/VmHWM/ { printf "%d MB", $2 / 1024 }' "/proc/$1/status"; }
start=$(date +%s.%N)
set +e
"$NODE" bin/mailops load newsletter --scenario "$SCENARIO" --target smtp://127.0.0.1:$BASE --sink http://127.0.0.1:$((BASE + 3)) "$@"
status=$?
set -e
end=$(date +%s.%N)
echo
echo "wall time (send + drain): $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }') s; exit status $status"
echo "peak RSS: relay $(hwm "$relay_pid"), sink $(hwm "$sink_pid") (generator: see generator.rssMaxMB in report.json)"
echo "relay queue: $(curl -s http://127.0.0.1:$((BASE + 1))/api/v1/queue)"
echo "sink stats: $(curl -s http://127.0.0.1:$((BASE + 3))/api/v1/stats | head -c 600)"
exit $status
