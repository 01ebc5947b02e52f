// Threshold expressions as written in scenarios and on the command line, k6-like but readable:
//   "arrival.transactional.p99 < 1s"   "error_rate < 1%"   "throughput >= 500"   "missing == 0"
// Durations become ms, percentages fractions; the metric name is checked against a fixed grammar
// so that a typo fails validation instead of silently never failing the run.
import type { Threshold } from '../scenario/types.ts';
import { parseDuration } from '../../util/units.ts';

const STATS = 'p50|p90|p95|p99|p999|max|mean';
const PHASES = 'connect|banner|ehlo|mail|rcpt|data|eod';
const LANE = 'transactional|member|bulk|all';
const METRIC = new RegExp(
  `^(error_rate|throughput|errors|missing|sent|send\\.(${LANE})\\.(${STATS})|phase\\.(${PHASES})\\.(${STATS})|arrival\\.(${LANE})\\.(p50|p90|p99|max))$`,
);

/** Returns the threshold, or a message saying what is wrong with the expression. */
export function parseThreshold(expression: string): Threshold | string {
  const match = /^\s*([a-z_.0-9]+)\s*(<=|>=|==|<|>)\s*(\S+)\s*$/.exec(expression);
  if (!match) return 'expected "METRIC OP VALUE", for example "arrival.transactional.p99 < 1s"';
  const [, metric, op, raw] = match;
  if (!METRIC.test(metric)) {
    return `unknown metric ${JSON.stringify(metric)} (error_rate, throughput, errors, missing, sent, send.LANE.STAT, phase.PHASE.STAT, arrival.LANE.STAT)`;
  }
  let value: number | undefined;
  if (raw.endsWith('%')) value = Number(raw.slice(0, -1)) / 100;
  else if (/^\d+(\.\d+)?$/.test(raw)) value = Number(raw);
  else if (/(ms|s|m)$/.test(raw)) value = parseDuration(raw);
  if (value === undefined || !Number.isFinite(value)) return `bad value ${JSON.stringify(raw)} (a number, a duration like 250ms or 1s, or a percentage like 1%)`;
  return { expression: expression.trim(), metric, op: op as Threshold['op'], value };
}
