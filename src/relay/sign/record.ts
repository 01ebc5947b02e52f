// DKIM public key records (RFC 6376 §3.6.1; Ed25519 per RFC 8463: the raw 32-byte key) and their
// zone-file form: TXT character-strings hold at most 255 bytes, so a 2048-bit RSA record is split.
import type { KeyObject } from 'node:crypto';

export function dkimRecord(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  if (publicKey.asymmetricKeyType === 'ed25519') return `v=DKIM1; k=ed25519; p=${der.subarray(der.length - 32).toString('base64')}`;
  if (publicKey.asymmetricKeyType === 'rsa') return `v=DKIM1; k=rsa; p=${der.toString('base64')}`;
  throw new Error(`no DKIM record for a ${publicKey.asymmetricKeyType} key`);
}

export function split255(value: string): string[] {
  const parts: string[] = [];
  for (let i = 0; i < value.length; i += 255) parts.push(value.slice(i, i + 255));
  return parts;
}

/** `NAME. IN TXT ( "..." "..." )`, ready to paste into a zone file. */
export function zoneLine(name: string, value: string): string {
  const parts = split255(value).map((p) => `"${p}"`);
  return parts.length === 1 ? `${name}. IN TXT ${parts[0]}` : `${name}. IN TXT (\n  ${parts.join('\n  ')} )`;
}
