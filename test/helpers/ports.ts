// A free TCP port on loopback for a server a test or benchmark starts (its own Redis, HAProxy,
// PostgreSQL, rspamd, relay...): checked free, then released for the server to take. The port is
// picked at random below the kernel's ephemeral range (ip_local_port_range): a port the kernel
// hands out itself (listen on 0) can be taken again, before the server binds it, as the source
// port of any outgoing connection of a test running beside it (seen in CI: rspamd's bind failing
// with "Address already in use"); below that range only another explicit bind can take it.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Where the kernel's ephemeral ports start (Linux's default when it cannot be read). */
function ephemeralStart(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32768;
  } catch {
    return 32768;
  }
}

const LOWEST = 20_000;
const TRIES = 50;

function listenOnce(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => {
      const { port: bound } = server.address() as { port: number };
      server.close(() => resolve(bound));
    });
  });
}

export async function freePort(): Promise<number> {
  const below = ephemeralStart();
  if (below - LOWEST >= 1000) {
    for (let i = 0; i < TRIES; i++) {
      const port = await listenOnce(LOWEST + Math.floor(Math.random() * (below - LOWEST)));
      if (port !== undefined) return port;
    }
  }
  const port = await listenOnce(0); // no room below the ephemeral range: the kernel's choice
  if (port === undefined) throw new Error('no free TCP port on 127.0.0.1');
  return port;
}
