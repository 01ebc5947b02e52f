// The loopback DNS server tests start for real DNS: the one `mailops sink --dns` runs
// (src/util/dns-server.ts), re-exported here so that tests keep importing it from their helpers.
export { normalizeName, reverseName, startDnsServer } from '../../src/util/dns-server.ts';
export type { DnsServer, DnsServerOptions, RecordSet, TlsaRecord } from '../../src/util/dns-server.ts';
