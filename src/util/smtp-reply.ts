// Incremental SMTP reply parser: bytes in, complete (possibly multi-line) replies out. Used by
// the load engine's connections and the relay's delivery client.

/** `text` is the reply without its codes, one line per line of the reply. */
export interface Reply { code: number; enhanced: string; text: string }

/** The reply as a server wrote it (for logs and DSNs): "550 5.1.1 No such user". */
export function replyLine(reply: Reply): string {
  return `${reply.code} ${reply.text}`;
}

const ENHANCED = /^([245]\.\d{1,3}\.\d{1,3})\b/;

export class ReplyParser {
  private pending = '';
  private lines: string[] = [];

  /** Feeds a chunk; calls `onReply` for each reply completed by it. */
  push(chunk: Buffer, onReply: (reply: Reply) => void): void {
    this.pending += chunk.toString('latin1');
    let start = 0;
    for (;;) {
      const end = this.pending.indexOf('\n', start);
      if (end < 0) break;
      const line = this.pending.slice(start, this.pending.charCodeAt(end - 1) === 13 ? end - 1 : end);
      start = end + 1;
      this.lines.push(line);
      if (line.charCodeAt(3) !== 45 /* '-' */) {
        const code = Number(line.slice(0, 3)) || 0;
        const text = this.lines.map((l) => l.slice(4)).join('\n');
        this.lines = [];
        onReply({ code, enhanced: ENHANCED.exec(text)?.[1] ?? '', text });
      }
    }
    this.pending = start === 0 ? this.pending : this.pending.slice(start);
  }
}
