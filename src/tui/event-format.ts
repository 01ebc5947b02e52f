// One relay event log line → one short line for the events panel. Parsed only for the few lines on
// screen; a line that is not JSON is shown as it came.
import type { EventLine } from './types.ts';

const ms = (v: unknown) => (typeof v === 'number' ? (v >= 10_000 ? `${(v / 1000).toFixed(0)}s` : v >= 1000 ? `${(v / 1000).toFixed(1)}s` : `${v}ms`) : '');
const str = (v: unknown) => (v === undefined || v === null ? '' : Array.isArray(v) ? (v.length === 1 ? String(v[0]) : `${v.length} rcpt`) : String(v));

export function formatEvent(node: string, line: string): EventLine {
  let e: Record<string, unknown>;
  try {
    e = JSON.parse(line);
  } catch {
    return { time: '', node, event: '?', text: line.slice(0, 300) };
  }
  const event = str(e.event);
  const head = [e.lane, e.id].map(str).filter(Boolean).join(' ');
  let text: string;
  switch (event) {
    case 'received':
      text = `${head} <${str(e.from)}> → ${str(e.rcpt)}`;
      break;
    case 'delivered':
      text = `${head} ${str(e.rcpt)} after ${ms(e.queuedMs)}`;
      break;
    case 'deferred':
    case 'failed':
    case 'expired':
      text = `${head} ${str(e.rcpt)}: ${str(e.reply)}`;
      break;
    case 'destination-paused':
      text = `${str(e.destination)} until ${str(e.until).slice(11, 19)}: ${str(e.reply)}`;
      break;
    default: {
      const rest = Object.entries(e).filter(([k]) => k !== 'time' && k !== 'event').map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
      text = rest.join(' ');
    }
  }
  return { time: str(e.time), node, event, text: text.replace(/\s+/g, ' ').trim() };
}
