// Connection admission for the SMTP listeners: who gets one of the smtp.maxConnections slots, and
// how long a session may keep it. Postfix's anvil limits and stress mode, in one process:
//  - limits per client address (smtp.maxConnectionsPerIp) and, for clients outside
//    relayNetworks, per /24 or /64 (smtp.maxConnectionsPerNetwork): over a limit is 421 4.7.0
//    naming it;
//  - smtp.reservedConnections of the slots are for clients in relayNetworks and authenticated
//    clients only (a session that authenticates moves into them), so a flood from elsewhere
//    cannot take the last slots from the application servers;
//  - a client that finds no slot gets one by ending an idle or unfinished session of the busiest
//    network outside relayNetworks (its busiest address, the session that has waited longest),
//    when that network holds at least two sessions more than the newcomer's: a flood cannot push
//    out a lone client, and two floods do not push each other out in turn;
//  - every session runs on a clock (session-clock.ts): idle timeout, command-line deadline,
//    minimum data rate. Stress mode, while open sessions reach smtp.stress.threshold of the slots,
//    shortens the first two to smtp.stress.* (Postfix: 300 s -> 10 s when its slots run short).
// Every refusal, every session ended and every change of mode is logged (smtp-refused, smtp-cut,
// smtp-stress) and counted in /metrics.
//
// May touch: the smtp-server connections it admitted (it watches the bytes their sockets receive
// and ends them with 421), the event log, the connection metrics. It reads smtp-server's
// connection state (a handler pending, message data being read) with the same test as the
// library's own idle timeout, and wraps the connection's init (once per process) to find the
// connection of a session, which smtp-server does not hand to its handlers.
import type { Socket } from 'node:net';
import type { SMTPServerSession } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import type { RelayConfig } from '../../config/types.ts';
import { networkOf, plainAddress } from '../../util/network.ts';
import { formatDuration } from '../../util/units.ts';
import type { EventLog } from '../log.ts';
import type { ConnectionMetrics, ConnectionRefusal, SessionCut } from '../metrics.ts';
import { smtpError, type SmtpReplyError } from './reply.ts';
import { SessionClock, type Overrun, type SessionLimits, type SessionState } from './session-clock.ts';

/** How often every session's clock is read: deadlines hold to within this. */
const SWEEP_MS = 250;
/** Stress mode ends below this share of the level that started it, so that one session coming and going does not switch it on and off. */
const STRESS_CALM = 0.9;

/** What admission reads and calls of smtp-server's connection object (not in the library's types). */
interface LibraryConnection {
  session: SMTPServerSession;
  /** The socket the session reads from: a TLS socket after STARTTLS. */
  _socket: Socket;
  _handlerPending: boolean;
  _dataStream: unknown;
  _parser: false | { _dataMode: boolean };
  _closing: boolean;
  _closed: boolean;
  /** Writes a reply; a 421 also closes the connection (after at most 5 s for the client to go). */
  send(code: number, text: string): void;
}

const connectionOf = new WeakMap<SMTPServerSession, LibraryConnection>();
/** Bytes the client's socket had delivered when smtp-server started the session (a PROXY header read by proxy.ts). */
const bytesAtStartOf = new WeakMap<SMTPServerSession, number>();

/**
 * The socket of an admitted session, and the bytes it had delivered when the session began: the
 * inbound MX's pregreet test (inbound/screen.ts) counts what the client sends after that.
 */
export function clientSocketOf(session: SMTPServerSession): { socket: Socket; bytesAtStart: number } | undefined {
  const connection = connectionOf.get(session);
  return connection ? { socket: connection._socket, bytesAtStart: bytesAtStartOf.get(session) ?? 0 } : undefined;
}

/** Records each connection under its session object (which smtp-server keeps for the whole connection). */
function rememberConnections(): void {
  const proto = SMTPConnection.prototype as unknown as { init(this: LibraryConnection): void; mailopsRemembersConnections?: boolean };
  if (proto.mailopsRemembersConnections) return;
  const init = proto.init;
  proto.init = function () {
    connectionOf.set(this.session, this);
    bytesAtStartOf.set(this.session, this._socket.bytesRead);
    return init.call(this);
  };
  proto.mailopsRemembersConnections = true;
}

/** Whom the session waits for: the test of smtp-server's own idle timeout (_onTimeout). */
function stateOf(connection: LibraryConnection): SessionState {
  const parser = connection._parser;
  if (connection._handlerPending || (connection._dataStream && parser && !parser._dataMode)) return 'server';
  return parser && parser._dataMode ? 'data' : 'command';
}

/** An admitted session: what it counts against, and its clock. */
interface Seat {
  session: SMTPServerSession;
  connection: LibraryConnection;
  ip: string;
  network: string;
  relayNetwork: boolean;
  /** In relayNetworks or authenticated: may use the reserved slots, never shed. */
  privileged: boolean;
  clock: SessionClock;
  admittedAt: number;
  /** The socket whose bytes the clock is told about (a new one after STARTTLS). */
  watched?: Socket;
}

export interface AdmissionOptions {
  smtp: RelayConfig['smtp'];
  log: EventLog;
  metrics: ConnectionMetrics;
}

export class ConnectionAdmission {
  private readonly smtp: RelayConfig['smtp'];
  private readonly log: EventLog;
  private readonly metrics: ConnectionMetrics;
  private readonly seats = new Map<SMTPServerSession, Seat>();
  private readonly perIp = new Map<string, number>();
  /** Sessions of clients outside relayNetworks by network: its limit, and whom to shed. */
  private readonly perNetwork = new Map<string, Set<Seat>>();
  private privileged = 0;
  private stressed = false;
  private readonly stressAt: number;
  private readonly calmAt: number;
  private readonly normal: SessionLimits;
  private readonly underStress: SessionLimits;
  private readonly sweeper: NodeJS.Timeout;

  constructor(options: AdmissionOptions) {
    rememberConnections();
    const { smtp } = options;
    this.smtp = smtp;
    this.log = options.log;
    this.metrics = options.metrics;
    this.stressAt = Math.max(1, Math.ceil(smtp.stress.threshold * smtp.maxConnections));
    this.calmAt = Math.max(1, Math.floor(this.stressAt * STRESS_CALM));
    this.normal = { idleTimeout: smtp.idleTimeout, commandDeadline: smtp.commandDeadline, minDataRate: smtp.minDataRate };
    this.underStress = { idleTimeout: smtp.stress.idleTimeout, commandDeadline: smtp.stress.commandDeadline, minDataRate: smtp.minDataRate };
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
    this.sweeper.unref();
  }

  /** The limits every session runs on now. */
  get limits(): SessionLimits {
    return this.stressed ? this.underStress : this.normal;
  }

  /** Takes a slot for a session smtp-server is starting, or returns the 421 that refuses it. */
  admit(session: SMTPServerSession, relayNetwork: boolean): SmtpReplyError | undefined {
    const connection = connectionOf.get(session);
    if (!connection) throw new Error('connection admission: smtp-server started a session without a known connection');
    const ip = plainAddress(session.remoteAddress);
    const network = networkOf(ip);
    const smtp = this.smtp;
    const fromIp = this.perIp.get(ip) ?? 0;
    if (fromIp >= smtp.maxConnectionsPerIp) {
      return this.refuse(ip, network, 'per-ip', `Too many connections from ${ip} (smtp.maxConnectionsPerIp ${smtp.maxConnectionsPerIp}), try again later`);
    }
    const fromNetwork = relayNetwork ? 0 : this.perNetwork.get(network)?.size ?? 0;
    if (fromNetwork >= smtp.maxConnectionsPerNetwork) {
      return this.refuse(ip, network, 'per-network', `Too many connections from ${network} (smtp.maxConnectionsPerNetwork ${smtp.maxConnectionsPerNetwork}), try again later`);
    }
    const full = this.seats.size >= smtp.maxConnections;
    const sharedFull = !relayNetwork && this.seats.size - this.privileged >= smtp.maxConnections - smtp.reservedConnections;
    // a relay network may take the slot of any idle outsider; an outsider only one of a busier network
    if ((full || sharedFull) && !this.shed(relayNetwork ? 1 : fromNetwork + 2)) {
      return full
        ? this.refuse(ip, network, 'capacity', `Too many connected clients (smtp.maxConnections ${smtp.maxConnections}), try again later`)
        : this.refuse(ip, network, 'reserved', `Too many connected clients; the remaining ${smtp.reservedConnections} slots are for relay networks and authenticated clients (smtp.reservedConnections), try again later`);
    }

    const now = performance.now();
    const seat: Seat = { session, connection, ip, network, relayNetwork, privileged: relayNetwork, clock: new SessionClock(now), admittedAt: now };
    this.seats.set(session, seat);
    this.perIp.set(ip, fromIp + 1);
    if (relayNetwork) this.privileged++;
    else {
      let neighbours = this.perNetwork.get(network);
      if (!neighbours) this.perNetwork.set(network, (neighbours = new Set()));
      neighbours.add(seat);
    }
    this.watch(seat);
    this.counted();
    return undefined;
  }

  /** Gives back the slot of a session that has ended (a no-op for one that was refused or already cut). */
  release(session: SMTPServerSession): void {
    const seat = this.seats.get(session);
    if (!seat) return;
    this.seats.delete(session);
    const fromIp = (this.perIp.get(seat.ip) ?? 1) - 1;
    if (fromIp > 0) this.perIp.set(seat.ip, fromIp);
    else this.perIp.delete(seat.ip);
    if (seat.privileged) this.privileged--;
    const neighbours = this.perNetwork.get(seat.network);
    if (neighbours?.delete(seat) && neighbours.size === 0) this.perNetwork.delete(seat.network);
    this.counted();
  }

  close(): void {
    clearInterval(this.sweeper);
  }

  private refuse(ip: string, network: string, reason: ConnectionRefusal, text: string): SmtpReplyError {
    this.metrics.refused[reason]++;
    this.log.emit('smtp-refused', { client: ip, network, reason, reply: `421 4.7.0 ${text}` });
    return smtpError(421, '4.7.0', text);
  }

  /** Tells the session's clock about the bytes of its current socket, once smtp-server reads from it. */
  private watch(seat: Seat): void {
    const socket = seat.connection._socket;
    // a socket nobody reads yet (the TLS socket while STARTTLS is under way) would start flowing
    // into our listener alone and its bytes would be lost to smtp-server: the next sweep tries again
    if (seat.watched === socket || socket.readableFlowing === null) return;
    seat.watched = socket;
    socket.on('data', (bytes: Buffer) => {
      const parser = seat.connection._parser;
      seat.clock.received(bytes, Boolean(parser && parser._dataMode), performance.now(), this.limits);
    });
  }

  private sweep(): void {
    const now = performance.now();
    // one mode for the whole sweep, though the cuts it makes may end stress mode on the way
    const [limits, stressed] = [this.limits, this.stressed];
    for (const seat of this.seats.values()) {
      if (seat.connection._closing || seat.connection._closed) continue;
      if (!seat.privileged && seat.session.user) this.promote(seat);
      this.watch(seat);
      const overrun = seat.clock.overrun(stateOf(seat.connection), now, limits);
      if (overrun) this.cut(seat, overrun, this.overrunText(overrun, limits, stressed), stressed);
    }
  }

  /** An authenticated session moves into the reserved slots and is never shed. */
  private promote(seat: Seat): void {
    seat.privileged = true;
    this.privileged++;
    this.counted();
  }

  /**
   * Ends one idle or unfinished session of the busiest network that holds at least `minSessions`
   * (of that network's busiest address, the one that has waited longest). False if there is none.
   */
  private shed(minSessions: number): boolean {
    const busiest = [...this.perNetwork.values()].filter((seats) => seats.size >= minSessions).sort((a, b) => b.size - a.size);
    for (const seats of busiest) {
      let victim: Seat | undefined;
      for (const seat of seats) {
        const connection = seat.connection;
        // busy sessions (message data, a reply owed) and authenticated ones are left alone
        if (seat.privileged || seat.session.user || connection._closing || connection._closed || stateOf(connection) !== 'command') continue;
        if (!victim) victim = seat;
        else {
          const more = (this.perIp.get(seat.ip) ?? 0) - (this.perIp.get(victim.ip) ?? 0);
          if (more > 0 || (more === 0 && seat.clock.quietSince < victim.clock.quietSince)) victim = seat;
        }
      }
      if (victim) {
        this.cut(victim, 'shed', `4.7.0 Connection slots are short and ${victim.network} holds the most; closing this idle session, try again later`);
        return true;
      }
    }
    return false;
  }

  private overrunText(overrun: Overrun, limits: SessionLimits, stressed: boolean): string {
    const mode = stressed ? ' (stress mode: connection slots are short)' : '';
    switch (overrun) {
      case 'idle': return `4.4.2 Nothing received for ${formatDuration(limits.idleTimeout)}${mode}, closing connection`;
      case 'command-deadline': return `4.4.2 Command line not completed within ${formatDuration(limits.commandDeadline)}${mode}, closing connection`;
      case 'data-rate': return `4.4.2 Message data slower than ${limits.minDataRate} bytes/s${mode}, closing connection`;
    }
  }

  /** Ends a session with a 421; its slot is free at once (the socket follows within smtp-server's 5 s half-close limit). */
  private cut(seat: Seat, reason: SessionCut, text: string, stressed = this.stressed): void {
    this.release(seat.session);
    this.metrics.cut[reason]++;
    this.log.emit('smtp-cut', {
      client: seat.ip, network: seat.network, reason, reply: `421 ${text}`, stress: stressed,
      sessionSeconds: Math.round((performance.now() - seat.admittedAt) / 100) / 10,
    });
    seat.connection.send(421, text);
  }

  /** After every change of the counts: the gauges, and stress mode on or off. */
  private counted(): void {
    const open = this.seats.size;
    this.metrics.open.privileged = this.privileged;
    this.metrics.open.other = open - this.privileged;
    const stressed = this.stressed ? open >= this.calmAt : open >= this.stressAt;
    if (stressed === this.stressed) return;
    this.stressed = stressed;
    this.metrics.stress = stressed;
    if (stressed) this.metrics.stressEntered++;
    const limits = this.limits;
    this.log.emit('smtp-stress', {
      stress: stressed, sessions: open, on: this.stressAt, off: this.calmAt,
      idleTimeout: formatDuration(limits.idleTimeout), commandDeadline: formatDuration(limits.commandDeadline),
    });
  }
}
