import net from 'node:net';

/** One trusted range: an address is in it when its first `prefixBits` bits equal `network`'s. */
export interface AddressRange {
  readonly family: 4 | 6;
  readonly network: bigint;
  readonly prefixBits: number;
}

/**
 * The proxies whose forwarding headers are believed (TRUST_PROXY). Plain data (bigints, no typed
 * arrays) so that the frozen Config can hold it.
 */
export interface TrustProxy {
  readonly ranges: readonly AddressRange[];
}

/** What `loopback` in TRUST_PROXY stands for. */
const LOOPBACK = ['127.0.0.0/8', '::1/128'];

/**
 * Parses TRUST_PROXY: a comma list of addresses (`10.0.0.7`, `::1`) and CIDR blocks
 * (`10.0.0.0/8`, `fd00::/8`), or `loopback` (127.0.0.0/8 and ::1).
 * @throws Error naming the first entry that is neither.
 */
export function parseTrustProxy(value: string): TrustProxy {
  const entries = value
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);
  if (entries.length === 0) throw new Error('names no proxy: give addresses, CIDR blocks or `loopback`, comma-separated');
  const ranges: AddressRange[] = [];
  for (const entry of entries) {
    if (entry.toLowerCase() === 'loopback') {
      ranges.push(...LOOPBACK.map((r) => parseRange(r)!));
      continue;
    }
    const range = parseRange(entry);
    if (!range) throw new Error(`${JSON.stringify(entry)} is not an IPv4/IPv6 address, a CIDR block (10.0.0.0/8, fd00::/8) or \`loopback\``);
    ranges.push(range);
  }
  return { ranges };
}

/** True when `address` (as a socket or a forwarding header gives it) lies in a trusted range. */
export function isTrusted(trust: TrustProxy, address: string): boolean {
  const ip = parseAddress(address);
  if (!ip) return false;
  return trust.ranges.some((r) => r.family === ip.family && r.network === maskTo(ip.value, ip.family, r.prefixBits));
}

/**
 * The canonical text of an IP address (IPv4-mapped IPv6 as plain IPv4, IPv6 compressed and in
 * lower case), so one client is one key however a proxy spelled it; undefined when not an address.
 */
export function canonicalAddress(address: string): string | undefined {
  const ip = parseAddress(address);
  if (!ip) return undefined;
  return ip.family === 4 ? formatV4(ip.value) : new URL(`http://[${address.trim()}]`).hostname.slice(1, -1);
}

function parseRange(entry: string): AddressRange | undefined {
  const slash = entry.indexOf('/');
  const ip = parseAddress(slash < 0 ? entry : entry.slice(0, slash));
  if (!ip) return undefined;
  const width = ip.family === 4 && !ip.mapped ? 32 : 128;
  let prefixBits = width;
  if (slash >= 0) {
    const bits = entry.slice(slash + 1);
    if (!/^\d{1,3}$/.test(bits) || Number(bits) > width) return undefined;
    prefixBits = Number(bits);
    // An IPv4-mapped block (::ffff:10.0.0.0/104) is the IPv4 block it maps.
    if (ip.mapped) prefixBits -= 96;
    if (prefixBits < 0) return undefined;
  } else if (ip.mapped) {
    prefixBits = 32;
  }
  return { family: ip.family, network: maskTo(ip.value, ip.family, prefixBits), prefixBits };
}

interface ParsedAddress {
  family: 4 | 6;
  value: bigint;
  /** Written as IPv4-mapped IPv6 (::ffff:a.b.c.d), taken as the IPv4 address. */
  mapped: boolean;
}

function parseAddress(text: string): ParsedAddress | undefined {
  const a = text.trim();
  if (net.isIPv4(a)) return { family: 4, value: v4Value(a), mapped: false };
  if (!net.isIPv6(a) || a.includes('%')) return undefined;
  const value = v6Value(a);
  if (value >> 32n === 0xffffn) return { family: 4, value: value & 0xffffffffn, mapped: true };
  return { family: 6, value, mapped: false };
}

function v4Value(a: string): bigint {
  return a.split('.').reduce((n, part) => (n << 8n) | BigInt(Number(part)), 0n);
}

function v6Value(a: string): bigint {
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hextets.
  let text = a.toLowerCase();
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = v4Value(v4[1]!);
    text = text.slice(0, -v4[1]!.length) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const hextets = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return hextets.reduce((n, h) => (n << 16n) | BigInt(parseInt(h, 16)), 0n);
}

function maskTo(value: bigint, family: 4 | 6, prefixBits: number): bigint {
  const width = BigInt(family === 4 ? 32 : 128);
  const hostBits = width - BigInt(prefixBits);
  return (value >> hostBits) << hostBits;
}

function formatV4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.');
}
