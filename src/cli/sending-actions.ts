// Actions of `mailops suppress ...` and `mailops queue suspend|resume`: HTTP calls to a relay node.
import { ConfigError } from '../config/errors.ts';
import { callNode as call, type NodeOptions } from './node-client.ts';
import { parseDuration } from '../util/units.ts';

export async function suppressList(options: NodeOptions & { after?: string; limit: string }): Promise<void> {
  const query = new URLSearchParams({ limit: options.limit });
  if (options.after) query.set('after', options.after);
  const data = await call(options, `/api/v1/suppressions?${query}`);
  if (options.json) return void process.stdout.write(JSON.stringify(data, null, 2) + '\n');
  for (const e of data.entries) process.stdout.write(`${e.address}  ${e.addedAt}  ${e.source}  ${e.reason}\n`);
  process.stdout.write(`${data.entries.length} shown, ${data.total} suppressed in total\n`);
}

export async function suppressChange(action: 'add' | 'remove', address: string, options: NodeOptions & { reason?: string }): Promise<void> {
  if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(address)) throw new ConfigError(`suppress ${action}: ${JSON.stringify(address)} is not an email address`);
  await call(options, `/api/v1/suppressions/${action}`, { address, reason: options.reason });
  process.stdout.write(action === 'add' ? `${address.toLowerCase()} suppressed\n` : `${address.toLowerCase()} removed from the suppression list\n`);
}

export async function suspend(options: NodeOptions & { domain: string; for?: string; reason?: string }): Promise<void> {
  if (options.for !== undefined && !parseDuration(options.for)) throw new ConfigError(`--for: expected a duration such as 30m or 2h, got ${JSON.stringify(options.for)}`);
  const data = await call(options, '/api/v1/destinations/suspend', { domain: options.domain, for: options.for, reason: options.reason });
  process.stdout.write(`${data.suspended} suspended ${data.until === 'until resumed' ? 'until resumed' : `until ${data.until}`}\n`);
}

export async function resume(options: NodeOptions & { domain: string }): Promise<void> {
  const data = await call(options, '/api/v1/destinations/resume', { domain: options.domain });
  process.stdout.write(`${data.resumed} resumed${data.site ? ` (site ${data.site})` : ''}; ${data.due} recipient(s) due now\n`);
}

export async function destinations(options: NodeOptions): Promise<void> {
  const data = await call(options, '/api/v1/destinations');
  if (options.json) return void process.stdout.write(JSON.stringify(data, null, 2) + '\n');
  // one block per egress path (sending address → site), a line per lane that sends from it
  for (const p of data.paths) {
    process.stdout.write(`${p.site}  from ${p.egress}  profile=${p.profile}  connections=${p.connections} (max ${p.maxConnections})\n`);
    for (const [lane, l] of Object.entries(p.lanes as Record<string, { state: string; limit: number; busy: number; queued: number; pausedUntil?: string; reply?: string }>)) {
      process.stdout.write(`    ${lane.padEnd(14)} ${l.state.padEnd(9)} busy ${l.busy}/${l.limit}  ready ${l.queued}${l.pausedUntil ? `  until ${l.pausedUntil}` : ''}\n`);
      if (l.reply) process.stdout.write(`      ${l.reply}\n`);
    }
    const last = p.history.at(-1);
    if (last) process.stdout.write(`    last action: ${last.action} (${last.lanes?.join(', ') ?? 'all lanes'}) at ${last.at}${last.reply ? `: ${last.reply}` : ''}\n`);
  }
  for (const s of data.suspended) process.stdout.write(`${s.domain}  suspended by operator ${s.until === 'until resumed' ? 'until resumed' : `until ${s.until}`}: ${s.reason}\n`);
  if (data.paths.length === 0 && data.suspended.length === 0) process.stdout.write('no egress paths yet\n');
}
