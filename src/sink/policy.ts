// The behaviours of the simulated providers, as decisions the SMTP session asks for: may this
// client connect, may it send this MAIL/RCPT/message, how long does the reply take. Decisions about
// recipients hash the seed with the address, so they do not depend on arrival order.
// Connections and rate windows count per profile and client address, and per server where the sink
// plays several mail servers of one profile (`--dns`: each hosting server has its own cap, as a
// real machine does); `server` is then the listener's local address, '' on the shared port.
// Pure bookkeeping: touches no sockets.
import { inList } from '../util/network.ts';
import { Greylist, clientNetwork } from './greylist.ts';
import { profileFor, type Phase, type Profile, type ProfileSet } from './profiles.ts';
import { drawLatency, mulberry32, unitHash } from './random.ts';
import type { ReplyTemplate } from './reply.ts';

/** A refusal: the reply to send and whether the connection ends after it. */
export interface Refusal { reply: ReplyTemplate; close: boolean; silent?: boolean }

export interface PolicyOptions {
  seed: number;
  /** Replaces every profile's greylisting delay (tests use about 1 s). */
  greylistDelayMs?: number;
  /** Forces one profile for all recipients. */
  profile?: string;
}

interface Window { start: number; count: number }

/** What connections and rates are counted by: profile, server (may be ''), client address. */
function counterKey(profile: Profile, server: string, ip: string): string {
  return server === '' ? `${profile.name}\0${ip}` : `${profile.name}\0${server}\0${ip}`;
}

export class Policy {
  readonly set: ProfileSet;
  readonly forced: Profile | undefined;
  private readonly seed: number;
  private readonly greylistDelayMs: number | undefined;
  private readonly random: () => number;
  private readonly connections = new Map<string, number>();
  private readonly windows = new Map<string, Window>();
  private readonly greylists = new Map<string, Greylist>();
  private readonly domainCache = new Map<string, Profile>();

  constructor(set: ProfileSet, options: PolicyOptions) {
    this.set = set;
    this.seed = options.seed >>> 0;
    this.greylistDelayMs = options.greylistDelayMs;
    this.random = mulberry32(this.seed ^ 0x5bd1e995);
    this.forced = options.profile === undefined ? undefined : set.profiles.get(options.profile);
  }

  profile(domain: string): Profile {
    if (this.forced) return this.forced;
    let p = this.domainCache.get(domain);
    if (!p) {
      p = profileFor(this.set, domain);
      if (this.domainCache.size >= 10_000) this.domainCache.clear();
      this.domainCache.set(domain, p);
    }
    return p;
  }

  delay(profile: Profile | undefined, phase: Phase): number {
    const latency = profile?.latency[phase];
    return latency ? drawLatency(latency, this.random) : 0;
  }

  /** Connection-level checks when a connection becomes a profile's: refusal at connect, connection cap. */
  bind(profile: Profile, ip: string, server = ''): Refusal | undefined {
    const refuse = profile.refuseConnect;
    if (refuse && !inList(refuse.allow, ip)) return { reply: refuse.reply, close: true };
    const cap = profile.maxConnections;
    const key = counterKey(profile, server, ip);
    const open = this.connections.get(key) ?? 0;
    if (cap && open >= cap.limit) return { reply: cap.reply, close: true };
    this.connections.set(key, open + 1);
    return undefined;
  }

  unbind(profile: Profile, ip: string, server = ''): void {
    const key = counterKey(profile, server, ip);
    const open = (this.connections.get(key) ?? 1) - 1;
    if (open > 0) this.connections.set(key, open);
    else this.connections.delete(key);
  }

  /** Per-connection message cap, checked at MAIL FROM. */
  messageCap(profile: Profile, messagesSent: number): Refusal | undefined {
    const cap = profile.maxMessagesPerConnection;
    if (!cap || messagesSent < cap.limit) return undefined;
    return cap.action === 'close' ? { reply: cap.reply!, close: true, silent: true } : { reply: cap.reply!, close: true };
  }

  /** Rate throttling per profile (and server) and client address, in fixed windows. */
  rate(profile: Profile, ip: string, phase: 'mail' | 'rcpt' | 'dataEnd', now: number, server = ''): Refusal | undefined {
    const rate = profile.rate;
    if (!rate || rate.phase !== phase) return undefined;
    const w = this.windows.get(counterKey(profile, server, ip));
    if (!w || now - w.start >= rate.windowMs || w.count < rate.messages) return undefined;
    return { reply: rate.reply, close: rate.reply.code === 421 };
  }

  /** Counts an accepted message against the rate windows of the recipients' profiles. */
  accepted(profiles: Profile[], ip: string, now: number, server = ''): void {
    for (let i = 0; i < profiles.length; i++) {
      const profile = profiles[i];
      if (!profile.rate || profiles.indexOf(profile) !== i) continue;
      const key = counterKey(profile, server, ip);
      let w = this.windows.get(key);
      if (!w || now - w.start >= profile.rate.windowMs) {
        if (!w && this.windows.size >= 100_000) this.windows.clear();
        w = { start: now, count: 0 };
        this.windows.set(key, w);
      }
      w.count++;
    }
  }

  /** Recipient checks: TLS, unknown user, mailbox full, greylisting. */
  recipient(profile: Profile, address: string, sender: string, ip: string, secure: boolean, now: number): Refusal | undefined {
    if (profile.tlsRequired && !secure) return { reply: profile.tlsRequired.reply, close: false };
    const at = address.lastIndexOf('@');
    const unknown = profile.unknownUsers;
    if (unknown) {
      if (unknown.prefix !== undefined && address.slice(0, at).toLowerCase().startsWith(unknown.prefix)) return { reply: unknown.reply, close: false };
      if (unknown.share > 0 && unitHash(this.seed, 'unknown', address.toLowerCase()) < unknown.share) return { reply: unknown.reply, close: false };
    }
    const full = profile.mailboxFull;
    if (full && full.share > 0 && unitHash(this.seed, 'full', address.toLowerCase()) < full.share) return { reply: full.reply, close: false };
    const grey = profile.greylist;
    if (grey) {
      let list = this.greylists.get(profile.name);
      if (!list) this.greylists.set(profile.name, (list = new Greylist()));
      const key = `${clientNetwork(ip)}\0${sender.toLowerCase()}\0${address.toLowerCase()}`;
      if (!list.check(key, now, this.greylistDelayMs ?? grey.delayMs, grey.windowMs, grey.maxEntries)) return { reply: grey.reply, close: false };
    }
    return undefined;
  }

  /** Forgets greylisting triplets and rate windows (connection counts stay: they are live). */
  clearState(): void {
    this.windows.clear();
    this.greylists.clear();
  }
}

