// A small authoritative DNS server (UDP and TCP on one HOST:PORT) answering from an in-memory zone
// and, for names computed on the fly, from a lookup callback. `mailops sink --dns` serves the
// simulated internet with it; tests start one on loopback for real DNS (test/helpers/dns-server.ts
// re-exports this module). It touches only its own sockets: nothing is read from or written to disk.
//
// Zone keys are owner names, case-insensitive, with or without the trailing dot. Every name is
// authoritative: an unknown name answers NXDOMAIN, a known name without the asked type answers
// NOERROR with no answers (Node reports ENOTFOUND and ENODATA respectively).
//
// - PTR: key either the reverse name ("4.3.2.1.in-addr.arpa", nibble form for IPv6) or the
//   shorthand "ptr:1.2.3.4" / "ptr:2001:db8::1", which is translated to the reverse name.
// - Wildcards: a key "*.zone.example" answers names below zone.example that have no record of
//   their own (handy for DNSBL zones).
// - options.lookup(name): consulted for names the zone does not hold (exactly or by wildcard);
//   gets the normalized name (lower case, no trailing dot, reverse form for PTR names) and returns
//   the name's records, or undefined for NXDOMAIN.
// - CNAME: a query for another type answers the CNAME plus the target's records when the
//   target is known, as an authoritative server does.
// - TXT: each entry is one record; a string longer than 255 bytes is split into several
//   character-strings, an array gives the character-strings explicitly.
// - TLSA: { usage, selector, matchingType, certificate: hex string }.
// - options.servfail: names that answer SERVFAIL for every type (temperror tests).
// - options.delayMs: per-name delay before answering (timeout tests); other names answer at once.
// - options.ttl: TTL of every answer, seconds. Default 0, so that Node's resolver cache never hides
//   a later set() in a test; a long-running server gives a real TTL.
// - UDP answers that exceed the client's payload size (512, or its EDNS size) are sent truncated
//   (TC) so the client retries over TCP, like a real server.
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket, Packet, Question } from 'dns-packet';

export type TlsaRecord = { usage: number; selector: number; matchingType: number; certificate: string };
export type RecordSet = {
  A?: string[];
  AAAA?: string[];
  MX?: { priority: number; exchange: string }[];
  TXT?: (string | string[])[];
  PTR?: string[];
  CNAME?: string;
  NS?: string[];
  TLSA?: TlsaRecord[];
};

export interface DnsServer {
  host: string;
  port: number;
  /** "127.0.0.1:PORT" ("[::1]:PORT" for IPv6), ready for `Resolver#setServers([address])`. */
  address: string;
  close(): Promise<void>;
  /** Replaces the records of NAME; undefined removes the name (it then answers NXDOMAIN). */
  set(name: string, records: RecordSet | undefined): void;
  /** Number of queries answered so far (UDP and TCP). */
  queries: number;
}

export interface DnsServerOptions {
  /** Address to bind, default 127.0.0.1. */
  host?: string;
  /** Port for both UDP and TCP; 0 (default) picks one free for both. */
  port?: number;
  /** TTL of every answer, seconds (default 0). */
  ttl?: number;
  /** Records of names the zone does not hold, computed when asked (normalized name). */
  lookup?: (name: string) => RecordSet | undefined;
  servfail?: string[];
  delayMs?: Record<string, number>;
}

const NOERROR = 0;
const SERVFAIL = 2;
const NXDOMAIN = 3;
const NOTIMP = 4;
/** A TCP client that sends nothing for this long is disconnected (RFC 7766 suggests seconds). */
const TCP_IDLE_MS = 30_000;

/** Lower-case owner name without trailing dot; "ptr:IP" becomes the reverse name. */
export function normalizeName(name: string): string {
  const n = name.trim().toLowerCase().replace(/\.$/, '');
  return n.startsWith('ptr:') ? reverseName(n.slice(4)) : n;
}

/** The in-addr.arpa / ip6.arpa name of an IP address. */
export function reverseName(ip: string): string {
  if (net.isIPv4(ip)) return `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
  if (!net.isIPv6(ip)) throw new Error(`dns-server: not an IP address: ${JSON.stringify(ip)}`);
  return `${expandIPv6(ip).split('').reverse().join('.')}.ip6.arpa`;
}

function expandIPv6(ip: string): string {
  let text = ip;
  const v4 = text.match(/(\d+\.\d+\.\d+\.\d+)$/);
  if (v4) {
    const b = v4[1].split('.').map(Number);
    text = text.slice(0, -v4[1].length) + `${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.map((g) => g.padStart(4, '0')).join('');
}

/** Splits a TXT value into character-strings of at most 255 bytes. */
function txtStrings(value: string | string[]): Buffer[] {
  if (Array.isArray(value)) return value.map((s) => Buffer.from(s));
  const bytes = Buffer.from(value);
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 255) out.push(bytes.subarray(i, i + 255));
  return out.length ? out : [Buffer.alloc(0)];
}

function answersOf(name: string, type: string, set: RecordSet, ttl: number): Answer[] {
  const base = { name, ttl, class: 'IN' as const };
  switch (type) {
    case 'A': return (set.A ?? []).map((data) => ({ ...base, type: 'A', data }));
    case 'AAAA': return (set.AAAA ?? []).map((data) => ({ ...base, type: 'AAAA', data }));
    case 'NS': return (set.NS ?? []).map((data) => ({ ...base, type: 'NS', data }));
    case 'PTR': return (set.PTR ?? []).map((data) => ({ ...base, type: 'PTR', data }));
    case 'CNAME': return set.CNAME ? [{ ...base, type: 'CNAME', data: set.CNAME }] : [];
    case 'MX': return (set.MX ?? []).map((mx) => ({ ...base, type: 'MX', data: { preference: mx.priority, exchange: mx.exchange } }));
    case 'TXT': return (set.TXT ?? []).map((t) => ({ ...base, type: 'TXT', data: txtStrings(t) }));
    case 'TLSA': return (set.TLSA ?? []).map((t) => ({
      ...base, type: 'TLSA', data: { usage: t.usage, selector: t.selector, matchingType: t.matchingType, certificate: Buffer.from(t.certificate, 'hex') },
    }));
    default: return [];
  }
}

export async function startDnsServer(zone: Record<string, RecordSet>, options: DnsServerOptions = {}): Promise<DnsServer> {
  const records = new Map<string, RecordSet>();
  for (const [name, set] of Object.entries(zone)) records.set(normalizeName(name), set);
  const servfail = new Set((options.servfail ?? []).map(normalizeName));
  const delays = new Map(Object.entries(options.delayMs ?? {}).map(([n, ms]) => [normalizeName(n), ms]));
  const ttl = options.ttl ?? 0;
  const computed = options.lookup;
  const timers = new Set<NodeJS.Timeout>();
  const sockets = new Set<net.Socket>();
  let answered = 0;

  const lookup = (name: string): RecordSet | undefined => {
    const own = records.get(name);
    if (own) return own;
    // Wildcard: the closest enclosing "*.parent" that exists.
    const labels = name.split('.');
    for (let i = 1; i < labels.length; i++) {
      const wild = records.get(`*.${labels.slice(i).join('.')}`);
      if (wild) return wild;
    }
    return computed?.(name);
  };

  const answer = (query: DecodedPacket): Packet => {
    const question = query.questions?.[0] as Question | undefined;
    const reply = (rcode: number, answers: Answer[] = []): Packet => ({
      type: 'response', id: query.id,
      flags: dnsPacket.AUTHORITATIVE_ANSWER | (query.flags! & dnsPacket.RECURSION_DESIRED) | rcode,
      questions: query.questions, answers,
    });
    // Only standard queries (opcode 0): NOTIFY, UPDATE and the like are not implemented.
    if (!question || ((query.flags ?? 0) >> 11) & 0xf) return reply(NOTIMP);
    const name = normalizeName(question.name);
    if (servfail.has(name)) return reply(SERVFAIL);
    const set = lookup(name);
    if (!set) return reply(NXDOMAIN);
    if (set.CNAME && question.type !== 'CNAME') {
      // Chase CNAMEs (bounded, in case of loops).
      const chain: Answer[] = [];
      let owner = question.name;
      let current: RecordSet | undefined = set;
      for (let hops = 0; current?.CNAME && hops < 8; hops++) {
        chain.push(...answersOf(owner, 'CNAME', current, ttl));
        owner = current.CNAME;
        current = lookup(normalizeName(owner));
      }
      return reply(NOERROR, current ? [...chain, ...answersOf(owner, question.type, current, ttl)] : chain);
    }
    return reply(NOERROR, answersOf(question.name, question.type, set, ttl));
  };

  const respond = (message: Buffer, send: (reply: Buffer, query: DecodedPacket) => void): void => {
    let query: DecodedPacket;
    try {
      query = dnsPacket.decode(message);
    } catch {
      return; // Not DNS: drop it, as servers do.
    }
    if (query.type === 'response') return; // never answer answers (reflection loops)
    const delay = query.questions?.[0] ? delays.get(normalizeName(query.questions[0].name)) : undefined;
    const go = () => {
      let reply: Buffer;
      try {
        reply = dnsPacket.encode(answer(query));
      } catch {
        return; // a question that cannot be echoed back (malformed name): drop it
      }
      answered++;
      send(reply, query);
    };
    if (!delay) return go();
    const timer = setTimeout(() => {
      timers.delete(timer);
      go();
    }, delay);
    timers.add(timer);
  };

  const onUdp = (udp: dgram.Socket) => (msg: Buffer, rinfo: dgram.RemoteInfo) => {
    respond(msg, (reply, query) => {
      const opt = query.additionals?.find((a) => a.type === 'OPT') as { udpPayloadSize?: number } | undefined;
      const limit = Math.max(512, opt?.udpPayloadSize ?? 512);
      if (reply.length > limit) {
        // Too big for UDP: header + question with TC set, the client retries over TCP.
        const tc = dnsPacket.decode(reply);
        reply = dnsPacket.encode({ type: 'response', id: tc.id, flags: tc.flags! | dnsPacket.TRUNCATED_RESPONSE, questions: tc.questions, answers: [] });
      }
      udp.send(reply, rinfo.port, rinfo.address, () => {});
    });
  };

  const onTcp = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.setTimeout(TCP_IDLE_MS, () => socket.destroy());
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      // Each message is prefixed with its 16-bit length (RFC 1035 §4.2.2).
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const length = buffered.readUInt16BE(0);
        const message = buffered.subarray(2, 2 + length);
        buffered = buffered.subarray(2 + length);
        respond(message, (reply) => {
          if (socket.destroyed) return;
          const prefix = Buffer.alloc(2);
          prefix.writeUInt16BE(reply.length);
          socket.write(Buffer.concat([prefix, reply]));
        });
      }
    });
  };

  const host = options.host ?? '127.0.0.1';
  const { udp, tcp } = await listenPair(host, options.port ?? 0, onUdp, onTcp);
  const port = udp.address().port;

  const server: DnsServer = {
    host,
    port,
    address: net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`,
    get queries() {
      return answered;
    },
    set(name, set) {
      const key = normalizeName(name);
      if (set) records.set(key, set);
      else records.delete(key);
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      for (const socket of sockets) socket.destroy();
      await Promise.all([
        new Promise<void>((resolve) => udp.close(() => resolve())),
        new Promise<void>((resolve) => tcp.close(() => resolve())),
      ]);
    },
  };
  return server;
}

/**
 * Binds UDP then TCP on the same port number. With port 0 the ephemeral UDP port may already be
 * taken on TCP by another process, so that case retries with a new port.
 */
async function listenPair(
  host: string, port: number,
  onUdp: (udp: dgram.Socket) => (msg: Buffer, rinfo: dgram.RemoteInfo) => void,
  onTcp: (socket: net.Socket) => void,
): Promise<{ udp: dgram.Socket; tcp: net.Server }> {
  let lastError = '';
  for (let attempt = 0; attempt < 20; attempt++) {
    const udp = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    const bound = await new Promise<boolean>((resolve) => {
      udp.once('error', (err) => {
        lastError = err.message;
        resolve(false);
      });
      udp.bind(port, host, () => resolve(true));
    });
    if (!bound) {
      try {
        udp.close();
      } catch {
        // already closed by the failed bind
      }
      break;
    }
    udp.removeAllListeners('error');
    // A send error (e.g. an unreachable client) must not take the server down.
    udp.on('error', () => {});
    udp.on('message', onUdp(udp));
    const tcp = net.createServer(onTcp);
    const udpPort = udp.address().port;
    const ok = await new Promise<boolean>((resolve) => {
      tcp.once('error', (err) => {
        lastError = err.message;
        resolve(false);
      });
      tcp.listen(udpPort, host, () => resolve(true));
    });
    if (ok) return { udp, tcp };
    await new Promise<void>((resolve) => udp.close(() => resolve()));
    if (port !== 0) break;
  }
  throw new Error(`dns-server: could not listen on ${host}:${port} for both UDP and TCP${lastError ? ` (${lastError})` : ''}`);
}
