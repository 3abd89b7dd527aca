import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';

/** openapi.yaml at the repository root: the only description of the REST API. */
export const OPENAPI_FILE = fileURLToPath(new URL('../../../openapi.yaml', import.meta.url));

export interface OpenApiSpec {
  /** The file as written, served at /openapi.yaml. */
  readonly yaml: string;
  /** Parsed once; handed to the validator and Swagger UI (each gets its own copy). */
  readonly document: Record<string, unknown>;
}

/** Reads and parses openapi.yaml (once per app). */
export function loadOpenApi(file = OPENAPI_FILE): OpenApiSpec {
  const yaml = fs.readFileSync(file, 'utf8');
  return { yaml, document: parseYaml(yaml) as Record<string, unknown> };
}
