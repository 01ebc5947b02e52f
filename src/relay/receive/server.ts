// The SMTP listeners: one smtp-server per configured address, sharing the access policy, limits
// and the intake. EHLO offers PIPELINING, SIZE, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES and
// STARTTLS; AUTH PLAIN/LOGIN only after STARTTLS.
import type { IntakePacer } from './pacing.ts';
import { timingSafeEqual } from 'node:crypto';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { formatHostPort, type HostPort } from '../../util/units.ts';
import { cidrList, inList, plainAddress } from '../../util/network.ts';
import { accept, type Intake } from './accept.ts';
import { MessageCollector } from './message.ts';
import { checkRecipient, ConnectionCounter, RELAY_DENIED } from './policy.ts';
import { smtpError } from './reply.ts';
import { useOwnEnhancedCodes } from './replies.ts';
import type { TlsMaterial } from './tls.ts';

export interface SmtpListeners {
  addresses: HostPort[];
  /** Stop taking new sessions (they get 421) and wait for open ones to end, at most `graceMs`. */
  close(graceMs: number): Promise<void>;
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export async function startSmtp(intake: Intake, tls: TlsMaterial, pacer: IntakePacer): Promise<SmtpListeners> {
  useOwnEnhancedCodes();
  const { config, log } = intake;
  const smtp = config.smtp;
  const networks = cidrList(smtp.relayNetworks);
  if ('bad' in networks) throw new Error(`smtp.relayNetworks: bad network ${networks.bad}`);
  const connections = new ConnectionCounter();
  let closing = false;
  let inData = 0;

  const options = {
    name: smtp.hostname,
    banner: 'mailops relay ready',
    size: smtp.maxMessageSize,
    key: tls.key,
    cert: tls.cert,
    authMethods: ['PLAIN', 'LOGIN'],
    authOptional: true,
    allowInsecureAuth: false,
    hideENHANCEDSTATUSCODES: false,
    hideDSN: true,
    hideREQUIRETLS: true,
    disableReverseLookup: true,
    maxClients: smtp.maxConnections,
    maxRecipients: smtp.maxRecipients,
    socketTimeout: smtp.idleTimeout,
    closeTimeout: 100, // close() below first waits for messages being received, then ends idle sessions with 421
    logger: false,

    onConnect(session: SMTPServerSession, callback: (err?: Error | null) => void) {
      if (closing) return callback(smtpError(421, '4.3.2', 'Service shutting down, try again later'));
      const ip = plainAddress(session.remoteAddress);
      const count = connections.open(ip);
      (session as { counted?: string }).counted = ip;
      // decided once per session, not at every RCPT
      (session as { relayNetwork?: boolean }).relayNetwork = inList(networks.list, ip);
      if (count > smtp.maxConnectionsPerIp) {
        return callback(smtpError(421, '4.7.0', `Too many connections from ${ip}, try again later`));
      }
      // AUTH is neither offered nor accepted before STARTTLS (passwords never travel in clear)
      session.disabledCommands = ['AUTH'];
      callback();
    },

    onSecure(_socket: unknown, session: SMTPServerSession, callback: (err?: Error | null) => void) {
      session.disabledCommands = [];
      callback();
    },

    onClose(session: SMTPServerSession) {
      const ip = (session as { counted?: string }).counted;
      if (ip !== undefined) connections.close(ip);
    },

    onAuth(auth: { method: string; username?: string; password?: string }, _session: SMTPServerSession, callback: (err: Error | null | undefined, response?: { user?: unknown }) => void) {
      const user = smtp.auth.users.find((u) => u.username === auth.username);
      if (!user || !sameSecret(auth.password ?? '', user.password)) {
        return callback(smtpError(535, '5.7.8', 'Authentication credentials invalid'));
      }
      callback(null, { user: user.username });
    },

    onRcptTo(address: { address: string }, session: SMTPServerSession, callback: (err?: Error | null) => void) {
      if (!session.user && !(session as { relayNetwork?: boolean }).relayNetwork) return callback(RELAY_DENIED());
      try {
        checkRecipient(address.address);
        callback();
      } catch (err) {
        callback(err as Error);
      }
    },

    onData(stream: NodeJS.ReadableStream & { sizeExceeded?: boolean }, session: SMTPServerSession, callback: (err?: Error | null, message?: string) => void) {
      const collector = new MessageCollector(smtp.maxMessageSize);
      inData++;
      let counted = true;
      const release = () => {
        if (counted) inData--;
        counted = false;
      };
      const reply = (err: Error | null, message?: string) => {
        release();
        callback(err, message);
      };
      stream.on('error', release); // the client went away in the middle of DATA
      stream.on('data', (chunk: Buffer) => collector.push(chunk));
      stream.on('end', () => {
        const ended = performance.now();
        if (collector.oversize || stream.sizeExceeded) {
          return reply(smtpError(552, '5.3.4', `Message size exceeds fixed maximum message size of ${smtp.maxMessageSize} bytes`));
        }
        if (collector.bareLineEnding) {
          return reply(smtpError(550, '5.6.11', `Bare ${collector.bareLineEnding} line ending in message data; lines must end with CRLF`));
        }
        const envelope = session.envelope;
        accept(intake, {
          sender: envelope.mailFrom ? envelope.mailFrom.address : '',
          recipients: envelope.rcptTo.map((r) => r.address),
          client: plainAddress(session.remoteAddress),
          user: typeof session.user === 'string' ? session.user : undefined,
          listener: formatHostPort({ host: plainAddress(session.localAddress), port: session.localPort }),
          body: collector.body(),
          helo: session.hostNameAppearsAs,
          tls: session.secure ? (session as { tlsOptions?: { version?: string; name?: string } }).tlsOptions || {} : undefined,
        }).then(
          ({ id, lane }) => {
            const ok = () => {
              intake.metrics.lane(lane).answer.observe(performance.now() - ended);
              reply(null, `2.0.0 Ok: queued as ${id}`);
            };
            if (pacer.holds(lane)) void pacer.whenCalm(lane).then(ok); // durable already: only the answer waits
            else ok();
          },
          (err: Error) => reply(err),
        );
      });
    },
  };

  const servers: SMTPServer[] = [];
  const addresses: HostPort[] = [];
  for (const listen of smtp.listen) {
    const server = new SMTPServer(options as ConstructorParameters<typeof SMTPServer>[0]);
    server.on('error', (err: Error) => log.emit('smtp-error', { error: err.message }));
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.listen(listen.port, listen.host, () => {
        server.server.off('error', reject);
        resolve();
      });
    });
    const bound = server.server.address();
    addresses.push({ host: listen.host, port: typeof bound === 'object' && bound ? bound.port : listen.port });
    servers.push(server);
  }

  return {
    addresses,
    async close(graceMs: number) {
      closing = true;
      const deadline = Date.now() + graceMs;
      // Messages being received get their reply (bounded wait); new sessions get 421 meanwhile.
      while (inData > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    },
  };
}
