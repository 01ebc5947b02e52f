// The inbound run's report: per class, what the MX accepted, where it refused the rest (the SMTP
// stage and the reply), what it deferred and whether the client came back, and the delay the
// accepted mail paid from its first attempt to the 250. Rendered as a Markdown table for the
// terminal and summary.md; report.json holds the same figures. Pure: counts in, text out.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatHostPort, type HostPort } from '../../util/units.ts';
import { int, ms } from '../report/format.ts';
import type { AttemptOutcome } from './attempt.ts';
import { INBOUND_CLASSES, type InboundClass, type InboundScenario } from './scenario.ts';

/** "rcpt 450 4.2.0", "greeting 554 5.7.1", "end-of-data 550 5.7.1", or "greeting: closed" for an attempt that got no reply. */
export type OutcomeKey = string;

export interface InboundClassReport {
  class: InboundClass;
  /** Messages of this class the run started. */
  messages: number;
  /** Connections made for them (first attempts and retries). */
  attempts: number;
  accepted: number;
  /** Final permanent refusals, by where they came. */
  refused: Record<OutcomeKey, number>;
  /** Final temporary refusals or lost connections: the client gave up (a bot at once, an MTA after its last retry). */
  gaveUp: Record<OutcomeKey, number>;
  /** Temporary refusals the client came back after (greylisting's usual 451). */
  retriedAfter: Record<OutcomeKey, number>;
  /** Still waiting for a retry or a connection when the run ended. */
  unfinished: number;
  /** Accepted messages: ms from the first attempt to the 250 after DATA. */
  delay?: { p50: number; p95: number; max: number };
  /** The first reply text seen for each key, to show what the MX said. */
  replies: Record<OutcomeKey, string>;
}

export interface InboundReport {
  kind: 'inbound';
  scenario: { name: string; description: string; source: string; messages: number; rate: number; connections: number; retry: number[] };
  runId: string;
  target: string;
  dns: string;
  seed: number;
  startedAt: string;
  durationMs: number;
  interrupted: boolean;
  /** Messages not started (the run was stopped before their turn). */
  unstarted: number;
  classes: InboundClassReport[];
  /** Legitimate messages not accepted: what an MX must never lose. */
  legitimateLost: number;
  /** Messages of the other classes accepted. */
  unwantedAccepted: number;
}

export function outcomeKey(outcome: Exclude<AttemptOutcome, { accepted: true }>): OutcomeKey {
  if ('error' in outcome) return `${outcome.stage}: ${outcome.error}`;
  return [outcome.stage, outcome.reply.code, outcome.reply.enhanced].filter(Boolean).join(' ');
}

/** Counts as the run goes; `report` turns them into an InboundReport. */
export class InboundTally {
  private readonly scenario: InboundScenario;
  private readonly classes = new Map<InboundClass, InboundClassReport>();
  private readonly delays = new Map<InboundClass, number[]>();
  acceptedCount = 0;

  constructor(scenario: InboundScenario) {
    this.scenario = scenario;
    for (const cls of INBOUND_CLASSES) {
      this.classes.set(cls, { class: cls, messages: 0, attempts: 0, accepted: 0, refused: {}, gaveUp: {}, retriedAfter: {}, unfinished: 0, replies: {} });
      this.delays.set(cls, []);
    }
  }

  /** A temporary refusal the client will come back after. */
  retried(cls: InboundClass, outcome: AttemptOutcome): void {
    if (outcome.accepted) return;
    const key = this.note(cls, outcome);
    const c = this.classes.get(cls)!;
    c.retriedAfter[key] = (c.retriedAfter[key] ?? 0) + 1;
  }

  /** A message's last attempt; `delayMs` from its first attempt. */
  finish(cls: InboundClass, outcome: AttemptOutcome, attempts: number, delayMs: number): void {
    const c = this.classes.get(cls)!;
    c.messages++;
    c.attempts += attempts;
    if (outcome.accepted) {
      c.accepted++;
      this.acceptedCount++;
      this.delays.get(cls)!.push(delayMs);
      return;
    }
    const key = this.note(cls, outcome);
    const permanent = !('error' in outcome) && outcome.reply.code >= 500;
    const into = permanent ? c.refused : c.gaveUp;
    into[key] = (into[key] ?? 0) + 1;
  }

  /** A message still waiting (for a retry or a connection) when the run ended. */
  unfinished(cls: InboundClass, attempts: number): void {
    const c = this.classes.get(cls)!;
    c.messages++;
    c.attempts += attempts;
    c.unfinished++;
  }

  report(run: { runId: string; target: HostPort; dns: HostPort; seed: number; startedAt: string; durationMs: number; interrupted: boolean; unstarted: number }): InboundReport {
    const s = this.scenario;
    const classes = INBOUND_CLASSES.map((cls) => {
      const c = this.classes.get(cls)!;
      const sorted = this.delays.get(cls)!.sort((a, b) => a - b);
      const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
      return sorted.length ? { ...c, delay: { p50: at(0.5), p95: at(0.95), max: sorted[sorted.length - 1] } } : c;
    }).filter((c) => c.messages > 0 || s.mix[c.class] > 0);
    const legitimate = classes.find((c) => c.class === 'legitimate');
    return {
      kind: 'inbound',
      scenario: { name: s.name, description: s.description, source: s.source, messages: s.messages, rate: s.rate, connections: s.connections, retry: s.retry },
      runId: run.runId,
      target: formatHostPort(run.target),
      dns: formatHostPort(run.dns),
      seed: run.seed,
      startedAt: run.startedAt,
      durationMs: run.durationMs,
      interrupted: run.interrupted,
      unstarted: run.unstarted,
      classes,
      legitimateLost: legitimate ? legitimate.messages - legitimate.accepted : 0,
      unwantedAccepted: classes.filter((c) => c.class !== 'legitimate').reduce((sum, c) => sum + c.accepted, 0),
    };
  }

  private note(cls: InboundClass, outcome: Exclude<AttemptOutcome, { accepted: true }>): OutcomeKey {
    const key = outcomeKey(outcome);
    const replies = this.classes.get(cls)!.replies;
    // the key holds the codes already: the text goes without its enhanced code
    if (!(key in replies)) replies[key] = 'error' in outcome ? outcome.error : outcome.reply.text.split('\n')[0].replace(/^\d\.\d{1,3}\.\d{1,3} /, '').slice(0, 160);
    return key;
  }
}

function counts(map: Record<string, number>): string {
  const entries = Object.entries(map).sort((a, b) => b[1] - a[1]);
  return entries.length ? entries.map(([key, n]) => `${key} ×${int(n)}`).join(', ') : '-';
}

export function renderInboundSummary(r: InboundReport): string {
  const lines = [
    `# mailops load inbound: ${r.scenario.name}`,
    '',
    `${int(r.classes.reduce((sum, c) => sum + c.messages, 0))} messages against ${r.target} in ${ms(r.durationMs)} (seed ${r.seed}, senders' DNS on ${r.dns})` +
      `${r.interrupted ? ', interrupted' : ''}${r.unstarted ? `, ${int(r.unstarted)} not started` : ''}`,
    '',
    '| class | messages | accepted | refused (final) | gave up | retried after | unfinished | delay p50 / p95 / max |',
    '|---|---:|---:|---|---|---|---:|---|',
    ...r.classes.map((c) => `| ${c.class} | ${int(c.messages)} | ${int(c.accepted)} | ${counts(c.refused)} | ${counts(c.gaveUp)} | ${counts(c.retriedAfter)} | ${int(c.unfinished)} | ` +
      `${c.delay ? `${ms(c.delay.p50)} / ${ms(c.delay.p95)} / ${ms(c.delay.max)}` : '-'} |`),
    '',
    `Legitimate mail lost: ${int(r.legitimateLost)}. Unwanted mail accepted: ${int(r.unwantedAccepted)}.`,
    '',
    'What the MX said:',
    '',
    ...r.classes.flatMap((c) => Object.entries(c.replies).map(([key, text]) => `- ${c.class}, ${key}: ${text}`)),
    '',
  ];
  return lines.join('\n');
}

/** Writes reports/<timestamp>-inbound-<scenario>-<run>/{report.json,summary.md}; returns the directory. */
export function writeInboundReport(r: InboundReport, baseDir: string): string {
  const stamp = r.startedAt.replace(/[:.]/g, '-').replace(/-\d+Z$/, 'Z');
  const dir = join(baseDir, `${stamp}-inbound-${r.scenario.name.replace(/[^a-z0-9-]/gi, '_')}-${r.runId}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'report.json'), `${JSON.stringify(r, null, 2)}\n`);
  writeFileSync(join(dir, 'summary.md'), renderInboundSummary(r));
  return dir;
}
