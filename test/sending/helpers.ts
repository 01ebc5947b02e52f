// Shared pieces of the sending-quality tests: DKIM test keys with their DNS records, both
// verifiers (mailauth and Debian's python3-dkim, fed the record directly: no network), a receiver
// that records per-connection facts and answers as the test says, and small waiting helpers.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dkimVerify } from 'mailauth';
import { dkimRecord } from '../../src/relay/sign/record.ts';

export interface TestKey { pem: string; file: string; record: string; publicKey: KeyObject }

export function makeKey(dir: string, name: string, type: 'rsa' | 'ed25519', bits = 2048): TestKey {
  const pair = type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: bits }) : generateKeyPairSync('ed25519');
  const pem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const file = join(dir, `${name}.pem`);
  writeFileSync(file, pem, { mode: 0o600 });
  return { pem, file, record: dkimRecord(pair.publicKey), publicKey: pair.publicKey };
}

/** mailauth's verdict per signature, the key records given by name ("s1._domainkey.example.test"). */
export async function mailauthVerify(message: Buffer | string, records: Record<string, string>): Promise<{ result: string; domain: string; selector: string; algorithm: string }[]> {
  const resolver = async (name: string, type: string) => {
    const record = type === 'TXT' ? records[name.toLowerCase()] : undefined;
    if (!record) throw Object.assign(new Error(`queryTxt ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
    return [[record]];
  };
  const out = await dkimVerify(Buffer.from(message), { resolver } as Parameters<typeof dkimVerify>[1]);
  return out.results.map((r: any) => ({ result: r.status?.result, domain: r.signingDomain, selector: r.selector, algorithm: r.algo }));
}

/** python3-dkim's verdict for every signature of the message (index 0, 1, ...). */
export function pythonVerify(message: Buffer | string, records: Record<string, string>): Promise<boolean[]> {
  const script = `
import dkim, json, sys
records = json.loads(sys.argv[1])
msg = sys.stdin.buffer.read()
def dnsfunc(name, timeout=5):
    return records.get(name.decode().rstrip('.').lower(), '').encode()
d = dkim.DKIM(msg)
n = len([h for h in d.headers if h[0].lower() == b'dkim-signature'])
print(json.dumps([bool(dkim.DKIM(msg).verify(idx=i, dnsfunc=dnsfunc)) for i in range(n)]))
`;
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/python3', ['-c', script, JSON.stringify(records)]);
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`python3-dkim exited ${code}: ${err}`))));
    child.stdin.end(message);
  });
}

export { startReceiver, type Arrival, type Session } from '../helpers/receiver.ts';
export { until } from '../helpers/wait.ts';
export { submit, FAST_RETRY as FAST } from '../helpers/relay.ts';
