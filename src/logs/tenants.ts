// Tenants: whose a message is (for the delivery logs), and whose a read token is. A message is a
// tenant's by, in this order: its authenticated SMTP user, the tenant header its generator set
// (log.tenantHeader, removed before delivery; a name no tenant has is refused, 550 5.7.0, as an
// unknown lane is, so that a misconfigured generator notices at once), or its envelope sender's
// domain or a parent of it. The tables are built once from the config; a lookup is a few map
// reads. Tokens are kept as SHA-256 digests and looked up by digest, so that finding one takes
// the same time whatever its first characters.
// May touch: nothing.
import { createHash } from 'node:crypto';
import type { TenantConfig } from '../config/logs.ts';
import { smtpError } from '../relay/receive/reply.ts';

export interface MessageOrigin { sender: string; user?: string; header?: string }

function digest(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export class Tenants {
  readonly names: string[];
  private readonly byUser = new Map<string, string>();
  private readonly byDomain = new Map<string, string>();
  private readonly byToken = new Map<string, string>();

  constructor(tenants: TenantConfig[]) {
    this.names = tenants.map((t) => t.name);
    for (const t of tenants) {
      for (const user of t.users) this.byUser.set(user, t.name);
      for (const domain of t.senderDomains) this.byDomain.set(domain, t.name);
      this.byToken.set(digest(t.token), t.name);
    }
  }

  get size(): number {
    return this.names.length;
  }

  /** The tenant of a message, or undefined; a header naming no tenant is an SMTP refusal. */
  of(origin: MessageOrigin): string | undefined {
    if (this.names.length === 0) return undefined;
    const byUser = origin.user === undefined ? undefined : this.byUser.get(origin.user);
    if (byUser) return byUser;
    if (origin.header !== undefined) {
      const name = origin.header.trim().toLowerCase();
      if (this.names.includes(name)) return name;
      throw smtpError(550, '5.7.0', `Unknown tenant ${JSON.stringify(origin.header.trim())} in the tenant header`);
    }
    const at = origin.sender.lastIndexOf('@');
    if (at < 0) return undefined;
    // the domain, then each parent: news.alpha.example → alpha.example → example
    let domain = origin.sender.slice(at + 1).toLowerCase();
    for (;;) {
      const found = this.byDomain.get(domain);
      if (found) return found;
      const dot = domain.indexOf('.');
      if (dot < 0) return undefined;
      domain = domain.slice(dot + 1);
    }
  }

  /** The tenant whose token this is, or undefined. */
  byBearer(token: string): string | undefined {
    return token ? this.byToken.get(digest(token)) : undefined;
  }
}
