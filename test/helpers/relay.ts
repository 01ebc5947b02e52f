// Starts a relay node in-process for a test: temporary spool, ephemeral ports, events to a file
// that the test can read, and whatever config the test adds (YAML text, like an operator's file).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRelayConfig, type ConfigOverrides } from '../../src/config/load.ts';
import { EventLog } from '../../src/relay/log.ts';
import { startRelay, type RelayNode } from '../../src/relay/node.ts';

export interface TestRelay extends RelayNode {
  dir: string;
  smtpPort: number;
  httpUrl: string;
  events(): Record<string, unknown>[];
}

export async function startTestRelay(yaml = '', overrides: ConfigOverrides = {}, dir = mkdtempSync(join(tmpdir(), 'mailops-relay-'))): Promise<TestRelay> {
  const file = join(dir, 'relay.yaml');
  writeFileSync(file, yaml);
  const config = loadRelayConfig(file, { smtp: '127.0.0.1:0', http: '127.0.0.1:0', spool: join(dir, 'spool'), ...overrides });
  const log = new EventLog(join(dir, 'events.log'));
  const seen: Record<string, unknown>[] = [];
  log.subscribe((event) => seen.push(event));
  const node = await startRelay(config, { log });
  return Object.assign(node, {
    dir,
    smtpPort: node.smtpAddresses[0].port,
    httpUrl: `http://127.0.0.1:${node.httpAddress.port}`,
    events: () => seen,
  });
}
