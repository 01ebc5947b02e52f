// Starts a relay node in-process for a test: temporary spool, ephemeral ports, events to a file
// that the test can read, and whatever config the test adds (YAML text, like an operator's file).
import { mkdtempSync, writeFileSync } from 'node:fs';
import nodemailer, { type SendMailOptions } from 'nodemailer';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRelayConfig, type ConfigOverrides } from '../../src/config/load.ts';
import { EventLog } from '../../src/relay/log.ts';
import { startRelay, type RelayNode, type RelayOptions } from '../../src/relay/node.ts';

/** Config for tests that wait for retries: short schedules everywhere. */
export const FAST_RETRY = `lanes:
  transactional: { retry: { initial: 200ms, max: 1s } }
  member: { retry: { initial: 200ms, max: 1s } }
  bulk: { retry: { initial: 200ms, max: 1s } }
delivery:
  unreachableBackoff: 300ms
  idleTimeout: 200ms
`;

/** One message submitted over SMTP (nodemailer), optionally with STARTTLS. */
export async function submit(port: number, mail: SendMailOptions, tls = false) {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: !tls, requireTLS: tls, tls: { rejectUnauthorized: false } });
  try {
    return await transport.sendMail(mail);
  } finally {
    transport.close();
  }
}

export interface TestRelay extends RelayNode {
  dir: string;
  smtpPort: number;
  httpUrl: string;
  events(): Record<string, unknown>[];
}

/** `options`: what a test hands the node besides its config (the inbound MX's scanners and clock). */
export async function startTestRelay(yaml = '', overrides: ConfigOverrides = {}, dir = mkdtempSync(join(tmpdir(), 'mailops-relay-')), options: Omit<RelayOptions, 'log'> = {}): Promise<TestRelay> {
  const file = join(dir, 'relay.yaml');
  writeFileSync(file, yaml);
  const config = loadRelayConfig(file, { smtp: '127.0.0.1:0', http: '127.0.0.1:0', spool: join(dir, 'spool'), ...overrides });
  const log = new EventLog(join(dir, 'events.log'));
  const seen: Record<string, unknown>[] = [];
  log.subscribe((event) => seen.push(event));
  const node = await startRelay(config, { ...options, log });
  return Object.assign(node, {
    dir,
    smtpPort: node.smtpAddresses[0].port,
    httpUrl: `http://127.0.0.1:${node.httpAddress.port}`,
    events: () => seen,
  });
}
