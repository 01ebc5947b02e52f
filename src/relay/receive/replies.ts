// smtp-server adds an enhanced status code derived from the reply code to every reply. For replies
// whose text already starts with one (see reply.ts) we want exactly that code, once. smtp-server
// has no option for it, so its connection's send() is wrapped here, once per process.
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { ENHANCED_PREFIX } from './reply.ts';

type Send = (code: number, data: unknown, context?: unknown) => void;
const proto = SMTPConnection.prototype as unknown as { send: Send; mailopsWrapped?: boolean };

export function useOwnEnhancedCodes(): void {
  if (proto.mailopsWrapped) return;
  const send = proto.send;
  proto.send = function (this: unknown, code, data, context) {
    const own = typeof data === 'string' && ENHANCED_PREFIX.test(data);
    return send.call(this, code, data, own ? false : context);
  };
  proto.mailopsWrapped = true;
}
