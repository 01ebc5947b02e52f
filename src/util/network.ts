// Address helpers shared by the SMTP listener and the HTTP API.
import { BlockList, isIP } from 'node:net';

/** "::ffff:127.0.0.1" → "127.0.0.1": IPv4 clients on a dual-stack socket look like IPv6. */
export function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/** Parses CIDR strings ("127.0.0.0/8", "::1/128", "10.1.2.3") into a BlockList; returns the bad entry on error. */
export function cidrList(cidrs: string[]): { list: BlockList } | { bad: string } {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [address, bits, extra] = cidr.split('/');
    const family = isIP(address);
    const prefix = bits === undefined ? (family === 6 ? 128 : 32) : Number(bits);
    if (!family || extra !== undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 6 ? 128 : 32)) {
      return { bad: cidr };
    }
    list.addSubnet(address, prefix, family === 6 ? 'ipv6' : 'ipv4');
  }
  return { list };
}

export function inList(list: BlockList, address: string): boolean {
  const plain = plainAddress(address);
  const family = isIP(plain);
  return family !== 0 && list.check(plain, family === 6 ? 'ipv6' : 'ipv4');
}
