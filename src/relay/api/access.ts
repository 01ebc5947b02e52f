// Who may use the HTTP API, and the local admin token that lets the relay's own user administer
// it on the defaults (no http.token, no --token), as root uses Postfix's postqueue.
//
// Changes (queue retry/delete, suppressions, suspensions, injection) need a bearer token: the
// configured `http.token`, or the local admin token. Reads that show addresses (queued messages,
// the event stream, the delivery logs, the suppression list) need a read token once `http.token`
// or a tenant (config `tenants`) is configured; with neither they stay open, as the default
// listener is loopback only. A read token is the operator's (http.token, the local admin token),
// which reads everything, or a tenant's, which reads that tenant's messages and records only
// (`readScope`: the API narrows every such read to it) and never the suppression list (shared by
// all tenants) nor changes anything. Other reads (health, metrics, queue counts, summary by
// domain, destinations) are open.
//
// The local admin token: at every start the relay makes a random token and writes it, with the
// URL of its HTTP API, to `<spool>/admin.token` (JSON, mode 0600, written to a new file and
// renamed into place); an orderly stop removes it. The spool directory is the relay user's, so
// only that user (and root) can read the token, and the file system is the access control.
// The CLI (`mailops queue|suppress|top`, src/cli/node-client.ts) reads it when no --token is
// given and it is pointed at the spool (--spool DIR, or the default spool when no --node is
// given), and sends it only to the node recorded beside it, an address of this machine: remote
// clients still need http.token, and a token left by a killed relay is refused after the restart.
// Why a token file and not a unix socket in the spool: the same listener and HTTP client serve
// both (fetch, and the dashboard's keep-alive GETs, speak TCP only), and a socket path is limited
// to 107 bytes, which a deep spool directory would exceed.
// May touch: the admin token file in the spool directory; nothing else there.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { ConfigError } from '../../config/errors.ts';
import type { HostPort } from '../../util/units.ts';
import type { Tenants } from '../../logs/tenants.ts';
import { HttpError } from './http.ts';

export const ADMIN_TOKEN_FILE = 'admin.token';

/** What the relay leaves in its spool for local administration. */
export interface LocalAdmin {
  /** The relay's HTTP API, e.g. http://127.0.0.1:8025: the one node the token may be sent to. */
  node: string;
  token: string;
}

export function adminTokenPath(spoolDir: string): string {
  return join(spoolDir, ADMIN_TOKEN_FILE);
}

export function newAdminToken(): string {
  return randomBytes(32).toString('hex');
}

/** The URL a local client reaches a listener at: a wildcard listener is reached on loopback. */
export function localNodeUrl({ host, port }: HostPort): string {
  const reachable = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}`;
}

/** Writes the admin token file (mode 0600): a fresh file renamed over the old one, never a wider mode. */
export function writeLocalAdmin(spoolDir: string, admin: LocalAdmin): void {
  const file = adminTokenPath(spoolDir);
  const fresh = `${file}.${process.pid}.new`;
  rmSync(fresh, { force: true });
  writeFileSync(fresh, JSON.stringify(admin) + '\n', { mode: 0o600, flag: 'wx' });
  renameSync(fresh, file);
}

/** Removes the admin token file if it still holds `token` (a later start may have replaced it). */
export function removeLocalAdmin(spoolDir: string, token: string): void {
  try {
    if (readLocalAdmin(spoolDir)?.token === token) rmSync(adminTokenPath(spoolDir), { force: true });
  } catch {
    // unreadable or malformed: not ours to remove
  }
}

/** The admin token file of a spool, or undefined when there is none; other trouble is a clear error. */
export function readLocalAdmin(spoolDir: string): LocalAdmin | undefined {
  const file = adminTokenPath(spoolDir);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    if (code === 'EACCES' || code === 'EPERM') throw new ConfigError(`${file}: permission denied: only the relay's user can read its admin token; run as that user, or give --token (the relay's http.token)`);
    throw new ConfigError(`${file}: cannot read it (${(err as Error).message})`);
  }
  let admin: Partial<LocalAdmin>;
  try {
    admin = JSON.parse(text);
  } catch {
    admin = {};
  }
  if (typeof admin.token !== 'string' || !/^[0-9a-f]{64}$/.test(admin.token) || typeof admin.node !== 'string' || !URL.canParse(admin.node)) {
    throw new ConfigError(`${file}: not a relay admin token file (expected {"node":"http://HOST:PORT","token":"<64 hex digits>"})`);
  }
  return { node: admin.node, token: admin.token };
}

/** Who reads: the operator (every tenant's data), or one tenant (its own only). */
export interface ReadScope { tenant?: string }

const OPERATOR: ReadScope = Object.freeze({});

function bearer(req: IncomingMessage): Buffer {
  return Buffer.from(/^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '');
}

function same(given: Buffer, token: Buffer): boolean {
  return given.length === token.length && timingSafeEqual(given, token);
}

export class ApiAccess {
  private readonly httpToken?: Buffer;
  private readonly adminToken: Buffer;
  private readonly adminFile: string;
  private readonly tenants?: Tenants;

  /** `httpToken`: the configured http.token, if any; `adminToken`: this start's local admin token, kept in `adminFile`; `tenants`: their read tokens. */
  constructor(options: { httpToken?: string; adminToken: string; adminFile: string; tenants?: Tenants }) {
    this.httpToken = options.httpToken ? Buffer.from(options.httpToken) : undefined;
    this.adminToken = Buffer.from(options.adminToken);
    this.adminFile = options.adminFile;
    this.tenants = options.tenants?.size ? options.tenants : undefined;
  }

  private isOperator(given: Buffer): boolean {
    return same(given, this.adminToken) || Boolean(this.httpToken && same(given, this.httpToken));
  }

  /** Reads that show addresses need a token once http.token or a tenant is configured. */
  private get readsNeedToken(): boolean {
    return Boolean(this.httpToken || this.tenants);
  }

  /** Changes: the bearer token must be http.token or the local admin token. */
  requireChange(req: IncomingMessage): void {
    const given = bearer(req);
    if (this.isOperator(given)) return;
    if (this.tenants?.byBearer(given.toString())) throw new HttpError(403, 'a tenant token reads its own records only; changes need the operator\'s token');
    if (!this.httpToken) {
      throw new HttpError(403, `this node has no http.token configured; changes through the API need the local admin token (${this.adminFile}, readable by the relay's user only)`);
    }
    throw new HttpError(401, 'missing or wrong bearer token');
  }

  /** Reads that show every tenant's addresses (the suppression list): the operator only, once reads need a token. */
  requireAddressRead(req: IncomingMessage): void {
    if (this.readScope(req).tenant !== undefined) throw new HttpError(403, 'a tenant token reads its own records only; this list is every tenant\'s');
  }

  /** Reads that show addresses, narrowed to what the token may see (401 without a read token once one is needed). */
  readScope(req: IncomingMessage): ReadScope {
    const given = bearer(req);
    if (this.isOperator(given)) return OPERATOR;
    const tenant = given.length ? this.tenants?.byBearer(given.toString()) : undefined;
    if (tenant) return { tenant };
    if (!this.readsNeedToken) return OPERATOR;
    throw new HttpError(401, 'missing or wrong bearer token');
  }
}
