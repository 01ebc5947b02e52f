// DNS-only DKIM key audit per selector: what a receiver would find before verifying anything.
// mailauth verifies signatures but has no "look at this selector" check, so this is ours.
import { createPublicKey } from 'node:crypto';
import { quote, result } from './report.ts';
import { temp } from './resolver.ts';
import type { AuditResolver } from './resolver.ts';
import { parseTags } from './tags.ts';
import type { CheckResult } from './types.ts';

const IDS = ['dkim-key', 'dkim-keysize', 'dkim-sha1', 'dkim-testing'];

/** Bits of an RSA key (SPKI, or the PKCS#1 form some publish by mistake); ed25519 is 256. */
export function keyBits(p: string, k: string): { bits: number; type: string } | { error: string } {
  const der = Buffer.from(p.replace(/\s+/g, ''), 'base64');
  if (!der.length) return { error: 'p= is not base64' };
  if (k === 'ed25519') return der.length === 32 ? { bits: 256, type: 'ed25519' } : { error: `ed25519 key is ${der.length} bytes, expected 32` };
  for (const type of ['spki', 'pkcs1'] as const) {
    try {
      const key = createPublicKey({ key: der, format: 'der', type });
      return { bits: key.asymmetricKeyDetails?.modulusLength ?? 0, type: key.asymmetricKeyType ?? 'rsa' };
    } catch {
      // try the next encoding
    }
  }
  return { error: 'p= is not a valid RSA public key' };
}

export async function dkimKeyChecks(dns: AuditResolver, domain: string, selectors: string[]): Promise<CheckResult[]> {
  if (!selectors.length) return IDS.map((id) => result(id, 'skip', 'no DKIM selector given (--selector)'));
  return (await Promise.all(selectors.map((s) => selectorChecks(dns, domain, s)))).flat();
}

async function selectorChecks(dns: AuditResolver, domain: string, selector: string): Promise<CheckResult[]> {
  const name = `${selector}._domainkey.${domain}`;
  const txt = await dns.txt(name);
  const skipRest = (why: string) => IDS.slice(1).map((id) => result(id, 'skip', `${selector}: ${why}`));
  if (txt.status === 'temperror') return IDS.map((id) => result(id, 'temperror', `${selector}: ${temp(name, 'TXT', txt.code)}`));
  if (txt.status === 'none') return [result('dkim-key', 'fail', `${selector}: no key at ${name} (${txt.code})`), ...skipRest('no key')];
  const records = txt.records.map((s) => s.join(''));
  if (records.length > 1) return [result('dkim-key', 'fail', `${selector}: ${records.length} TXT records at ${name}, a verifier picks any: ${records.map((r) => quote(r, 40)).join(', ')}`), ...skipRest('ambiguous key')];

  const record = records[0];
  const { tags, order, errors } = parseTags(record);
  const v = tags.get('v');
  const p = tags.get('p');
  const k = (tags.get('k') ?? 'rsa').toLowerCase();
  const problems = [...errors];
  if (v !== undefined && (v !== 'DKIM1' || order[0] !== 'v')) problems.push(`v=${v} must be "DKIM1" and come first`);
  if (!['rsa', 'ed25519'].includes(k)) problems.push(`unknown key type k=${k}`);
  if (p === undefined) problems.push('no p= tag');
  const out: CheckResult[] = [];
  if (p === '') return [result('dkim-key', 'fail', `${selector}: key revoked (empty p=) at ${name}: ${quote(record)}`), ...skipRest('key revoked')];
  if (problems.length) return [result('dkim-key', 'fail', `${selector}: ${problems.join('; ')}: ${quote(record)}`), ...skipRest('key unusable')];

  const size = keyBits(p!, k);
  if ('error' in size) return [result('dkim-key', 'fail', `${selector}: ${size.error}: ${quote(record)}`), ...skipRest('key unusable')];
  out.push(result('dkim-key', 'pass', `${selector}: ${size.type} key at ${name}: ${quote(record)}`));

  if (size.type !== 'rsa') out.push(result('dkim-keysize', 'pass', `${selector}: ${size.type} key (${size.bits} bits)`));
  else if (size.bits < 1024) out.push(result('dkim-keysize', 'fail', `${selector}: RSA key of ${size.bits} bits, verifiers reject keys under 1024`));
  else if (size.bits < 2048) out.push(result('dkim-keysize', 'warn', `${selector}: RSA key of ${size.bits} bits, 2048 recommended`));
  else out.push(result('dkim-keysize', 'pass', `${selector}: RSA key of ${size.bits} bits`));

  const h = tags.get('h')?.split(':').map((x) => x.trim().toLowerCase()).filter(Boolean);
  if (h && !h.includes('sha256')) out.push(result('dkim-sha1', 'fail', `${selector}: key restricted to h=${tags.get('h')}, rsa-sha1 is not allowed (RFC 8301)`));
  else out.push(result('dkim-sha1', 'pass', `${selector}: ${h ? `h=${tags.get('h')}` : 'no h= restriction'}, sha256 allowed`));

  const flags = (tags.get('t') ?? '').split(':').map((x) => x.trim().toLowerCase());
  if (flags.includes('y')) out.push(result('dkim-testing', 'warn', `${selector}: t=y, verifiers may treat failures as unsigned (testing mode)`));
  else out.push(result('dkim-testing', 'pass', `${selector}: not in testing mode${tags.has('t') ? ` (t=${tags.get('t')})` : ''}`));
  return out;
}
