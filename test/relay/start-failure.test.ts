// A relay whose HTTP address is taken fails to start with the error, and leaves nothing open
// behind it: its SMTP listener is closed again, so a supervisor sees the failure and the process
// can exit instead of hanging with half a relay.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect } from 'node:net';
import { freePort } from '../helpers/ports.ts';
import { startTestRelay } from '../helpers/relay.ts';

test('a relay that cannot bind its HTTP address fails to start and closes its SMTP listener again', async (t) => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.after(() => taken.close());
  const httpPort = (taken.address() as { port: number }).port;
  const smtpPort = await freePort();
  await assert.rejects(startTestRelay('', { smtp: `127.0.0.1:${smtpPort}`, http: `127.0.0.1:${httpPort}` }), /EADDRINUSE/);
  const refused = await new Promise<boolean>((resolve) => {
    const socket = connect(smtpPort, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); resolve(false); });
    socket.once('error', () => resolve(true));
  });
  assert.ok(refused, 'nothing listens on the SMTP port any more');
});
