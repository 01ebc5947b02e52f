// The SMTP listeners: one smtp-server per configured address, sharing the access policy, limits
// and the intake. EHLO offers PIPELINING, SIZE, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES and
// STARTTLS; AUTH PLAIN/LOGIN only after STARTTLS, judged by the AUTH guard (auth-guard.ts).
// Connections from smtp.proxy addresses start their session with the client address of their
// PROXY header (proxy.ts). Who gets a connection slot, and how long a session may keep it:
// admission.ts.
import type { IntakePacer } from './pacing.ts';
import type { AuthGuard } from './auth-guard.ts';
import { timingSafeEqual } from 'node:crypto';
import type { SMTPServer, SMTPServerSession } from 'smtp-server';
import { formatHostPort, type HostPort } from '../../util/units.ts';
import { cidrList, inList, plainAddress } from '../../util/network.ts';
import { accept, type Intake } from './accept.ts';
import { DataReception, listenAll, sharedServerOptions } from './listeners.ts';
import { ProxyProtocolGate } from './proxy.ts';
import { checkRecipient, RELAY_DENIED } from './policy.ts';
import { ConnectionAdmission } from './admission.ts';
import { smtpError } from './reply.ts';
import { useOwnEnhancedCodes } from './replies.ts';
import { acceptRepeatedParameters } from './parameters.ts';
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

export async function startSmtp(intake: Intake, tls: TlsMaterial, pacer: IntakePacer, authGuard: AuthGuard): Promise<SmtpListeners> {
  useOwnEnhancedCodes();
  acceptRepeatedParameters();
  const { config, log } = intake;
  const smtp = config.smtp;
  const networks = cidrList(smtp.relayNetworks);
  if ('bad' in networks) throw new Error(`smtp.relayNetworks: bad network ${networks.bad}`);
  const admission = new ConnectionAdmission({ smtp, log, metrics: intake.metrics.connections });
  const proxyGate = new ProxyProtocolGate(smtp.proxy, log);
  let closing = false;
  const reception = new DataReception(smtp.maxMessageSize);

  const options = {
    ...sharedServerOptions(smtp, tls, 'mailops relay ready'),
    authMethods: ['PLAIN', 'LOGIN'],
    authOptional: true,
    allowInsecureAuth: false,

    onConnect(session: SMTPServerSession, callback: (err?: Error | null) => void) {
      if (closing) return callback(smtpError(421, '4.3.2', 'Service shutting down, try again later'));
      // decided once per session, not at every RCPT
      const relayNetwork = inList(networks.list, plainAddress(session.remoteAddress));
      (session as { relayNetwork?: boolean }).relayNetwork = relayNetwork;
      const refused = admission.admit(session, relayNetwork);
      if (refused) return callback(refused);
      // AUTH is neither offered nor accepted before STARTTLS (passwords never travel in clear)
      session.disabledCommands = ['AUTH'];
      callback();
    },

    onSecure(_socket: unknown, session: SMTPServerSession, callback: (err?: Error | null) => void) {
      session.disabledCommands = [];
      callback();
    },

    onClose(session: SMTPServerSession) {
      admission.release(session);
    },

    onAuth(auth: { method: string; username?: string; password?: string }, session: SMTPServerSession, callback: (err: Error | null | undefined, response?: { user?: unknown }) => void) {
      const user = smtp.auth.users.find((u) => u.username === auth.username);
      const verify = () => user !== undefined && sameSecret(auth.password ?? '', user.password);
      void authGuard.judge(plainAddress(session.remoteAddress), auth.username ?? '', verify).then((verdict) => {
        if (verdict === 'locked-out') return callback(smtpError(421, '4.7.0', 'Too many failed logins, try again later'));
        if (verdict === 'refused') return callback(smtpError(535, '5.7.8', 'Authentication credentials invalid'));
        callback(null, { user: user!.username });
      });
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
      reception.receive(stream, callback, async (body) => {
        const ended = performance.now();
        const envelope = session.envelope;
        const { id, lane } = await accept(intake, {
          sender: envelope.mailFrom ? envelope.mailFrom.address : '',
          recipients: envelope.rcptTo.map((r) => r.address),
          client: plainAddress(session.remoteAddress),
          user: typeof session.user === 'string' ? session.user : undefined,
          listener: formatHostPort({ host: plainAddress(session.localAddress), port: session.localPort }),
          body,
          helo: session.hostNameAppearsAs,
          tls: session.secure ? (session as { tlsOptions?: { version?: string; name?: string } }).tlsOptions || {} : undefined,
        });
        await pacer.whenCalm(lane); // durable already: only the answer waits
        intake.metrics.lane(lane).answer.observe(performance.now() - ended);
        return `2.0.0 Ok: queued as ${id}`;
      });
    },
  };

  const { servers, addresses } = await listenAll(smtp.listen, options as ConstructorParameters<typeof SMTPServer>[0], proxyGate,
    (err) => log.emit('smtp-error', { error: err.message }));

  return {
    addresses,
    async close(graceMs: number) {
      closing = true;
      pacer.releaseAll(); // held answers go out now: their messages are durable
      // Messages being received get their reply (bounded wait); new sessions get 421 meanwhile.
      await reception.settle(graceMs);
      proxyGate.close();
      admission.close();
      await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    },
  };
}
