// Types for the mailauth internals the signer builds on (they ship without declarations).
declare module 'mailauth/lib/tools.js' {
  export interface ParsedHeader { key: string; casedKey: string; line: Buffer }
  export interface SigningHeaderLines { keys: string; headers: ParsedHeader[] }
  export function parseHeaders(buf: Buffer): { parsed: ParsedHeader[]; original: Buffer };
  export function getSigningHeaderLines(parsed: ParsedHeader[], fieldNames: string): SigningHeaderLines;
  export function formatSignatureHeaderLine(type: 'DKIM', values: Record<string, unknown>, folded: boolean): string;
}

declare module 'mailauth/lib/dkim/header/relaxed.js' {
  import type { SigningHeaderLines } from 'mailauth/lib/tools.js';
  export function relaxedHeaders(type: 'DKIM', lines: SigningHeaderLines, options: Record<string, unknown>):
    { canonicalizedHeader: Buffer; signatureHeaderLine: string; dkimHeaderOpts: Record<string, unknown> };
}

declare module 'mailauth/lib/dkim/body/index.js' {
  export function dkimBody(canonicalization: string, hashAlgo: string, maxBodyLength: number | false): { update(chunk: Buffer): void; digest(encoding: 'base64'): string };
}
