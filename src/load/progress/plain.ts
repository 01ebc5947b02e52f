// Progress as plain lines (not a terminal) or as JSON lines (--json).
import type { Progress } from '../run.ts';
import { int, ms } from '../report/format.ts';

export function progressLine(p: Progress): string {
  const lanes = Object.entries(p.lanes).map(([lane, l]) => `${lane} p99 ${ms(l.p99)}`).join(', ');
  const eta = p.etaSeconds === null ? '' : `  eta ${Math.ceil(p.etaSeconds)}s`;
  const arrived = p.arrived === undefined ? '' : `  arrived ${int(p.arrived)}`;
  return `[${p.elapsed.toFixed(0).padStart(5)}s] ${p.stage.padEnd(8)} accepted ${int(p.accepted)}/${int(p.expected)}  failed ${int(p.failed)}  ` +
    `rate ${int(p.rate)}/s  in-flight ${p.inFlight}${eta}${arrived}${lanes ? `  ${lanes}` : ''}`;
}

export function plainProgress(out: NodeJS.WritableStream): (p: Progress) => void {
  return (p) => out.write(`${progressLine(p)}\n`);
}

export function jsonProgress(out: NodeJS.WritableStream): (p: Progress) => void {
  return (p) => out.write(`${JSON.stringify({ event: 'progress', ...p, elapsed: Math.round(p.elapsed * 1000) / 1000 })}\n`);
}
