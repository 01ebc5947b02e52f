// The dkim command's action: key generation, key file, record output.
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError } from '../config/errors.ts';
import { dkimRecord, zoneLine } from '../relay/sign/record.ts';

interface KeygenOptions { domain: string; selector: string; type: string; bits: number; out: string; force?: boolean; json?: boolean }

const LABELS = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i;

export async function keygen(options: KeygenOptions): Promise<void> {
  const domain = options.domain.toLowerCase().replace(/\.$/, '');
  if (!LABELS.test(domain) || !domain.includes('.')) throw new ConfigError(`--domain: ${JSON.stringify(options.domain)} is not a domain name`);
  if (!LABELS.test(options.selector)) throw new ConfigError(`--selector: ${JSON.stringify(options.selector)} is not a valid selector (DNS labels)`);
  if (options.type !== 'rsa' && options.type !== 'ed25519') throw new ConfigError(`--type: expected rsa or ed25519, got ${JSON.stringify(options.type)}`);
  if (options.type === 'rsa' && (options.bits < 1024 || options.bits > 8192)) throw new ConfigError(`--bits: expected 1024 to 8192 (2048 recommended), got ${options.bits}`);
  const name = `${options.selector}._domainkey.${domain}`;
  const path = resolve(join(options.out, `${name}.pem`));
  if (existsSync(path) && !options.force) throw new ConfigError(`--out: ${path} exists; use --force to replace it`);
  const pair = options.type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: options.bits }) : generateKeyPairSync('ed25519');
  try {
    mkdirSync(options.out, { recursive: true });
    writeFileSync(path, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: options.force ? 'w' : 'wx' });
    chmodSync(path, 0o600); // an overwritten file keeps its old mode otherwise
  } catch (err) {
    throw new ConfigError(`--out: cannot write ${path} (${(err as Error).message})`);
  }
  const value = dkimRecord(pair.publicKey);
  if (options.json) {
    process.stdout.write(JSON.stringify({ name, value, privateKeyPath: path }) + '\n');
    return;
  }
  process.stdout.write(`private key: ${path} (mode 0600)\nDNS record:\n${zoneLine(name, value)}\n`);
  process.stdout.write(`relay config:\n  dkim:\n    - { domain: ${domain}, selector: ${options.selector}, privateKey: ${path}, algorithm: ${options.type === 'rsa' ? 'rsa-sha256' : 'ed25519-sha256'} }\n`);
}
