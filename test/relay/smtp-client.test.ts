// The delivery SMTP client against real receivers on loopback (smtp-server), with and without
// PIPELINING: per-recipient replies, refusals, RSET, dot-stuffing, STARTTLS, timeouts.
import test from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { dotStuffed, SmtpClient } from '../../src/relay/deliver/smtp-client.ts';
import { startReceiver, type ReceiverOptions } from '../helpers/receiver.ts';

const options = (port: number) => ({ host: '127.0.0.1', port, helo: 'relay.test', connectTimeout: 2000, commandTimeout: 2000 });

test('dot-stuffing: only lines that start with a dot change, and an unchanged body is not copied', () => {
  const plain = Buffer.from('Subject: x\r\n\r\nno dots here.\r\n');
  assert.equal(dotStuffed(plain), plain);
  assert.equal(dotStuffed(Buffer.from('.first\r\nmid.dle\r\n.\r\n..two\r\n')).toString(), '..first\r\nmid.dle\r\n..\r\n...two\r\n');
});

async function receiverWith(t: test.TestContext, pipelining: boolean, replies: ReceiverOptions = {}) {
  const receiver = await startReceiver({ ...replies, pipelining });
  t.after(() => receiver.close());
  return { receiver, port: receiver.port };
}

for (const pipelining of [true, false]) {
  test(`${pipelining ? 'pipelined' : 'command by command'}: per-recipient replies, refusals, RSET and the next message on the same connection`, async (t) => {
    const { receiver, port } = await receiverWith(t, pipelining, {
      rcpt: (a) => (a.startsWith('unknown') ? [550, '5.1.1 No such user'] : a.startsWith('full') ? [452, '4.2.2 Mailbox full'] : undefined),
    });
    const client = await SmtpClient.connect(options(port));
    t.after(() => client.close());
    assert.equal(client.extensions.has('PIPELINING'), pipelining);

    const body = Buffer.from('From: a@sender.test\r\nSubject: dots\r\n\r\n.leading dot\r\nmiddle\r\n.\r\nend');
    const mixed = await client.send('a@sender.test', ['ok@dest.test', 'unknown@dest.test', 'full@dest.test'], body);
    assert.ok(mixed.ok, 'accepted for the one good recipient');
    assert.equal(mixed.reply.code, 250);
    assert.match(mixed.reply.text, /Ok: stored/);
    assert.deepEqual(mixed.rejected.map((r) => [r.address, r.reply.code]), [['unknown@dest.test', 550], ['full@dest.test', 452]]);
    assert.deepEqual(receiver.delivered.at(-1)!.to, ['ok@dest.test']);
    assert.equal(receiver.delivered.at(-1)!.body.toString(), `${body}\r\n`, 'the body arrives as sent (stuffed and unstuffed)');

    const none = await client.send('a@sender.test', ['unknown@dest.test'], body);
    assert.equal(none.ok, false);
    assert.equal(!none.ok && none.error.code, 'EENVELOPE');
    assert.equal(!none.ok && none.error.responseCode, 550);
    assert.ok(client.usable);
    assert.equal(await client.reset(), true);

    const refused = await client.send('bad address', ['ok@dest.test'], body);
    assert.equal(!refused.ok && refused.error.responseCode, 501, 'the MAIL reply is the error');
    assert.deepEqual(refused.rejected, [], 'RCPT replies after a refused MAIL say nothing about recipients');
    assert.equal(await client.reset(), true);

    const again = await client.send('', ['ok2@dest.test'], Buffer.from('Subject: null sender\r\n\r\nhi\r\n'));
    assert.ok(again.ok);
    assert.equal(receiver.delivered.at(-1)!.from, '');
    assert.equal(receiver.delivered.length, 2);
  });
}

test('a 421 to RCPT closes the session: the reply is the error and the connection is done', async (t) => {
  const { port } = await receiverWith(t, true, { rcpt: () => [421, '4.7.0 [TSS04] Messages temporarily deferred'] });
  const client = await SmtpClient.connect(options(port));
  t.after(() => client.close());
  const result = await client.send('a@sender.test', ['x@dest.test'], Buffer.from('Subject: x\r\n\r\nx\r\n'));
  assert.equal(result.ok, false);
  assert.equal(!result.ok && result.error.responseCode, 421);
  assert.match(!result.ok ? String(result.error.response) : '', /TSS04/);
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(client.usable, false);
});

test('a refused greeting fails the connect with its reply', async (t) => {
  const { port } = await receiverWith(t, true, { connect: () => [421, '4.7.0 Too many connections'] });
  await assert.rejects(SmtpClient.connect(options(port)), (err: { responseCode?: number; response?: string }) =>
    err.responseCode === 421 && /Too many connections/.test(String(err.response)));
});

test('no reply within the command timeout: ETIMEDOUT and the connection is unusable', async (t) => {
  const { port } = await receiverWith(t, true, { dataDelayMs: 3000 });
  const client = await SmtpClient.connect({ ...options(port), commandTimeout: 300 });
  t.after(() => client.close());
  const result = await client.send('a@sender.test', ['x@dest.test'], Buffer.from('Subject: x\r\n\r\nx\r\n'));
  assert.equal(!result.ok && result.error.code, 'ETIMEDOUT');
  assert.equal(client.usable, false);
});

test('STARTTLS when offered: the session is encrypted and mail flows over it', async (t) => {
  let secureSessions = 0;
  const server = new SMTPServer({
    authOptional: true, logger: false, disableReverseLookup: true, closeTimeout: 100,
    onData(stream, session, callback) {
      if (session.secure) secureSessions++;
      stream.resume();
      stream.on('end', () => callback(null, 'Ok: stored'));
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const client = await SmtpClient.connect({ ...options((server.server.address() as AddressInfo).port), servername: 'mx.dest.test' });
  t.after(() => client.close());
  assert.equal(client.secure, true);
  assert.equal(client.extensions.has('STARTTLS'), false, 'capabilities are read again after STARTTLS');
  const result = await client.send('a@sender.test', ['x@dest.test'], Buffer.from('Subject: x\r\n\r\nx\r\n'));
  assert.ok(result.ok);
  assert.equal(secureSessions, 1);
  assert.equal(client.tlsResumed, false, 'the first session with a server is a full handshake');
  const again = await SmtpClient.connect({ ...options((server.server.address() as AddressInfo).port), servername: 'mx.dest.test' });
  t.after(() => again.close());
  assert.equal(again.secure, true);
  assert.equal(again.tlsResumed, true, 'the next connection to the same server resumes the TLS session');
});

test('after STARTTLS: plaintext injected behind the 220 is refused, a silent handshake times out', async (t) => {
  for (const after of ['garbage', 'silence'] as const) {
    // a server that offers STARTTLS, says 220 to it, then cannot speak TLS
    const server = createServer((socket) => {
      socket.write('220 broken.test ESMTP\r\n');
      socket.on('data', (chunk) => {
        const line = chunk.toString();
        if (line.startsWith('EHLO')) socket.write('250-broken.test\r\n250 STARTTLS\r\n');
        else if (line.startsWith('STARTTLS')) socket.write(after === 'garbage' ? '220 go ahead\r\nthis is not TLS at all\r\n' : '220 go ahead\r\n');
      });
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => server.close());
    const port = (server.address() as AddressInfo).port;
    await assert.rejects(SmtpClient.connect({ ...options(port), commandTimeout: 500 }), (err: { code?: string; message: string }) =>
      (after === 'garbage' ? err.code === 'EPROTOCOL' && /without a reply code/.test(err.message) : err.code === 'ETLS' && /no handshake within 500 ms/.test(err.message)), after);
    // the delivery path's fallback after ETLS: the same host in clear
    const clear = await SmtpClient.connect({ ...options(port), commandTimeout: 500, starttls: false });
    assert.equal(clear.secure, false);
    assert.ok(clear.extensions.has('STARTTLS'), 'offered, and not used');
    clear.close();
  }
});
