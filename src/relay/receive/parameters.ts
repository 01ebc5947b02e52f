// MAIL FROM and RCPT TO parameters given twice with the same value count once. Python's smtplib
// sends `SMTPUTF8` twice when the caller asks for it and an address needs it (send_message adds
// its own); Postfix takes that, smtp-server refuses any repeated parameter with 501. Identical
// repeats are dropped from the command line before smtp-server parses it, so a repeat with a
// different value (`BODY=7BIT BODY=8BITMIME`) still gets smtp-server's 501 naming the parameter.
// May touch: smtp-server's connection prototype (its address parser), once per process.
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

/** The command with every parameter that repeats an earlier one (same name in any case, same value) left out. */
function withoutRepeatedParameters(command: string): string {
  const colon = command.indexOf(':');
  if (colon === -1) return command;
  const [address, ...parameters] = command.slice(colon + 1).trim().split(/\s+/);
  const seen = new Set<string>();
  const kept = parameters.filter((parameter) => {
    const equals = parameter.indexOf('=');
    const normal = equals === -1 ? parameter.toUpperCase() : `${parameter.slice(0, equals).toUpperCase()}${parameter.slice(equals)}`;
    if (seen.has(normal)) return false;
    seen.add(normal);
    return true;
  });
  if (kept.length === parameters.length) return command;
  return `${command.slice(0, colon + 1)}${[address, ...kept].join(' ')}`;
}

type ParseAddressCommand = (name: string, command: string | Buffer) => unknown;
const proto = SMTPConnection.prototype as unknown as { _parseAddressCommand: ParseAddressCommand; mailopsRepeatsDropped?: boolean };

export function acceptRepeatedParameters(): void {
  if (proto.mailopsRepeatsDropped) return;
  const parse = proto._parseAddressCommand;
  proto._parseAddressCommand = function (this: unknown, name, command) {
    return parse.call(this, name, withoutRepeatedParameters(command.toString()));
  };
  proto.mailopsRepeatsDropped = true;
}
