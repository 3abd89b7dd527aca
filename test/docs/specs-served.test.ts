import assert from 'node:assert/strict';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { ERRORS, type ErrorCode } from '../../src/errors.js';
import { api, assertMatchesSchema } from '../helpers/openapi.js';
import { startServer, type TestServer } from '../helpers/server.js';

const file = (name: string) => fs.readFileSync(fileURLToPath(new URL(`../../../${name}`, import.meta.url)), 'utf8');

describe('the specs the service serves', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  it('serves asyncapi.yaml as written and as JSON, and links both from the REST description /docs shows', async () => {
    const yaml = await api(server.httpUrl(''), 'GET', '/asyncapi.yaml');
    assert.equal(yaml.status, 200);
    assert.equal(yaml.body, file('asyncapi.yaml'));
    const json = await api(server.httpUrl(''), 'GET', '/asyncapi.json');
    assert.deepEqual(json.body, parseYaml(file('asyncapi.yaml')));
    const openapi = await api(server.httpUrl(''), 'GET', '/openapi.json');
    assert.match(openapi.body.info.description, /\[asyncapi\.yaml\]\(\/asyncapi\.yaml\)/);
    assert.match(openapi.body.info.description, /\[asyncapi\.json\]\(\/asyncapi\.json\)/);
  });
});

describe('openapi.yaml\'s example error bodies', () => {
  const doc = parseYaml(file('openapi.yaml')) as {
    components: { responses: Record<string, { content?: Record<string, { example?: any; schema: { $ref: string } }> }> };
    paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { example?: any; schema: { $ref: string } }> }> }>>;
  };
  const examples: { where: string; status: string | null; example: any; schema: string }[] = [];
  for (const [name, r] of Object.entries(doc.components.responses)) {
    const media = r.content?.['application/problem+json'];
    if (media) examples.push({ where: `components/responses/${name}`, status: null, example: media.example, schema: media.schema.$ref.split('/').pop()! });
  }
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      for (const [status, r] of Object.entries(op.responses ?? {})) {
        const media = r.content?.['application/problem+json'];
        if (media) examples.push({ where: `${method.toUpperCase()} ${path} ${status}`, status, example: media.example, schema: media.schema.$ref.split('/').pop()! });
      }
    }
  }

  it('are real ones: every problem response has an example the service could send, with its code\'s status and title', () => {
    assert.ok(examples.length >= 8);
    for (const { where, status, example, schema } of examples) {
      assert.ok(example, `${where} has an example (else Swagger makes one up from the schema's patterns)`);
      assertMatchesSchema(schema, example);
      const spec = ERRORS[example.code as ErrorCode];
      assert.ok(spec, `${where}: ${example.code} is a code of src/errors.ts`);
      assert.equal(example.status, spec.status, `${where}: status of ${example.code}`);
      assert.equal(example.title, spec.title, `${where}: title of ${example.code}`);
      assert.equal(example.type, `urn:tandem:problem:${example.code}`);
      if (status) assert.equal(String(example.status), status, `${where}: the example's status is the response's`);
    }
    // Every shared response is used under its own status.
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        for (const [status, r] of Object.entries(op.responses ?? {}) as [string, { $ref?: string }][]) {
          if (!r.$ref) continue;
          const name = r.$ref.split('/').pop()!;
          const shared = examples.find((e) => e.where === `components/responses/${name}`);
          if (shared) assert.equal(String(shared.example.status), status, `${method.toUpperCase()} ${path} ${status} uses ${name}, whose example is a ${shared.example.status}`);
        }
      }
    }
  });
});
