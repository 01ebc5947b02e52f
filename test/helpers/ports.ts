// A free TCP port on loopback for a server a test or benchmark starts (its own Redis, HAProxy,
// PostgreSQL, relay...): asked of the kernel, then released for the server to take.
import { createServer } from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
