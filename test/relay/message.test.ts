// Header handling at intake: the collector's line-ending check across chunk boundaries, and tag
// removal that keeps the other fields' offsets right (the signer relies on them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageCollector, parseMessage, withoutFields } from '../../src/relay/receive/message.ts';

test('removing a field moves the later fields and the header length by its size', () => {
  const text = 'From: a@b.test\r\nX-Mailops-Lane: bulk\r\nSubject: folded\r\n  line\r\nTo: c@d.test\r\n\r\nbody\r\n';
  const stripped = withoutFields(parseMessage(Buffer.from(text)), (f) => f.name === 'X-Mailops-Lane');
  const out = stripped.message.toString('latin1');
  assert.equal(out, 'From: a@b.test\r\nSubject: folded\r\n  line\r\nTo: c@d.test\r\n\r\nbody\r\n');
  assert.equal(stripped.headerLength, out.indexOf('\r\n\r\n') + 4);
  for (const field of stripped.fields) assert.ok(out.slice(field.start, field.end).startsWith(`${field.name}:`), field.name);
  assert.deepEqual(stripped.fields.map((f) => [f.name, f.value]), [['From', 'a@b.test'], ['Subject', 'folded line'], ['To', 'c@d.test']]);
});

test('bare LF and bare CR are found even when CRLF is split across chunks', () => {
  const scan = (...chunks: string[]) => {
    const c = new MessageCollector(1 << 20);
    for (const chunk of chunks) c.push(Buffer.from(chunk));
    return c.bareLineEnding;
  };
  assert.equal(scan('a\r', '\nb\r\n'), undefined);
  assert.equal(scan('a\n', 'b\r\n'), 'LF');
  assert.equal(scan('a\r', 'b\r\n'), 'CR');
  assert.equal(scan('a\r\n', '\nb\r\n'), 'LF');
});
