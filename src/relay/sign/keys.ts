// DKIM keys from the config, loaded and checked once at start: a key that cannot be read, is not
// a private key, or does not fit its algorithm stops the start with an error naming the entry
// (exit 2), so a node never runs that would send unsigned mail for a domain meant to be signed.
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../../config/errors.ts';
import type { DkimAlgorithm, DkimKeyConfig } from '../../config/sending-types.ts';

export interface SigningKey { domain: string; selector: string; algorithm: DkimAlgorithm; key: KeyObject }

export function loadKey(entry: DkimKeyConfig, where: string): SigningKey {
  let pem: Buffer;
  try {
    pem = readFileSync(entry.privateKey);
  } catch (err) {
    throw new ConfigError(`${where}.privateKey: cannot read ${JSON.stringify(entry.privateKey)} (${(err as Error).message})`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new ConfigError(`${where}.privateKey: ${JSON.stringify(entry.privateKey)} is not a PEM private key (${(err as Error).message})`);
  }
  const type = entry.algorithm === 'rsa-sha256' ? 'rsa' : 'ed25519';
  if (key.asymmetricKeyType !== type) {
    throw new ConfigError(`${where}.privateKey: ${JSON.stringify(entry.privateKey)} is a ${key.asymmetricKeyType} key, but algorithm is ${entry.algorithm} (needs a ${type} key)`);
  }
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (type === 'rsa' && bits < 1024) {
    throw new ConfigError(`${where}.privateKey: ${JSON.stringify(entry.privateKey)} is a ${bits}-bit RSA key; DKIM needs at least 1024 bits (RFC 8301), 2048 recommended`);
  }
  return { domain: entry.domain, selector: entry.selector, algorithm: entry.algorithm, key };
}

/** Keys by signing domain; several keys for one domain make several signatures (RSA + Ed25519). */
export class KeyTable {
  private readonly byDomain = new Map<string, SigningKey[]>();

  constructor(entries: DkimKeyConfig[]) {
    entries.forEach((entry, i) => {
      const key = loadKey(entry, `dkim[${i}]`);
      const list = this.byDomain.get(key.domain) ?? [];
      if (list.some((k) => k.selector === key.selector)) throw new ConfigError(`dkim[${i}]: selector ${key.selector} is configured twice for ${key.domain}`);
      list.push(key);
      this.byDomain.set(key.domain, list);
    });
  }

  get size(): number {
    return this.byDomain.size;
  }

  /** Keys of the domain or of its nearest parent domain that has keys. */
  lookup(domain: string): SigningKey[] | undefined {
    let name = domain.toLowerCase().replace(/\.$/, '');
    for (;;) {
      const keys = this.byDomain.get(name);
      if (keys) return keys;
      const dot = name.indexOf('.');
      if (dot === -1) return undefined;
      name = name.slice(dot + 1);
    }
  }
}
