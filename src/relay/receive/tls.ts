// TLS material for STARTTLS: the configured key and certificate, or a self-signed pair made at
// first start and kept in the spool directory so that clients see the same certificate after
// restarts.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../../config/errors.ts';
import type { RelayConfig } from '../../config/types.ts';

export interface TlsMaterial { key: Buffer; cert: Buffer; selfSigned: boolean }

function readPem(path: string, key: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(`${key}: cannot read ${JSON.stringify(path)} (${(err as Error).message})`);
  }
}

export async function tlsMaterial(config: RelayConfig): Promise<TlsMaterial> {
  const { key, cert } = config.smtp.tls;
  if (key && cert) return { key: readPem(key, 'smtp.tls.key'), cert: readPem(cert, 'smtp.tls.cert'), selfSigned: false };
  const dir = join(config.spool.dir, 'tls');
  const keyFile = join(dir, 'self-signed.key.pem');
  const certFile = join(dir, 'self-signed.cert.pem');
  if (!existsSync(keyFile) || !existsSync(certFile)) {
    const notAfter = new Date();
    notAfter.setFullYear(notAfter.getFullYear() + 10);
    const { generate } = await import('selfsigned'); // only needed once, at the first start
    const pems = await generate([{ name: 'commonName', value: config.smtp.hostname }], {
      keySize: 2048, algorithm: 'sha256', notAfterDate: notAfter,
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: config.smtp.hostname }] }],
    });
    mkdirSync(dir, { recursive: true });
    writeFileSync(keyFile, pems.private, { mode: 0o600 });
    writeFileSync(certFile, pems.cert);
  }
  return { key: readFileSync(keyFile), cert: readFileSync(certFile), selfSigned: true };
}
