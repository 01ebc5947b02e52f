// The load generator's trace header:
//   X-Mailops-Load: run=<id>; seq=<n>; lane=<lane>; sent=<epoch-ms>
// Only the header block is searched; folded continuation lines are joined.

export interface LoadTag {
  run: string;
  seq: number;
  lane: string;
  sent: number;
}

const FIELD = /^x-mailops-load:[ \t]*([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)/im;

/** `header` is the message's header block (latin1). Returns undefined without a usable tag. */
export function parseLoadTag(header: string): LoadTag | undefined {
  const match = FIELD.exec(header);
  if (!match) return undefined;
  const params: Record<string, string> = {};
  for (const part of match[1].replace(/\r?\n[ \t]/g, ' ').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) params[part.slice(0, eq).trim().toLowerCase()] = part.slice(eq + 1).trim();
  }
  const seq = Number(params.seq);
  const sent = Number(params.sent);
  if (!params.run || !Number.isInteger(seq)) return undefined;
  return { run: params.run, seq, lane: params.lane || 'unknown', sent: Number.isFinite(sent) ? sent : NaN };
}
