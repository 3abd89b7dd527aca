import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';

/** openapi.yaml at the repository root: the only description of the REST API. */
export const OPENAPI_FILE = fileURLToPath(new URL('../../../openapi.yaml', import.meta.url));

export interface OpenApiSpec {
  /** The file as written, served at /openapi.yaml (or /asyncapi.yaml). */
  readonly yaml: string;
  /** Parsed once; handed to the validator and Swagger UI (each gets its own copy). */
  readonly document: Record<string, unknown>;
}

/** asyncapi.yaml at the repository root: the only description of the WebSocket protocol. */
export const ASYNCAPI_FILE = fileURLToPath(new URL('../../../asyncapi.yaml', import.meta.url));

/** Reads and parses openapi.yaml (once per app); `loadOpenApi(ASYNCAPI_FILE)` reads the protocol's. */
export function loadOpenApi(file = OPENAPI_FILE): OpenApiSpec {
  const yaml = fs.readFileSync(file, 'utf8');
  return { yaml, document: parseYaml(yaml) as Record<string, unknown> };
}
