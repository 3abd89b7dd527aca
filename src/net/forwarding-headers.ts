/**
 * The hops that proxies record in `Forwarded` (RFC 7239) and `X-Forwarded-For`, client first.
 * A hop is an address as written (no port, no brackets), or `null` where the header names none:
 * `for=unknown`, an obfuscated identifier (`for=_hidden`), an element without `for=`, garbage.
 * Which hops to believe is client-address.ts's business, not this file's.
 */
export type Hop = string | null;

/**
 * The `for=` node of each element of a `Forwarded` header (several header lines are one list),
 * or undefined when the header is malformed (an unterminated quote, a pair without `=`).
 */
export function forwardedHops(header: string | string[] | undefined): Hop[] | undefined {
  if (header === undefined) return [];
  const text = Array.isArray(header) ? header.join(',') : header;
  const hops: Hop[] = [];
  let forNode: Hop = null;
  let inElement = false;
  let i = 0;
  for (;;) {
    i = skipSpace(text, i);
    if (i >= text.length) break;
    if (text[i] === ',' || text[i] === ';') {
      // Empty pairs and elements are allowed by the grammar (`1#` lists, `*( ";" [ pair ] )`).
      if (text[i] === ',') {
        if (inElement) hops.push(forNode);
        forNode = null;
        inElement = false;
      }
      i++;
      continue;
    }
    const eq = text.indexOf('=', i);
    if (eq < 0) return undefined;
    const name = text.slice(i, eq).trim().toLowerCase();
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) return undefined;
    const value = readValue(text, eq + 1);
    if (!value) return undefined;
    if (name === 'for') forNode = nodeAddress(value.text);
    inElement = true;
    i = value.end;
    i = skipSpace(text, i);
    if (i < text.length && text[i] !== ',' && text[i] !== ';') return undefined;
  }
  if (inElement) hops.push(forNode);
  return hops;
}

/** The entries of `X-Forwarded-For` (several header lines are one list), client first. */
export function xForwardedForHops(header: string | string[] | undefined): Hop[] {
  if (header === undefined) return [];
  const text = Array.isArray(header) ? header.join(',') : header;
  return text.split(',').map((entry) => nodeAddress(entry.trim()));
}

/**
 * The address part of a node: `192.0.2.43`, `192.0.2.43:47011`, `[2001:db8::1]:4711`,
 * `2001:db8::1` (as X-Forwarded-For writes IPv6); null for anything that names no address.
 */
function nodeAddress(node: string): Hop {
  if (node === '' || node.toLowerCase() === 'unknown' || node.startsWith('_')) return null;
  if (node.startsWith('[')) {
    const close = node.indexOf(']');
    if (close < 0) return null;
    const rest = node.slice(close + 1);
    if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return null;
    return node.slice(1, close);
  }
  // One colon: an IPv4 address (or a name) with a port. More: an unbracketed IPv6 address.
  const colons = node.split(':').length - 1;
  if (colons === 1) return /^[^:]+:\d{1,5}$/.test(node) ? node.slice(0, node.indexOf(':')) : null;
  return node;
}

function readValue(text: string, from: number): { text: string; end: number } | undefined {
  let i = skipSpace(text, from);
  if (text[i] !== '"') {
    const start = i;
    while (i < text.length && !',; \t"'.includes(text[i]!)) i++;
    return i > start ? { text: text.slice(start, i), end: i } : undefined;
  }
  let value = '';
  for (i++; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') return { text: value, end: i + 1 };
    if (c === '\\') i++;
    if (i < text.length) value += text[i];
  }
  return undefined;
}

function skipSpace(text: string, i: number): number {
  while (i < text.length && (text[i] === ' ' || text[i] === '\t')) i++;
  return i;
}
