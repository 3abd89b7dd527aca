/**
 * Seeded generators of hostile input for the fuzz test: WebSocket frames and REST requests.
 * Everything is drawn from a Rng, so a seed reproduces a run exactly.
 */

/** mulberry32: a tiny, fast, seedable PRNG (32-bit state); good enough to pick test cases. */
export class Rng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(0, 255);
    return out;
  }

  /** A string of `n` code points from all over Unicode: controls, lone surrogates, astral, RTL marks, NUL. */
  unicode(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) {
      const kind = this.int(0, 5);
      if (kind === 0) s += String.fromCharCode(this.int(0, 0x1f));
      else if (kind === 1) s += String.fromCharCode(this.int(0xd800, 0xdfff));
      else if (kind === 2) s += String.fromCodePoint(this.int(0x1f300, 0x1faff));
      else if (kind === 3) s += this.pick(['\u202e', '\u200b', '\ufeff', '\u0000', '\\', '"', '%', '\u2028']);
      else s += String.fromCharCode(this.int(0x20, 0x7e));
    }
    return s;
  }
}

/** A WebSocket frame to send: text (possibly not valid UTF-8) or binary. */
export interface Frame {
  data: string | Uint8Array;
  binary: boolean;
  /** What kind of garbage it is, for failure messages. */
  kind: string;
  /** It may end the connection (STOP, oversize, not UTF-8) or start a session: wait for the answer before the next. */
  awaitAnswer?: boolean;
}

const PIPELINES = ['demo', 'tail', 'nope', '', 'DEMO', '../demo', 'demo\u0000', 'a'.repeat(65), '__proto__', 'constructor'];
const URLS = ['', 'file:///etc/passwd', 'file://%', 'file:///../../x', 'http://127.0.0.1/', 'file:', '\u0000', 'file:///' + 'a/'.repeat(500)];

function weirdValue(rng: Rng, depth = 0): unknown {
  switch (rng.int(0, 11)) {
    case 0:
      return rng.pick([1e308, -1e308, 2 ** 53 + 1, -0, 0.1, 3.5, -1, 2 ** 31, 1e-320]);
    case 1:
      return rng.unicode(rng.int(0, 20));
    case 2:
      return null;
    case 3:
      return rng.chance(0.5);
    case 4:
      return depth < 3 ? Array.from({ length: rng.int(0, 4) }, () => weirdValue(rng, depth + 1)) : [];
    case 5:
      return depth < 3 ? { [rng.pick(['intervalMs', 'filter', '__proto__', 'constructor', rng.unicode(3)])]: weirdValue(rng, depth + 1) } : {};
    case 6:
      return rng.int(-5, 5000);
    case 7:
      return rng.pick(['START', 'STOP', 'RESUME', 'start', 'S\u0000TART']);
    default:
      return rng.int(0, 100);
  }
}

/** Raw JSON text with a number JSON.parse turns into Infinity, -0, or a precision loss. */
function hugeNumberText(rng: Rng): string {
  const n = rng.pick(['1e400', '-1e400', '1' + '0'.repeat(400), '-0', '1e-400', '123456789012345678901234567890', '0.' + '9'.repeat(300)]);
  return rng.pick([
    `{"command":"START","options":{"intervalMs":${n}}}`,
    `{"command":"START","pipeline":"demo","options":{"intervalMs":${n}}}`,
    `{"command":${n}}`,
    `{"command":"START","keep":${n}}`,
    `[${n}]`,
    n,
  ]);
}

function validLooking(rng: Rng): Record<string, unknown> {
  const msg: Record<string, unknown> = { command: rng.pick(['START', 'STOP', 'RESUME']) };
  if (rng.chance(0.6)) msg.pipeline = rng.chance(0.5) ? 'demo' : rng.pick(PIPELINES);
  if (rng.chance(0.5)) msg.options = rng.chance(0.4) ? { intervalMs: rng.int(0, 50) } : weirdValue(rng);
  if (rng.chance(0.3)) msg.url = rng.chance(0.5) ? rng.pick(URLS) : weirdValue(rng);
  if (rng.chance(0.2)) msg.keep = weirdValue(rng);
  if (rng.chance(0.2)) msg[rng.pick(['session', 'after', 'extra', '__proto__', rng.unicode(4)])] = weirdValue(rng);
  return msg;
}

/**
 * One hostile frame. `maxMessageBytes` lets some frames be just over the limit (close 1009 is
 * the right answer to those).
 */
export function wsFrame(rng: Rng, maxMessageBytes: number): Frame {
  // Kinds 1, 9 and 13 end the connection; they are drawn less often so that most frames land on an open one.
  const frame = pickFrame(rng, rng.chance(0.9) ? rng.pick([0, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12]) : rng.pick([1, 9, 13]), maxMessageBytes);
  return frame;
}

function pickFrame(rng: Rng, kind: number, maxMessageBytes: number): Frame {
  switch (kind) {
    case 0:
      return { kind: 'random bytes (binary)', binary: true, data: rng.bytes(rng.int(0, 300)) };
    case 1:
      // Most random bytes are not UTF-8: a text frame of them must be closed 1007 by ws.
      return { kind: 'random bytes (text)', binary: false, data: rng.bytes(rng.int(1, 300)), awaitAnswer: true };
    case 2: {
      const full = JSON.stringify(validLooking(rng));
      return { kind: 'truncated JSON', binary: false, data: full.slice(0, rng.int(0, full.length - 1)) };
    }
    case 3:
      return { kind: 'huge numbers', binary: false, data: hugeNumberText(rng) };
    case 4:
      return {
        kind: 'wrong types',
        binary: false,
        data: JSON.stringify({ command: weirdValue(rng), pipeline: weirdValue(rng), options: weirdValue(rng), url: weirdValue(rng), keep: weirdValue(rng) }),
      };
    case 5: {
      const depth = rng.int(100, Math.floor(maxMessageBytes / 2) - 50);
      const open = rng.chance(0.5) ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth / 5) + '1' + '}'.repeat(depth / 5);
      return { kind: 'deep nesting', binary: false, data: rng.chance(0.5) ? open : `{"command":"START","options":${open}}`.slice(0, maxMessageBytes) };
    }
    case 6:
      return { kind: 'unicode', binary: false, data: JSON.stringify({ command: rng.unicode(rng.int(0, 10)), pipeline: rng.unicode(rng.int(0, 70)) }) };
    case 7:
      return { kind: 'unicode text', binary: false, data: rng.unicode(rng.int(0, 200)) };
    case 8:
      return { kind: 'valid-looking JSON (binary)', binary: true, data: new TextEncoder().encode(JSON.stringify(validLooking(rng))) };
    case 9:
      return { kind: 'oversize', binary: rng.chance(0.5), data: 'x'.repeat(maxMessageBytes + rng.int(1, 1000)), awaitAnswer: true };
    case 10:
      return { kind: 'JSON that is not an object', binary: false, data: rng.pick(['null', '[]', '"START"', '42', 'true', '', ' ', '\n', '{}', '{"command":null}']) };
    case 11:
      return { kind: 'prototype pollution', binary: false, data: rng.pick([
        '{"command":"START","options":{"__proto__":{"intervalMs":1}}}',
        '{"__proto__":{"command":"START"}}',
        '{"command":"START","constructor":{"prototype":{"x":1}}}',
        '{"command":"START","pipeline":"demo","options":{"constructor":{"prototype":{"intervalMs":1}}}}',
      ]) };
    case 12:
      return { kind: 'START', binary: false, data: JSON.stringify({ command: 'START', pipeline: 'demo', options: { intervalMs: rng.int(0, 20) } }), awaitAnswer: true };
    default:
      return { kind: 'STOP', binary: false, data: JSON.stringify({ command: 'STOP' }), awaitAnswer: true };
  }
}

/** One hostile HTTP request, as raw as node:http allows. */
export interface HttpCase {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Uint8Array | null;
}

const METHODS = ['GET', 'GET', 'GET', 'POST', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE', 'PROPFIND', 'M-SEARCH'];
const TYPES = ['application/json', 'application/json; charset=utf-16', 'application/json; charset=latin1', 'text/plain', 'application/problem+json', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded', '*/*', 'invalid', ''];
const QUERY_KEYS = ['limit', 'cursor', 'state', 'pipeline', 'timeout', 'verbose', '__proto__', 'constructor', 'limit[a]', 'state[]', 'a[b][c][d]'];

/** Percent-encodes (as UTF-8, lone surrogates included) everything but unreserved characters. */
function pathSafe(s: string): string {
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function uuidLike(rng: Rng): string {
  const hex = Buffer.from(rng.bytes(16)).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

function randomSegment(rng: Rng): string {
  return rng.pick([
    () => pathSafe(rng.unicode(rng.int(1, 12))),
    () => '%' + rng.pick(['ZZ', 'C0', 'FF', '00', '2e%2e', 'E2%82']),
    () => '..',
    () => '',
    () => uuidLike(rng),
    () => 'a'.repeat(rng.int(1, 3000)),
  ])();
}

export function httpCase(rng: Rng, sessionIds: readonly string[], maxBodyBytes: number): HttpCase {
  const id = sessionIds.length > 0 && rng.chance(0.5) ? rng.pick(sessionIds) : randomSegment(rng);
  let path = rng.pick([
    '/api/sessions',
    `/api/sessions/${id}`,
    `/api/sessions/${id}/stop`,
    '/api/pool',
    '/api/pipelines',
    '/api/spools',
    `/api/spools/${id}`,
    '/api/',
    '/api',
    '/livez',
    '/readyz',
    '/metrics',
    '/openapi.json',
    '/openapi.yaml',
    '/docs/',
    '/',
    '//api//sessions',
    `/api/${randomSegment(rng)}`,
    `/${randomSegment(rng)}/${randomSegment(rng)}`,
  ]);
  if (rng.chance(0.5)) {
    const pairs = Array.from({ length: rng.int(1, 4) }, () => {
      const key = rng.chance(0.8) ? rng.pick(QUERY_KEYS) : pathSafe(rng.unicode(3));
      const value = rng.pick([
        () => String(rng.int(-10, 1000)),
        () => rng.pick(['1e400', 'Infinity', 'NaN', '-0', '0x10', '1.5', '', '+5', '%205', 'running', 'demo', '%ZZ', '%', '%C0%AF']),
        () => pathSafe(rng.unicode(rng.int(0, 20))),
        () => Buffer.from(rng.bytes(rng.int(0, 60))).toString('base64url'),
      ])();
      return `${key}=${value}`;
    });
    path += '?' + pairs.join('&');
  }
  const headers: Record<string, string> = {};
  if (rng.chance(0.3)) headers.accept = rng.pick(['application/json', 'text/html', 'application/xml', '*/*', 'application/problem+json', 'x']);
  if (rng.chance(0.2)) headers.authorization = rng.pick(['Bearer', 'Bearer x', 'Basic YTpi', 'Bearer ' + 'a'.repeat(200), 'bearer  two words']);
  let body: Uint8Array | null = null;
  if (rng.chance(0.4)) {
    const type = rng.pick(TYPES);
    if (type) headers['content-type'] = type;
    body = rng.pick([
      () => new TextEncoder().encode(JSON.stringify(weirdValue(rng))),
      () => new TextEncoder().encode('{"timeout":' + rng.pick(['1', '1e400', '"x"', '{'])),
      () => rng.bytes(rng.int(1, 500)),
      () => new Uint8Array(maxBodyBytes + rng.int(1, 5000)).fill(0x20),
      () => new TextEncoder().encode(rng.unicode(rng.int(1, 100))),
    ])();
  }
  // Without a length node would send a GET's body unframed, and the server would parse it as a request.
  if (body) headers['content-length'] = String(body.length);
  return { method: rng.pick(METHODS), path, headers, body };
}
