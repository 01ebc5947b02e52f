// What every SMTP listener of a node does the same way, the relay's submission listener
// (receive/server.ts) and the inbound MX (inbound/listener.ts): smtp-server bound to each
// configured address behind the PROXY gate, and a DATA stream read into a message with the size
// and line-ending checks, counting the messages being received so that a closing listener lets
// them get their reply. What a message then becomes is the listener's business (`accept`).
// May touch: the servers it makes and the streams it is given.
import type { Socket } from 'node:net';
import { SMTPServer } from 'smtp-server';
import type { RelayConfig } from '../../config/types.ts';
import type { HostPort } from '../../util/units.ts';
import type { TlsMaterial } from './tls.ts';
import { dataRefusal, MessageCollector } from './message.ts';
import type { ProxyProtocolGate } from './proxy.ts';

type DataStream = NodeJS.ReadableStream & { sizeExceeded?: boolean };
type DataCallback = (err?: Error | null, message?: string) => void;

export class DataReception {
  /** Messages whose data is being received or whose reply is not given yet. */
  private inFlight = 0;
  private readonly maxSize: number;

  constructor(maxSize: number) {
    this.maxSize = maxSize;
  }

  /**
   * Reads the message of one DATA; a message that failed the checks is refused here, any other
   * goes to `accept`, whose answer (the 250's text, or an SMTP error) is the reply.
   */
  receive(stream: DataStream, callback: DataCallback, accept: (body: Buffer) => Promise<string>): void {
    const collector = new MessageCollector(this.maxSize);
    this.inFlight++;
    let counted = true;
    const release = () => {
      if (counted) this.inFlight--;
      counted = false;
    };
    const reply = (err: Error | null, message?: string) => {
      release();
      callback(err, message);
    };
    stream.on('error', release); // the client went away in the middle of DATA
    stream.on('data', (chunk: Buffer) => collector.push(chunk));
    stream.on('end', () => {
      const refusal = dataRefusal(collector, stream.sizeExceeded, this.maxSize);
      if (refusal) return reply(refusal);
      accept(collector.body()).then((text) => reply(null, text), (err: Error) => reply(err));
    });
  }

  /** Waits (at most `graceMs`) until every message being received has had its reply. */
  async settle(graceMs: number): Promise<void> {
    const deadline = Date.now() + graceMs;
    while (this.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * The smtp-server settings every listener shares: name, SIZE, STARTTLS, our own enhanced codes,
 * no DSN or REQUIRETLS, no reverse lookups (the session knows the address it needs). Admission
 * (admission.ts) decides who gets a slot and ends idle and slow sessions; the library's own limit
 * and idle timeout are only backstops behind it (its limit also counts connections still waiting
 * for admission, which must not crowd out a relay network client).
 */
export function sharedServerOptions(smtp: RelayConfig['smtp'], tls: TlsMaterial, banner: string) {
  return {
    name: smtp.hostname,
    banner,
    size: smtp.maxMessageSize,
    key: tls.key,
    cert: tls.cert,
    hideENHANCEDSTATUSCODES: false,
    hideDSN: true,
    hideREQUIRETLS: true,
    disableReverseLookup: true,
    maxClients: smtp.maxConnections * 2,
    maxRecipients: smtp.maxRecipients,
    socketTimeout: smtp.idleTimeout * 2,
    closeTimeout: 100, // a closing listener first waits for messages being received, then ends idle sessions with 421
    logger: false,
    // smtp-server's own MAIL FROM handler answers a turn of the event loop later (setImmediate):
    // on a busy loop that turn is a whole poll phase, paid by every message of every session, a
    // reminder's pipelined MAIL/RCPT/DATA included. The sender needs no check here.
    onMailFrom(_address: unknown, _session: unknown, callback: (err?: Error | null) => void) {
      callback();
    },
  };
}

/** One smtp-server per address, each behind the PROXY gate; resolves once all listen, with the ports they got. */
export async function listenAll(listen: HostPort[], options: ConstructorParameters<typeof SMTPServer>[0], gate: ProxyProtocolGate, onError: (err: Error) => void): Promise<{ servers: SMTPServer[]; addresses: HostPort[] }> {
  const servers: SMTPServer[] = [];
  const addresses: HostPort[] = [];
  for (const address of listen) {
    const server = new SMTPServer(options);
    server.on('error', onError);
    // replies are whole lines written once (replies.ts): Nagle's algorithm could only hold one
    // back behind the client's delayed ACK of the previous one
    server.server.on('connection', (socket: Socket) => socket.setNoDelay(true));
    gate.guard(server);
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.listen(address.port, address.host, () => {
        server.server.off('error', reject);
        resolve();
      });
    });
    const bound = server.server.address();
    addresses.push({ host: address.host, port: typeof bound === 'object' && bound ? bound.port : address.port });
    servers.push(server);
  }
  return { servers, addresses };
}
