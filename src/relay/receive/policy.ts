// Who may relay, and which addresses are acceptable. The relay has no local domains: every
// recipient is relayed, so a client outside smtp.relayNetworks that has not authenticated is
// refused at RCPT whatever the address looks like. Addresses with routing tricks (source routes,
// %-hack, bang paths, quoted @, address literals) are refused for everyone.
import { smtpError } from './reply.ts';

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/i;

export function validDomain(domain: string): boolean {
  if (domain.length === 0 || domain.length > 253 || !domain.includes('.')) return false;
  return domain.split('.').every((label) => LABEL.test(label) || /^xn--[a-z0-9-]+$/i.test(label));
}

/** Throws a 553 for an address the relay will not route; returns the lower-cased domain. */
export function checkRecipient(address: string): string {
  const at = address.lastIndexOf('@');
  const local = address.slice(0, at);
  const domain = address.slice(at + 1).toLowerCase();
  if (at <= 0 || /[@%!:,"\\\s<>]/.test(local) || local.length > 64 || !validDomain(domain)) {
    throw smtpError(553, '5.1.3', `Recipient address <${address}> is not a routable address`);
  }
  return domain;
}

export const RELAY_DENIED = () => smtpError(550, '5.7.1', 'Relaying denied: authenticate or connect from a relay network');
