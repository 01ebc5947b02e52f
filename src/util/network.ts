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

/**
 * The network a client address belongs to for per-network connection limits: its /24 for IPv4
 * ("192.0.2.0/24"), its /64 for IPv6 ("2001:db8:1:2::/64"), the usual size of one customer's
 * allocation. Anything else stands for itself.
 */
export function networkOf(address: string): string {
  const plain = plainAddress(address);
  const family = isIP(plain);
  if (family === 4) return `${plain.slice(0, plain.lastIndexOf('.'))}.0/24`;
  if (family !== 6) return plain;
  return `${ipv6Groups(plain).slice(0, 4).map((group) => group.toString(16)).join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address ("::" expanded, a dotted IPv4 tail as two groups, a zone dropped). */
function ipv6Groups(address: string): number[] {
  let text = address.split('%')[0].toLowerCase();
  const tail: number[] = [];
  const dotted = /(?:^|:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted[1].split('.').map(Number);
    tail.push((a << 8) | b, (c << 8) | d);
    text = text.slice(0, text.length - dotted[1].length);
    if (text.endsWith(':') && !text.endsWith('::')) text = text.slice(0, -1);
  }
  const [head, rest] = text.split('::');
  const parse = (part: string | undefined) => (part ? part.split(':').map((group) => parseInt(group, 16)) : []);
  const front = parse(head);
  const back = [...parse(rest), ...tail];
  const zeros = rest === undefined ? [] : new Array<number>(8 - front.length - back.length).fill(0);
  return [...front, ...zeros, ...back];
}
