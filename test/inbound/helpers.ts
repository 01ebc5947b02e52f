// An inbound MX under test: a loopback DNS server (the simulated internet's SPF, DKIM, DMARC and
// DNSBL records), a mailbox server (a real SMTP receiver) and a relay whose inbound listener
// receives for mx.test and delivers there. Tests add the inbound keys they exercise; by default
// the greeting wait and greylisting are off so that each test sees only its own defence.
import type { DnsServer, RecordSet } from '../helpers/dns-server.ts';
import { startDnsServer } from '../helpers/dns-server.ts';
import { startReceiver, type Receiver, type ReceiverOptions } from '../helpers/receiver.ts';
import { startTestRelay, type TestRelay } from '../helpers/relay.ts';
import { RawSmtp } from '../helpers/smtp-client.ts';
import type { RelayOptions } from '../../src/relay/node.ts';

export interface Mx {
  relay: TestRelay;
  dns: DnsServer;
  mailbox: Receiver;
  /** The inbound listener's port. */
  port: number;
  stop(): Promise<void>;
}

export interface MxOptions {
  /** inbound keys, over this file's defaults (greeting wait and greylisting off, every address of mx.test valid). */
  inbound?: Record<string, unknown>;
  /** smtp keys besides the host name. */
  smtp?: Record<string, unknown>;
  /** Other top-level sections (cluster, lanes...). */
  extra?: Record<string, unknown>;
  zone?: Record<string, RecordSet>;
  mailbox?: ReceiverOptions;
  node?: Omit<RelayOptions, 'log'>;
}

export const LOCAL = 'mx.test';
export const HOSTNAME = `mx1.${LOCAL}`;

export async function startMx(options: MxOptions = {}): Promise<Mx> {
  const dns = await startDnsServer(options.zone ?? {});
  const mailbox = await startReceiver(options.mailbox);
  // JSON is YAML: the config file is written as an operator's would be read
  const doc = {
    smtp: { hostname: HOSTNAME, ...options.smtp },
    delivery: { dnsServers: [dns.address], idleTimeout: '200ms' },
    ...options.extra,
    inbound: {
      listen: '127.0.0.1:0',
      domains: [LOCAL],
      deliver: [{ domain: LOCAL, to: mailbox.address }],
      recipients: [`@${LOCAL}`],
      greeting: { delay: '0s' },
      greylist: { enabled: false },
      ...options.inbound,
    },
  };
  const relay = await startTestRelay(JSON.stringify(doc, null, 1), {}, undefined, options.node);
  return {
    relay, dns, mailbox, port: relay.inbound!.addresses[0].port,
    async stop() {
      await relay.stop();
      await mailbox.close();
      await dns.close();
    },
  };
}

/** A session that has read the greeting and said EHLO; `from`: the client address (any 127.x). */
export async function session(port: number, from = '127.0.0.1', helo = 'client.sender.test'): Promise<RawSmtp> {
  const client = await RawSmtp.open(port, '127.0.0.1', from);
  const greeting = await client.reply();
  if (!greeting.startsWith('220 ')) throw new Error(`no greeting: ${greeting}`);
  await client.command(`EHLO ${helo}`);
  return client;
}

/** MAIL, RCPT..., DATA and the message: every reply in order (stops after a refused DATA). */
export async function transaction(client: RawSmtp, from: string, to: string[], message: string | Buffer): Promise<string[]> {
  const replies = [await client.command(`MAIL FROM:<${from}>`)];
  for (const rcpt of to) replies.push(await client.command(`RCPT TO:<${rcpt}>`));
  const data = await client.command('DATA');
  replies.push(data);
  if (!data.startsWith('354')) return replies;
  client.send(Buffer.concat([Buffer.from(message), Buffer.from('.\r\n')]));
  replies.push(await client.reply());
  return replies;
}

export function message(from: string, to: string, subject = 'hello', extraHeaders = ''): string {
  return `From: <${from}>\r\nTo: <${to}>\r\nSubject: ${subject}\r\nDate: Mon, 30 Nov 2026 12:00:00 +0000\r\nMessage-ID: <${Math.random().toString(36).slice(2)}@sender.test>\r\n${extraHeaders}\r\nHello from the test.\r\n`;
}
