// The PROXY protocol (v1) at the SMTP listeners, for nodes behind a load balancer (HAProxy's
// `send-proxy`). A connection from an address in `smtp.proxy` must open with a PROXY header; the
// client address it names then stands for the connection everywhere after (relayNetworks, the
// per-IP limit, the Received field, the log), because smtp-server's session is started with it.
// A connection from a proxy address without a header is refused (554), and so is a PROXY line from
// any other address (554, closed): honouring it would let any client claim to be a relay network.
//
// Why not smtp-server's own `useProxy`: it trusts exact addresses only, not networks, and a proxy
// address that never sends its header waits for the socket's idle timeout before anything
// happens. So the gate takes the accepted socket before smtp-server does, reads the header itself
// (with a short deadline and a reply a human can act on) and starts the session through
// smtp-server's public `connect(socket, { remoteAddress, remotePort })`. PROXY v2 (binary) is not
// spoken; its signature gets a reply saying so.
//
// May touch: the accepted sockets of proxy addresses until the SMTP session starts on them, the
// 'connection' listener of each guarded smtp-server, and (once per process) the command entry
// of smtp-server's connection class, to refuse PROXY lines inside a session.
import type { BlockList, Socket } from 'node:net';
import { isIP } from 'node:net';
import type { SMTPServer } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { cidrList, inList, plainAddress } from '../../util/network.ts';
import type { EventLog } from '../log.ts';

/** How long a proxy address may take to send its header (HAProxy sends it with the connection). */
export const PROXY_HEADER_WAIT_MS = 3_000;
/** PROXY v1 allows 107 bytes including CRLF. */
const MAX_HEADER_BYTES = 107;
/** How long a refused socket stays open for its reply to be read. */
const REFUSAL_LINGER_MS = 1_000;
const V2_SIGNATURE = Buffer.from('\r\n\r\n\0\r\nQUIT\n', 'latin1');
/** An smtp-server event: a PROXY line arrived inside a session (see refuseProxyLinesInSessions). */
const PROXY_LINE_REFUSED = 'mailops-proxy-line-refused';

export interface ProxiedClient { remoteAddress?: string; remotePort?: number }

/** Parses one PROXY v1 header line (without CRLF); throws an Error saying what is wrong with it. */
export function parseProxyHeader(line: string): ProxiedClient {
  const parts = line.split(' ');
  if (parts[0] !== 'PROXY') throw new Error('not a PROXY header');
  // "PROXY UNKNOWN [anything]": the proxy's own connection (a health check); its address stands
  if (parts[1] === 'UNKNOWN') return {};
  const [, family, source, destination, sourcePort, destinationPort, ...extra] = parts;
  const version = family === 'TCP4' ? 4 : family === 'TCP6' ? 6 : 0;
  if (!version) throw new Error(`unknown protocol ${JSON.stringify(family ?? '')} (TCP4, TCP6 or UNKNOWN)`);
  if (extra.length || destinationPort === undefined) throw new Error('expected "PROXY TCP4|TCP6 SOURCE DESTINATION SPORT DPORT"');
  if (isIP(source) !== version || isIP(destination) !== version) throw new Error(`addresses are not ${family} addresses`);
  const port = (text: string) => (/^\d{1,5}$/.test(text) && Number(text) <= 65535 ? Number(text) : undefined);
  const remotePort = port(sourcePort);
  if (remotePort === undefined || port(destinationPort) === undefined) throw new Error('ports must be numbers from 0 to 65535');
  return { remoteAddress: source.toLowerCase(), remotePort };
}

export class ProxyProtocolGate {
  private readonly networks: BlockList;
  private readonly log: EventLog;
  /** Sockets of proxy addresses whose header has not arrived yet. */
  private readonly waiting = new Set<Socket>();
  readonly enabled: boolean;

  /** `proxyNetworks`: smtp.proxy (CIDRs, validated by the config loader). */
  constructor(proxyNetworks: string[], log: EventLog) {
    const parsed = cidrList(proxyNetworks);
    if ('bad' in parsed) throw new Error(`smtp.proxy: ${JSON.stringify(parsed.bad)} is not a CIDR network`);
    this.networks = parsed.list;
    this.enabled = proxyNetworks.length > 0;
    this.log = log;
    refuseProxyLinesInSessions();
  }

  /**
   * Takes `server`'s accepted sockets before smtp-server does (only when smtp.proxy lists
   * networks). Call it on a new smtp-server: its own 'connection' listener is the one removed.
   */
  guard(server: SMTPServer): void {
    server.on(PROXY_LINE_REFUSED, (peer: string) => this.log.emit('smtp-proxy-refused', { peer, reason: 'PROXY header from an address not in smtp.proxy' }));
    if (!this.enabled) return;
    const [smtpServersOwn] = server.server.listeners('connection');
    if (smtpServersOwn) server.server.off('connection', smtpServersOwn as (socket: Socket) => void);
    server.server.on('connection', (socket: Socket) => {
      const peer = plainAddress(socket.remoteAddress ?? '');
      if (inList(this.networks, peer)) this.readHeader(socket, peer, server);
      else server.connect(socket);
    });
  }

  /** Drops the sockets still waiting for their header (the listeners are closing). */
  close(): void {
    for (const socket of this.waiting) socket.destroy();
    this.waiting.clear();
  }

  private readHeader(socket: Socket, peer: string, server: SMTPServer): void {
    let received = Buffer.alloc(0);
    const done = () => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      this.waiting.delete(socket);
    };
    const refuse = (reason: string) => {
      done();
      this.log.emit('smtp-proxy-refused', { peer, reason });
      socket.end(`554 5.7.0 ${reason}\r\n`);
      setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref();
    };
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.subarray(0, V2_SIGNATURE.length).equals(V2_SIGNATURE.subarray(0, Math.min(received.length, V2_SIGNATURE.length)))) {
        if (received.length >= V2_SIGNATURE.length) refuse('PROXY protocol v2 is not supported: use send-proxy (v1), not send-proxy-v2');
        return;
      }
      const start = received.subarray(0, 6).toString('latin1');
      if (!'PROXY '.startsWith(start)) return refuse(`connections from ${peer} (smtp.proxy) must begin with a PROXY header`);
      const end = received.indexOf('\r\n');
      if (end === -1) {
        if (received.length >= MAX_HEADER_BYTES) refuse('PROXY header longer than 107 bytes');
        return;
      }
      let client: ProxiedClient;
      try {
        client = parseProxyHeader(received.subarray(0, end).toString('latin1'));
      } catch (err) {
        return refuse(`bad PROXY header: ${(err as Error).message}`);
      }
      done();
      socket.pause();
      const rest = received.subarray(end + 2);
      if (rest.length) socket.unshift(rest);
      server.connect(socket, client);
    };
    const onClose = () => done();
    const timer = setTimeout(() => refuse(`no PROXY header from ${peer} within ${PROXY_HEADER_WAIT_MS / 1000} s: connections from smtp.proxy addresses must begin with one`), PROXY_HEADER_WAIT_MS);
    timer.unref();
    this.waiting.add(socket);
    socket.on('error', () => {}); // a peer gone before its header: nothing to tell anyone
    socket.on('data', onData);
    socket.on('close', onClose);
  }
}

type CommandEntry = (this: SMTPConnection, command: Buffer, callback?: () => void) => void;
const proto = SMTPConnection.prototype as unknown as { _onCommand: CommandEntry; mailopsRefusesProxyLines?: boolean };

/**
 * A PROXY line inside an SMTP session comes from an address that is not a proxy (the gate has
 * consumed the header of those that are), or is a second header: refused with 554 and closed
 * rather than smtp-server's "500 command not recognized" that would let the session go on.
 * Wraps smtp-server's command entry once per process (as replies.ts wraps its send).
 */
function refuseProxyLinesInSessions(): void {
  if (proto.mailopsRefusesProxyLines) return;
  const onCommand = proto._onCommand;
  proto._onCommand = function (command, callback) {
    if (command.subarray(0, 6).toString('latin1').toUpperCase() !== 'PROXY ') return onCommand.call(this, command, callback);
    const peer = plainAddress(this.remoteAddress);
    (this as unknown as { _server: SMTPServer })._server.emit(PROXY_LINE_REFUSED, peer);
    this.send(554, `5.7.0 PROXY header refused: ${peer} is not a proxy address of this node (smtp.proxy)`);
    this.close();
  };
  proto.mailopsRefusesProxyLines = true;
}
