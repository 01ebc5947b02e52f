// How smtp-server's replies leave, changed where it has no option for it: its connection's send()
// is wrapped here, once per process.
// - Enhanced status codes: smtp-server adds one derived from the reply code to every reply; for
//   replies whose text already starts with one (see reply.ts) we want exactly that code, once.
// - One write per pipelined group: smtp-server writes each reply on its own, so a client's
//   pipelined MAIL, RCPT and DATA cost three write(2)s, each of which on loopback also runs the
//   client's side of TCP (socket writes were a fifth of the relay's CPU at 2,000 msgs/s). The
//   socket is corked at the first reply and uncorked once the current batch of commands has been
//   handled (next tick): the replies go out together, none later than before.
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import type { Socket } from 'node:net';
import { ENHANCED_PREFIX } from './reply.ts';

type Send = (code: number, data: unknown, context?: unknown) => void;
const proto = SMTPConnection.prototype as unknown as { send: Send; mailopsWrapped?: boolean };

function uncork(socket: Socket): void {
  if (socket.writableCorked) socket.uncork();
}

export function useOwnEnhancedCodes(): void {
  if (proto.mailopsWrapped) return;
  const send = proto.send;
  proto.send = function (this: { _socket?: Socket }, code, data, context) {
    const socket = this._socket;
    if (socket && !socket.destroyed && !socket.writableCorked) {
      socket.cork();
      process.nextTick(uncork, socket);
    }
    const own = typeof data === 'string' && ENHANCED_PREFIX.test(data);
    return send.call(this, code, data, own ? false : context);
  };
  proto.mailopsWrapped = true;
}
