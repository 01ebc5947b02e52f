// The checklist of ../shared/reference/audit-checks.md: every check id with its group, source and
// the profiles whose verdict it counts for. Profiles come from the source letters (G Y M C);
// a check backed only by an RFC counts for every profile, because breaking the RFC breaks the
// mechanism the providers require. Info checks never change a verdict.
import type { Profile } from './types.ts';

export type Group = 'SPF' | 'DKIM' | 'DMARC' | 'Sending IPs and HELO' | 'Replies and bounces' | 'Message' | 'Transport and brand' | 'Reputation';

export interface CheckInfo { group: Group; source: string; profiles: readonly Profile[] }

const ALL: Profile[] = ['csa', 'gmail', 'yahoo', 'microsoft'];
const NONE: Profile[] = [];

export const CATALOG: Record<string, CheckInfo> = {
  'spf-present': { group: 'SPF', source: 'Gmail, Yahoo, Microsoft, CSA; RFC 7208', profiles: ALL },
  'spf-multiple': { group: 'SPF', source: 'RFC 7208 §4.5', profiles: ALL },
  'spf-syntax': { group: 'SPF', source: 'RFC 7208 §4.6', profiles: ALL },
  'spf-lookups': { group: 'SPF', source: 'RFC 7208 §4.6.4; Microsoft', profiles: ALL },
  'spf-void': { group: 'SPF', source: 'RFC 7208 §4.6.4', profiles: ALL },
  'spf-all': { group: 'SPF', source: 'RFC 7208 §5.1', profiles: ALL },
  'spf-ptr': { group: 'SPF', source: 'RFC 7208 §5.5', profiles: ALL },
  'spf-pass-ips': { group: 'SPF', source: 'Gmail, Microsoft', profiles: ['gmail', 'microsoft'] },
  'spf-helo': { group: 'SPF', source: 'RFC 7208 §2.3', profiles: NONE },
  'dkim-key': { group: 'DKIM', source: 'Gmail, Yahoo, Microsoft, CSA; RFC 6376 §3.6.1', profiles: ALL },
  'dkim-verify': { group: 'DKIM', source: 'Gmail, Yahoo, Microsoft, CSA', profiles: ALL },
  'dkim-keysize': { group: 'DKIM', source: 'Gmail, Yahoo; RFC 8301 §3.2', profiles: ['gmail', 'yahoo'] },
  'dkim-sha1': { group: 'DKIM', source: 'RFC 8301 §3.1', profiles: ALL },
  'dkim-testing': { group: 'DKIM', source: 'RFC 6376 §3.6.1', profiles: ALL },
  'dkim-headers': { group: 'DKIM', source: 'RFC 8058 §4', profiles: ALL },
  'dkim-ltag': { group: 'DKIM', source: 'RFC 6376 §8.2', profiles: ALL },
  'dmarc-present': { group: 'DMARC', source: 'Gmail, Yahoo, Microsoft', profiles: ['gmail', 'yahoo', 'microsoft'] },
  'dmarc-multiple': { group: 'DMARC', source: 'RFC 7489 §6.6.3', profiles: ALL },
  'dmarc-syntax': { group: 'DMARC', source: 'RFC 7489 §6.3; DMARCbis', profiles: ALL },
  'dmarc-policy': { group: 'DMARC', source: 'Gmail, Yahoo, Microsoft', profiles: ['gmail', 'yahoo', 'microsoft'] },
  'dmarc-legacy': { group: 'DMARC', source: 'DMARCbis (pct, rf, ri removed)', profiles: NONE },
  'dmarc-rua': { group: 'DMARC', source: 'Gmail, Yahoo', profiles: ['gmail', 'yahoo'] },
  'dmarc-rua-auth': { group: 'DMARC', source: 'RFC 7489 §7.1', profiles: ALL },
  'dmarc-aligned': { group: 'DMARC', source: 'Gmail, Yahoo, Microsoft', profiles: ['gmail', 'yahoo', 'microsoft'] },
  'ip-ptr': { group: 'Sending IPs and HELO', source: 'Gmail, Yahoo, Microsoft, CSA', profiles: ALL },
  'ip-fcrdns': { group: 'Sending IPs and HELO', source: 'Gmail, Yahoo, CSA', profiles: ['gmail', 'yahoo', 'csa'] },
  'ip-ptr-generic': { group: 'Sending IPs and HELO', source: 'Yahoo; CSA 2.11; Microsoft', profiles: ['yahoo', 'csa', 'microsoft'] },
  'helo-fqdn': { group: 'Sending IPs and HELO', source: 'RFC 5321 §4.1.1.1', profiles: ALL },
  'mx-reachable': { group: 'Replies and bounces', source: 'Microsoft, CSA; RFC 7505', profiles: ['microsoft', 'csa'] },
  'role-addresses': { group: 'Replies and bounces', source: 'RFC 5321 §4.5.1; RFC 2142', profiles: ALL },
  'unsub-header': { group: 'Message', source: 'Gmail, CSA (Yahoo accepts mailto); RFC 2369', profiles: ['gmail', 'csa'] },
  'unsub-post': { group: 'Message', source: 'Gmail, CSA; RFC 8058', profiles: ['gmail', 'csa'] },
  'unsub-body': { group: 'Message', source: 'Gmail, Yahoo, Microsoft, CSA', profiles: ALL },
  'msg-format': { group: 'Message', source: 'Gmail, Yahoo; RFC 5322 §3.6', profiles: ['gmail', 'yahoo'] },
  'fbl': { group: 'Message', source: 'Yahoo; RFC 9477', profiles: NONE },
  'csa-header': { group: 'Message', source: 'CSA (practice)', profiles: NONE },
  'tls-outbound': { group: 'Transport and brand', source: 'Gmail', profiles: ['gmail'] },
  'mta-sts': { group: 'Transport and brand', source: 'RFC 8461', profiles: NONE },
  'tls-rpt': { group: 'Transport and brand', source: 'RFC 8460', profiles: NONE },
  'dane': { group: 'Transport and brand', source: 'RFC 7672', profiles: NONE },
  'bimi': { group: 'Transport and brand', source: 'BIMI draft', profiles: NONE },
  'ip-dnsbl': { group: 'Reputation', source: 'Gmail, CSA', profiles: ['gmail', 'csa'] },
  'spam-rate': { group: 'Reputation', source: 'Gmail, Yahoo; CSA 2.22', profiles: NONE },
};

export const GROUP_ORDER: Group[] = ['SPF', 'DKIM', 'DMARC', 'Sending IPs and HELO', 'Replies and bounces', 'Message', 'Transport and brand', 'Reputation'];
export const CHECK_ORDER = Object.keys(CATALOG);
