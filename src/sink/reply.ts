// SMTP reply templates from the profiles file: "421-4.7.28 line one\n421 4.7.28 line two" or a
// single line, with {placeholders} filled per transaction.
import { ConfigError } from '../config/errors.ts';

export const PLACEHOLDERS = ['ip', 'sender', 'recipient', 'domain', 'helo', 'limit'] as const;
export type ReplyVars = Partial<Record<(typeof PLACEHOLDERS)[number], string | number>>;

export interface ReplyTemplate {
  code: number;
  render(vars: ReplyVars): string;
}

/** Parses a reply template; `where` names the key for errors. */
export function replyTemplate(text: string, where: string, codeRange: [number, number] = [200, 599]): ReplyTemplate {
  const lines = text.split(/\r?\n/).filter((line) => line.trim() !== '');
  const first = /^([2-5]\d\d)(?:[ -]|$)/.exec(lines[0] ?? '');
  if (!first) throw new ConfigError(`${where}: a reply must start with a 3-digit SMTP code, got ${JSON.stringify(text)}`);
  const code = Number(first[1]);
  if (code < codeRange[0] || code > codeRange[1]) {
    throw new ConfigError(`${where}: expected a reply code from ${codeRange[0]} to ${codeRange[1]}, got ${code}`);
  }
  for (const match of text.matchAll(/\{(\w+)\}/g)) {
    if (!(PLACEHOLDERS as readonly string[]).includes(match[1])) {
      throw new ConfigError(`${where}: unknown placeholder {${match[1]}} (known: ${PLACEHOLDERS.map((p) => `{${p}}`).join(', ')})`);
    }
  }
  // Continuation lines may carry their own "421-" prefix or none; the sink writes the prefixes.
  const bodies = lines.map((line) => line.replace(/^\d{3}[ -]?/, ''));
  const wire = bodies.map((body, i) => `${code}${i < bodies.length - 1 ? '-' : ' '}${body}\r\n`).join('');
  const fixed = !wire.includes('{');
  return {
    code,
    render: fixed ? () => wire : (vars) => wire.replace(/\{(\w+)\}/g, (_, name: string) => String(vars[name as keyof ReplyVars] ?? '')),
  };
}
