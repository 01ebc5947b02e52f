// The queue commands' actions: HTTP calls to a relay node and human-readable output.
import { ConfigError } from '../config/errors.ts';
import { callNode as call, type NodeOptions } from './node-client.ts';

function table(rows: (string | number)[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  return rows.map((r) => r.map((cell, i) => (i === 0 ? String(cell).padEnd(widths[i]) : String(cell).padStart(widths[i]))).join('  ')).join('\n') + '\n';
}

export async function summary(options: NodeOptions): Promise<void> {
  const data = await call(options, '/api/v1/queue/summary');
  if (options.json) return void process.stdout.write(JSON.stringify(data, null, 2) + '\n');
  const header = ['', 'T', ...data.bucketsMinutes.map(String), `${data.bucketsMinutes.at(-1)}+`];
  const lanes = Object.entries(data.lanes as Record<string, { total: number; buckets: number[]; domains: { domain: string; total: number; buckets: number[] }[] }>);
  if (lanes.length === 0) return void process.stdout.write('queue is empty\n');
  for (const [lane, entry] of lanes) {
    process.stdout.write(`\nlane ${lane} (age in minutes)\n`);
    const rows = [header, ['TOTAL', entry.total, ...entry.buckets], ...entry.domains.map((d) => [d.domain, d.total, ...d.buckets])];
    process.stdout.write(table(rows));
  }
}

export async function list(options: NodeOptions & { lane?: string; domain?: string; limit: string }): Promise<void> {
  const query = new URLSearchParams({ limit: options.limit });
  if (options.lane) query.set('lane', options.lane);
  if (options.domain) query.set('domain', options.domain);
  const data = await call(options, `/api/v1/queue/messages?${query}`);
  if (options.json) return void process.stdout.write(JSON.stringify(data, null, 2) + '\n');
  for (const m of data.messages) {
    process.stdout.write(`${m.id}  ${m.lane.padEnd(13)} ${m.receivedAt}  ${String(m.size).padStart(8)}  <${m.from}>\n`);
    for (const r of m.recipients) {
      process.stdout.write(`    ${r.state.padEnd(8)} <${r.address}> attempts=${r.attempts} next=${r.nextAttempt}${r.lastReply ? `\n      ${r.lastReply}` : ''}\n`);
    }
  }
  if (data.messages.length === 0) process.stdout.write('no queued messages match\n');
}

export async function change(action: 'retry' | 'delete', id: string | undefined, options: NodeOptions & { domain?: string }): Promise<void> {
  if (Boolean(id) === Boolean(options.domain)) throw new ConfigError(`queue ${action}: give a queue id or --domain, not both or neither`);
  const data = await call(options, `/api/v1/queue/${action}`, id ? { id } : { domain: options.domain });
  if (action === 'retry') process.stdout.write(`${data.retried} recipient(s) due now\n`);
  else process.stdout.write(`${data.deleted} recipient(s) deleted${data.inDelivery ? `, ${data.inDelivery} in a delivery attempt left alone` : ''}\n`);
}
