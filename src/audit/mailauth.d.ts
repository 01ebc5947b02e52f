// Types for the mailauth internals the audit uses that ship without declarations.
declare module 'mailauth/lib/spf/syntax.js' {
  /** Returns a description of the first syntax error in the SPF terms, or false. */
  export function validateTerms(terms: string[]): string | false;
}

declare module 'mailauth/lib/dmarc/get-dmarc-record.js' {
  type Resolver = (name: string, type: string) => Promise<any>;
  type Lookup = (name: string) => Promise<Record<string, any> | false>;
  export function createRecordLookup(resolver: Resolver, opts?: { strict?: boolean }): Lookup;
  /** DMARC policy discovery with the DNS tree walk (RFC 9989 §4.10). */
  export function discoverPolicy(domain: string, lookup: Lookup): Promise<{ record: Record<string, any> | false; recordDomain: string | null; orgDomain: string | null }>;
  export function getOrgDomain(domain: string, lookup: Lookup): Promise<string>;
}
