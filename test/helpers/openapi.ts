import assert from 'node:assert/strict';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { parse as parseYaml } from 'yaml';
import { eventually } from './server.js';

// ajv-formats is CommonJS: under NodeNext its default import is the module object.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

const specFile = fileURLToPath(new URL('../../../openapi.yaml', import.meta.url));
const SPEC_ID = 'https://tandem.local/openapi.json';

interface OpenApiDoc {
  paths: Record<string, Record<string, { responses: Record<string, ResponseObject> }>>;
  components: { responses: Record<string, ResponseObject> };
}
interface ResponseObject {
  $ref?: string;
  headers?: Record<string, unknown>;
  content?: Record<string, { schema: unknown }>;
}

let cached: { doc: OpenApiDoc; ajv: Ajv2020; validators: Map<string, ValidateFunction> } | undefined;
function load() {
  if (!cached) {
    const doc = parseYaml(fs.readFileSync(specFile, 'utf8')) as OpenApiDoc;
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats(ajv);
    ajv.addSchema({ ...doc, $id: SPEC_ID });
    cached = { doc, ajv, validators: new Map() };
  }
  return cached;
}

const pointer = (...parts: string[]) => parts.map((p) => p.replaceAll('~', '~0').replaceAll('/', '~1')).join('/');

/** The path template of openapi.yaml that `path` (no query) matches, e.g. /api/sessions/{id}. */
function templateOf(doc: OpenApiDoc, path: string): string {
  for (const template of Object.keys(doc.paths)) {
    const re = new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`);
    if (re.test(path)) return template;
  }
  throw new Error(`openapi.yaml documents no path matching ${path}`);
}

/**
 * Throws unless this response is one openapi.yaml documents for the operation: its status is
 * listed, its media type is the documented one, and its body matches the documented schema.
 */
export function assertResponseMatchesSpec(method: string, url: string, status: number, contentType: string | null, body: unknown): void {
  const { doc, ajv, validators } = load();
  const path = new URL(url, 'http://x').pathname;
  const template = templateOf(doc, path);
  const op = doc.paths[template]![method.toLowerCase()];
  if (!op) throw new Error(`openapi.yaml documents no ${method} ${template}`);
  let response = op.responses[String(status)];
  let base = pointer('paths', template, method.toLowerCase(), 'responses', String(status));
  if (!response) throw new Error(`openapi.yaml documents no ${status} for ${method} ${template}; body ${JSON.stringify(body)}`);
  if (response.$ref) {
    const name = response.$ref.replace('#/components/responses/', '');
    response = doc.components.responses[name]!;
    base = pointer('components', 'responses', name);
  }
  const mediaType = (contentType ?? '').split(';')[0]!.trim();
  const media = response.content?.[mediaType];
  if (!media) {
    throw new Error(`${method} ${template} ${status}: content type ${mediaType} is not documented (${Object.keys(response.content ?? {}).join(', ')})`);
  }
  const ref = `${SPEC_ID}#/${base}/${pointer('content', mediaType, 'schema')}`;
  let validate = validators.get(ref);
  if (!validate) {
    validate = ajv.compile({ $ref: ref });
    validators.set(ref, validate);
  }
  if (!validate(body)) {
    throw new Error(`${method} ${url} ${status} does not match openapi.yaml: ${ajv.errorsText(validate.errors)} in ${JSON.stringify(body)}`);
  }
}

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

/**
 * Calls the REST API of a test server and checks the response against openapi.yaml before
 * returning it (every test that talks REST goes through here).
 */
export async function api<T = any>(
  baseUrl: string,
  method: string,
  path: string,
  opts: { token?: string; headers?: Record<string, string>; body?: string | Uint8Array | ReadableStream<Uint8Array> } = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  // A stream body goes out chunked (no Content-Length); fetch wants `duplex` for it.
  const init = { method, headers, body: opts.body, duplex: 'half' } as RequestInit;
  const res = await fetch(baseUrl + path, init);
  const text = await res.text();
  const contentType = res.headers.get('content-type');
  const body = /json/.test(contentType ?? '') ? JSON.parse(text) : text;
  assertResponseMatchesSpec(method, path, res.status, contentType, body);
  if (res.status === 401 && !res.headers.get('www-authenticate')?.startsWith('Bearer')) {
    throw new Error(`${method} ${path}: 401 without a Bearer WWW-Authenticate header`);
  }
  if (/^(application\/problem\+json)/.test(contentType ?? '') && /\bat .+:\d+:\d+/.test(text)) {
    throw new Error(`${method} ${path}: problem document carries a stack trace: ${text}`);
  }
  return { status: res.status, headers: res.headers, body: body as T };
}

/**
 * `GET /api/sessions/:id` once the session has ended (no longer `stopping`). A client's `stopped`
 * comes before that: the session counts as ended, with its summary, only once its spool folder is
 * gone (openapi.yaml: SessionDetail.summary).
 */
export async function endedSession(baseUrl: string, id: string): Promise<any> {
  let body: any;
  await eventually(async () => {
    const res = await api(baseUrl, 'GET', `/api/sessions/${id}`, { headers: { connection: 'close' } });
    assert.equal(res.status, 200);
    body = res.body;
    return body.state !== 'stopping';
  }, `session ${id} ended`);
  return body;
}

/** Throws unless `value` matches the schema openapi.yaml names `components/schemas/<name>`. */
export function assertMatchesSchema(name: string, value: unknown): void {
  const { ajv, validators } = load();
  const ref = `${SPEC_ID}#/${pointer('components', 'schemas', name)}`;
  let validate = validators.get(ref);
  if (!validate) {
    validate = ajv.compile({ $ref: ref });
    validators.set(ref, validate);
  }
  if (!validate(value)) throw new Error(`does not match openapi.yaml's ${name}: ${ajv.errorsText(validate.errors)} in ${JSON.stringify(value).slice(0, 500)}`);
}
