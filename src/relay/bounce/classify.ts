// Which kind of failure a reply describes. The enhanced status code decides when it is specific
// (RFC 3463: 5.1.1 is a bad mailbox whoever says it); generic codes (x.0.0, x.7.0, ...) and
// replies without one are matched against the texts providers and the relay itself use.
export const BOUNCE_CLASSES = ['bad-mailbox', 'mailbox-full', 'policy-block', 'throttled', 'dns-failure', 'tls-failure', 'timeout', 'other'] as const;
export type BounceClass = (typeof BOUNCE_CLASSES)[number];

const BY_CODE: [RegExp, BounceClass][] = [
  [/^[45]\.1\.(2|10)$/, 'dns-failure'], // no such domain, null MX: the domain, not the mailbox
  [/^[45]\.1\.[0136]$/, 'bad-mailbox'],
  [/^[45]\.2\.2$/, 'mailbox-full'],
  [/^4\.2\.1$/, 'throttled'], // Gmail: receiving at a rate that prevents more messages (per recipient)
  [/^5\.2\.1$/, 'bad-mailbox'],
  [/^[45]\.4\.3$/, 'dns-failure'],
  [/^[45]\.4\.[12]$/, 'timeout'],
  [/^[45]\.4\.7$/, 'timeout'],
  [/^[45]\.7\.(10|11)$/, 'tls-failure'],
  [/^4\.7\.(28|650|652)$/, 'throttled'],
  [/^[45]\.7\.([1-9]|1[2-9]|2\d|30|515)$/, 'policy-block'],
];

// Order matters: a provider's throttling text wins over words that also appear in blocks.
const BY_TEXT: [RegExp, BounceClass][] = [
  [/\bTSS0\d\b|too many (connections|messages)|rate limit|unusual rate|reduce the sending rate|temporarily (deferred|rate limited)|throttl/i, 'throttled'],
  [/user unknown|no such user|unknown (user|recipient)|does not exist|mailbox (unavailable|not found)|recipient (address )?rejected|invalid recipient|address rejected/i, 'bad-mailbox'],
  [/mailbox (is )?full|over ?quota|quota exceeded|insufficient storage/i, 'mailbox-full'],
  [/\bETLS\b|\bTLS\b|STARTTLS|certificate|handshake/i, 'tls-failure'],
  [/\bEDNS\b|ENOTFOUND|\bDNS\b|MX lookup|null MX|domain .* not found|no address for/i, 'dns-failure'],
  [/ETIMEDOUT|timed? ?out|timeout|ECONNREFUSED|ECONNRESET|connection (failed|refused|reset|closed)|ECONNECTION|ESOCKET/i, 'timeout'],
  [/spam|blocked|block ?list|blacklist|reputation|policy|DMARC|\bSPF\b|\bDKIM\b|NOWL|not allowed|denied/i, 'policy-block'],
];

/** The first enhanced status code in a reply ("550 5.1.1 ..." → "5.1.1"). */
export function enhancedCode(reply: string): string | undefined {
  return /^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})\b/.exec(reply)?.[1] ?? /\b([245]\.\d{1,3}\.\d{1,3})\b/.exec(reply.slice(0, 40))?.[1];
}

export function classifyReply(reply: string): BounceClass {
  const code = enhancedCode(reply);
  if (code) for (const [pattern, cls] of BY_CODE) if (pattern.test(code)) return cls;
  for (const [pattern, cls] of BY_TEXT) if (pattern.test(reply)) return cls;
  return 'other';
}
