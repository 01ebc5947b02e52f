// Before the mail is even read: postscreen's ideas, run once per connection before the 220.
//  - Greeting wait and pregreet test: a client not yet known good waits inbound.greeting.delay
//    for the greeting; a real MTA waits for it (RFC 5321 allows it five minutes), a bot that
//    talks first (sends any byte before the 220) is refused with 554 5.5.1. A client that passed
//    is known good for inbound.greeting.ttl and is greeted at once from then on.
//  - DNSBL/DNSWL (dnsbl.ts), asked while the client waits: a score at or above
//    inbound.dnsbl.threshold is refused with 554 5.7.1 naming the lists; a score at or below
//    allowThreshold (a DNSWL listing) ends the wait at once and vouches for the client, which then
//    skips greylisting too.
// Known-good clients are remembered in memory (per node, bounded, oldest first out); the DNSBL
// scores are cached in dnsbl.ts. A full command line that arrives before the 220 is answered by
// smtp-server itself (421 "You talk too soon") and is counted here as a pregreet all the same.
// May touch: the 'data' events of the client's socket while it waits (it only listens); nothing
// else.
import type { Socket } from 'node:net';
import type { InboundConfig } from '../../config/inbound.ts';
import { smtpError, type SmtpReplyError } from '../receive/reply.ts';
import type { Dnsbl, DnsblScore } from './dnsbl.ts';

export type ScreenVerdict =
  | { admit: true; greeting: 'waited' | 'known' | 'vouched' | 'off'; vouched: boolean; score?: DnsblScore }
  | { admit: false; reason: 'pregreet' | 'dnsbl' | 'gone'; reply: SmtpReplyError; score?: DnsblScore };

/** What the screen watches of a connection: its socket, and the bytes it had received before the session began (a PROXY header). */
export interface ScreenedClient { ip: string; socket: Socket; bytesAtStart: number }

const MAX_KNOWN = 100_000;

export class ClientScreen {
  private readonly config: Pick<InboundConfig, 'greeting' | 'dnsbl'>;
  private readonly dnsbl: Dnsbl;
  private readonly now: () => number;
  /** Clients that passed the greeting wait, until when. */
  private readonly knownGood = new Map<string, number>();

  constructor(config: Pick<InboundConfig, 'greeting' | 'dnsbl'>, dnsbl: Dnsbl, now: () => number = Date.now) {
    this.config = config;
    this.dnsbl = dnsbl;
    this.now = now;
  }

  /** Whether the client passed the greeting wait within inbound.greeting.ttl. */
  known(ip: string): boolean {
    const until = this.knownGood.get(ip);
    if (until !== undefined && until <= this.now()) this.knownGood.delete(ip);
    return until !== undefined && until > this.now();
  }

  judge(client: ScreenedClient): Promise<ScreenVerdict> {
    const { ip, socket, bytesAtStart } = client;
    const { threshold, allowThreshold } = this.config.dnsbl;
    const delay = this.config.greeting.delay;
    const known = delay > 0 && this.known(ip);
    const lookup = this.dnsbl.enabled ? this.dnsbl.score(ip).score : undefined;
    const spoke = () => socket.bytesRead > bytesAtStart;
    const pregreet = (score?: DnsblScore): ScreenVerdict => ({
      admit: false, reason: 'pregreet', score, reply: smtpError(554, '5.5.1', `Protocol error: [${ip}] talked before the greeting`),
    });

    return new Promise<ScreenVerdict>((resolve) => {
      let settled = false;
      let waiting = delay > 0 && !known;
      let score: DnsblScore | undefined;
      let scored = !lookup;
      const finish = (verdict: ScreenVerdict) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.off('data', talked);
        socket.off('close', gone);
        resolve(verdict);
      };
      const decide = () => {
        if (settled) return;
        if (score && score.score >= threshold) {
          return finish({
            admit: false, reason: 'dnsbl', score,
            reply: smtpError(554, '5.7.1', `Service unavailable; client [${ip}] blocked using ${score.listedBy.join(', ')} (score ${score.score}, threshold ${threshold})`),
          });
        }
        const vouched = score !== undefined && score.score <= allowThreshold;
        if (waiting && !vouched) return; // the wait goes on; the timer decides
        if (!scored) return; // the greeting waits for the lists' answer
        if (delay > 0 && !known && !vouched) {
          if (spoke()) return finish(pregreet(score));
          this.remember(ip);
        }
        finish({ admit: true, greeting: vouched ? 'vouched' : known ? 'known' : delay > 0 ? 'waited' : 'off', vouched, score });
      };
      const talked = () => { if (waiting) finish(pregreet(score)); };
      // left before the greeting: nothing to greet, nothing learnt
      const gone = () => finish({ admit: false, reason: 'gone', score, reply: smtpError(421, '4.4.2', 'Connection closed before the greeting') });
      let timer: NodeJS.Timeout | undefined;
      if (waiting) {
        timer = setTimeout(() => { waiting = false; decide(); }, delay);
        if (spoke()) return finish(pregreet());
        socket.on('data', talked);
        socket.on('close', gone);
      }
      void lookup?.then((s) => { score = s; scored = true; decide(); });
      decide();
    });
  }

  private remember(ip: string): void {
    this.knownGood.delete(ip);
    this.knownGood.set(ip, this.now() + this.config.greeting.ttl);
    if (this.knownGood.size > MAX_KNOWN) this.knownGood.delete(this.knownGood.keys().next().value!);
  }
}
