// The loopback DNS server answers Node's own resolver the way a real authoritative server would.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Resolver } from 'node:dns/promises';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import { startDnsServer } from './dns-server.ts';

const long = `v=DKIM1; k=rsa; p=${'A'.repeat(400)}`;
const dns = await startDnsServer({
  'Example.COM.': { A: ['192.0.2.1'], MX: [{ priority: 10, exchange: 'mx.example.com' }], TXT: ['v=spf1 -all', ['part one ', 'part two']] },
  'sel._domainkey.example.com': { TXT: [long] },
  'ptr:192.0.2.1': { PTR: ['mail.example.com'] },
  '9.8.7.6.in-addr.arpa': { PTR: ['other.example.com'] },
  'ptr:2001:db8::1': { PTR: ['v6.example.com'] },
  'www.example.com': { CNAME: 'example.com' },
  '*.bl.example': { A: ['127.0.0.2'] },
  'big.example.com': { TXT: Array.from({ length: 20 }, (_, i) => `record ${i} ${'x'.repeat(60)}`) },
}, { servfail: ['broken.example.com'], delayMs: { 'slow.example.com': 3000 } });
after(() => dns.close());

function resolver(options: { timeout?: number; tries?: number } = {}): Resolver {
  const r = new Resolver(options);
  r.setServers([dns.address]);
  return r;
}

test('answers A, MX and TXT case-insensitively', async () => {
  const r = resolver();
  assert.deepEqual(await r.resolve4('example.com'), ['192.0.2.1']);
  assert.deepEqual((await r.resolveMx('EXAMPLE.com')).map(({ priority, exchange }) => ({ priority, exchange })), [{ priority: 10, exchange: 'mx.example.com' }]);
  assert.deepEqual(await r.resolveTxt('example.com'), [['v=spf1 -all'], ['part one ', 'part two']]);
});

test('splits TXT strings longer than 255 bytes into character-strings', async () => {
  const [record] = await resolver().resolveTxt('sel._domainkey.example.com');
  assert.deepEqual(record.map((s) => s.length), [255, long.length - 255]);
  assert.equal(record.join(''), long);
});

test('NXDOMAIN for unknown names, NODATA for a known name without the type', async () => {
  const r = resolver();
  await assert.rejects(r.resolve4('nope.example.com'), { code: 'ENOTFOUND' });
  await assert.rejects(r.resolveTxt('mail.example.org'), { code: 'ENOTFOUND' });
  await assert.rejects(r.resolve6('example.com'), { code: 'ENODATA' });
});

test('PTR by reverse name or by the ptr:IP shorthand, IPv4 and IPv6', async () => {
  const r = resolver();
  assert.deepEqual(await r.reverse('192.0.2.1'), ['mail.example.com']);
  assert.deepEqual(await r.reverse('6.7.8.9'), ['other.example.com']);
  assert.deepEqual(await r.reverse('2001:db8::1'), ['v6.example.com']);
});

test('follows a CNAME inside the zone and serves wildcards', async () => {
  const r = resolver();
  assert.deepEqual(await r.resolve4('www.example.com'), ['192.0.2.1']);
  assert.deepEqual(await r.resolve4('2.0.0.127.bl.example'), ['127.0.0.2']);
});

test('large answers are truncated over UDP and complete over TCP', async () => {
  // Node falls back to TCP on TC; all 20 records arrive.
  assert.equal((await resolver().resolveTxt('big.example.com')).length, 20);
  // Over plain UDP without EDNS the server sets TC.
  const { default: dgram } = await import('node:dgram');
  const sock = dgram.createSocket('udp4');
  const reply = await new Promise<Buffer>((resolve) => {
    sock.once('message', resolve);
    sock.send(dnsPacket.encode({ type: 'query', id: 7, questions: [{ type: 'TXT', name: 'big.example.com' }] }), dns.port, dns.host);
  });
  sock.close();
  assert.equal(dnsPacket.decode(reply).flag_tc, true);
});

test('TCP answers several length-prefixed queries on one connection', async () => {
  const socket = net.connect(dns.port, dns.host);
  const frame = (id: number) => {
    const q = dnsPacket.encode({ type: 'query', id, questions: [{ type: 'A', name: 'example.com' }] });
    const prefix = Buffer.alloc(2);
    prefix.writeUInt16BE(q.length);
    return Buffer.concat([prefix, q]);
  };
  socket.write(Buffer.concat([frame(1), frame(2)]));
  let data = Buffer.alloc(0);
  const ids: number[] = [];
  await new Promise<void>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      while (data.length >= 2 && data.length >= 2 + data.readUInt16BE(0)) {
        ids.push(dnsPacket.decode(data.subarray(2, 2 + data.readUInt16BE(0))).id!);
        data = data.subarray(2 + data.readUInt16BE(0));
      }
      if (ids.length === 2) resolve();
    });
  });
  socket.destroy();
  assert.deepEqual(ids.sort(), [1, 2]);
});

test('SERVFAIL names and delayed names', async () => {
  await assert.rejects(resolver({ tries: 1 }).resolveTxt('broken.example.com'), { code: 'ESERVFAIL' });
  await assert.rejects(resolver({ timeout: 200, tries: 1 }).resolveTxt('slow.example.com'), { code: 'ETIMEOUT' });
});

test('set() adds, replaces and removes names; queries counts answers', async () => {
  const r = resolver();
  const before = dns.queries;
  dns.set('new.example.com', { A: ['192.0.2.9'] });
  assert.deepEqual(await r.resolve4('new.example.com'), ['192.0.2.9']);
  dns.set('NEW.example.com.', { A: ['192.0.2.10'] });
  assert.deepEqual(await r.resolve4('new.example.com'), ['192.0.2.10']);
  dns.set('new.example.com', undefined);
  await assert.rejects(r.resolve4('new.example.com'), { code: 'ENOTFOUND' });
  assert.ok(dns.queries >= before + 3, `queries went from ${before} to ${dns.queries}`);
});

test('lookup callback answers names the zone does not hold; ttl and host are the caller\'s', async () => {
  const asked: string[] = [];
  const computed = await startDnsServer({ 'fixed.example': { A: ['192.0.2.7'] } }, {
    host: '127.0.0.3', ttl: 300,
    lookup: (name) => {
      asked.push(name);
      const m = /^host(\d+)\.computed\.example$/.exec(name);
      if (m) return { A: [`192.0.2.${m[1]}`] };
      return name === '9.2.0.192.in-addr.arpa' ? { PTR: ['host9.computed.example'] } : undefined;
    },
  });
  try {
    assert.equal(computed.address, `127.0.0.3:${computed.port}`);
    const r = new Resolver({ tries: 1 });
    r.setServers([computed.address]);
    assert.deepEqual(await r.resolve4('Host42.Computed.Example.', { ttl: true }), [{ address: '192.0.2.42', ttl: 300 }]);
    assert.deepEqual(await r.resolve4('fixed.example'), ['192.0.2.7']);
    assert.deepEqual(await r.resolvePtr('9.2.0.192.in-addr.arpa'), ['host9.computed.example']);
    await assert.rejects(r.resolve4('other.example'), { code: 'ENOTFOUND' });
    assert.ok(asked.includes('host42.computed.example'), 'the callback gets the normalized name');
    assert.ok(!asked.includes('fixed.example'), 'the zone answers first');
  } finally {
    await computed.close();
  }
});
