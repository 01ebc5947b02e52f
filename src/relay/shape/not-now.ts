// Replies that say "not now" about the connection or the sending rate, not about the message:
// too many connections from this address, too many messages in this session, sending too fast.
// Such a refusal is no verdict on the message: it goes back to the front of its ready queue for
// the next slot the path admits, instead of onto the lane's retry schedule (minutes). Real
// deferrals (mailbox full, greylisted, a per-recipient rate, any 4xx at the end of data) keep the
// schedule. May touch: nothing; a pure classification of reply text.

export type NotNow = 'connections' | 'session' | 'rate';

const CONNECTIONS = /too many (concurrent )?(smtp )?connections|maximum number of connections|\b4\.7\.652\b|connection (limit|count) (exceeded|reached)/i;
const SESSION = /too many messages in this (session|connection)|maximum number of messages per (session|connection)|messages per (session|connection) (exceeded|reached)/i;
const RATE = /\b4\.7\.28\b|\b4\.7\.650\b|\bTSS0\d\b|rate limit|reduce the sending rate|too many messages from|unusual rate|sending too fast/i;

/** Which kind of "not now" a 4xx reply is, or undefined when it is a real deferral (or not a 4xx). */
export function notNow(reply: string): NotNow | undefined {
  if (!/^4\d\d\b/.test(reply)) return undefined;
  if (/^4\d\d[ -]4\.2\.1\b/.test(reply)) return undefined; // Gmail's per-recipient rate: about the mailbox
  if (CONNECTIONS.test(reply)) return 'connections';
  if (SESSION.test(reply)) return 'session';
  if (RATE.test(reply)) return 'rate';
  return undefined;
}
