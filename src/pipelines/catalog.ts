import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { tandemError, describeError } from '../errors.js';
import type { PipelineDefinition, PipelineSettings, PrepareContext } from './types.js';

/** START's url for a session whose producer is the client (its binary frames): ws/connection.ts, sessions/client-producer.ts. */
export const CLIENT_URL = 'client:';

/** Whether START with `url` makes the client the producer of a session of `entry`. */
export function isClientFed(entry: PipelineEntry, url: string): boolean {
  return url === CLIENT_URL && entry.urls.includes(CLIENT_URL);
}

const NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const MODULE_PATTERN = /\.(m?js)$/;
/** TypeScript next to the modules: never run, but reported, since its author meant it to be. */
const TYPESCRIPT_PATTERN = /(?<!\.d)\.[mc]?ts$/;
const builtinDir = fileURLToPath(new URL('./builtin/', import.meta.url));

export interface PipelineEntry {
  readonly name: string;
  readonly description: string;
  /** Absolute path of the module pool threads import. */
  readonly module: string;
  readonly builtin: boolean;
  readonly producerShape: 'step' | 'loop';
  readonly consumerShape: 'step' | 'loop';
  readonly optionsSchema: Record<string, unknown>;
  /** Url prefixes START may give it; `"*"` admits any url. */
  readonly urls: readonly string[];
  /** Why it cannot run on this machine (its `available` hook), or null when it can. */
  readonly unavailable: string | null;
  readonly definition: PipelineDefinition;
  readonly validate: ValidateFunction;
}

/** A module that was found but could not be used: reported by /api/pipelines and /readyz. */
export interface PipelineLoadError {
  readonly module: string;
  readonly error: string;
}

/**
 * A file in PIPELINES_DIR that is not a pipeline, on purpose or not: a helper module (no
 * default export) or TypeScript. Reported by /api/pipelines and logged; readiness is unaffected.
 */
export interface IgnoredFile {
  readonly file: string;
  readonly reason: string;
}

const NO_OPTIONS = { type: 'object', additionalProperties: false, properties: {} };

export interface PreparedStart {
  options: Record<string, unknown>;
  input: unknown;
  /** For a client-fed session (url `client:`): a binary frame's length must be a multiple of this; null otherwise. */
  clientSampleBytes: number | null;
}

/** The pipeline's `clientSampleBytes` hook for these options (1 without one). */
function clientSampleBytes(entry: PipelineEntry, options: Record<string, unknown>): number {
  const hook = entry.definition.clientSampleBytes;
  if (!hook) return 1;
  let bytes: unknown;
  try {
    bytes = hook(options);
  } catch (err) {
    throw tandemError('BAD_OPTIONS', `pipeline "${entry.name}" could not say the sample size of client audio for these options: ${describeError(err)}`);
  }
  if (!Number.isInteger(bytes) || (bytes as number) < 1) {
    throw tandemError('BAD_OPTIONS', `pipeline "${entry.name}": clientSampleBytes returned ${JSON.stringify(bytes)}, not a positive integer`);
  }
  return bytes as number;
}

/**
 * Every pipeline START can name: the built-ins, then each module in PIPELINES_DIR.
 * A module that fails to load, or whose definition is malformed, is recorded, not fatal.
 */
export class PipelineCatalog {
  readonly #entries = new Map<string, PipelineEntry>();
  readonly #errors: PipelineLoadError[] = [];
  readonly #ignored: IgnoredFile[] = [];
  readonly #fileRoot: string;
  readonly #settings: PipelineSettings;
  readonly defaultName: string;

  private constructor(fileRoot: string, defaultName: string, settings: PipelineSettings) {
    this.#fileRoot = fileRoot;
    this.defaultName = defaultName;
    this.#settings = settings;
  }

  static async load(opts: {
    pipelinesDir: string | undefined;
    fileRoot: string;
    defaultName: string;
    settings: PipelineSettings;
  }): Promise<PipelineCatalog> {
    const catalog = new PipelineCatalog(opts.fileRoot, opts.defaultName, opts.settings);
    await catalog.#loadDir(builtinDir, true);
    if (opts.pipelinesDir) {
      if (!fs.existsSync(opts.pipelinesDir)) {
        catalog.#errors.push({ module: opts.pipelinesDir, error: 'PIPELINES_DIR does not exist' });
      } else {
        await catalog.#loadDir(opts.pipelinesDir, false);
      }
    }
    return catalog;
  }

  /**
   * What counts as a pipeline: a `.js`/`.mjs` file directly in the folder whose module has a
   * default export. A module without one is a helper that pipelines import (`util.mjs`): it is
   * listed as ignored, not as broken. Sub-folders are not searched (a place for more helpers).
   * A `.ts` file is never run (compile it) and is listed as ignored with that reason.
   */
  async #loadDir(dir: string, builtin: boolean): Promise<void> {
    const names = fs.readdirSync(dir).sort();
    for (const file of names) {
      const module = path.join(dir, file);
      if (TYPESCRIPT_PATTERN.test(file)) {
        this.#ignored.push({ file: module, reason: 'TypeScript is not run; compile it to .js or .mjs in this folder' });
        continue;
      }
      if (!MODULE_PATTERN.test(file)) continue;
      try {
        const loaded = (await import(pathToFileURL(module).href)) as { default?: unknown };
        if (loaded.default === undefined) {
          this.#ignored.push({ file: module, reason: 'no default export: taken as a helper module, not a pipeline' });
          continue;
        }
        const def = loaded.default as PipelineDefinition;
        const problem = checkDefinition(def);
        if (problem) throw new Error(problem);
        if (this.#entries.has(def.name)) throw new Error(`a pipeline named "${def.name}" is already loaded`);
        const optionsSchema = def.options ?? NO_OPTIONS;
        const ajv = new Ajv2020({ useDefaults: true, allErrors: false, strict: false });
        this.#entries.set(def.name, {
          name: def.name,
          description: def.description ?? '',
          module,
          builtin,
          producerShape: def.producer.shape,
          consumerShape: def.consumer.shape,
          optionsSchema,
          urls: def.urls ? [...def.urls] : ['*'],
          unavailable: this.#availability(def),
          definition: def,
          validate: ajv.compile(optionsSchema),
        });
      } catch (err) {
        this.#errors.push({ module, error: describeError(err) });
      }
    }
  }

  #availability(def: PipelineDefinition): string | null {
    if (!def.available) return null;
    try {
      return def.available(this.#settings) ?? null;
    } catch (err) {
      return `its availability check failed: ${describeError(err)}`;
    }
  }

  list(): PipelineEntry[] {
    return [...this.#entries.values()];
  }

  get loadErrors(): readonly PipelineLoadError[] {
    return this.#errors;
  }

  get ignoredFiles(): readonly IgnoredFile[] {
    return this.#ignored;
  }

  get(name: string): PipelineEntry | undefined {
    return this.#entries.get(name);
  }

  /** Looks up a pipeline by name (or the default) and throws UNKNOWN_PIPELINE naming the choices. */
  resolve(name: string | undefined): PipelineEntry {
    const wanted = name ?? this.defaultName;
    const entry = this.#entries.get(wanted);
    if (!entry) {
      const failed = this.#errors.find((e) => path.basename(e.module).replace(MODULE_PATTERN, '') === wanted);
      if (failed) throw tandemError('PIPELINE_UNAVAILABLE', `pipeline "${wanted}" failed to load: ${failed.error}`);
      throw tandemError('UNKNOWN_PIPELINE', `unknown pipeline "${wanted}"; available: ${[...this.#entries.keys()].join(', ')}`);
    }
    if (entry.unavailable) throw tandemError('PIPELINE_UNAVAILABLE', `pipeline "${wanted}" is unavailable: ${entry.unavailable}`);
    return entry;
  }

  /** Validates START's options (filling defaults) and runs the pipeline's prepare hook. */
  async prepare(entry: PipelineEntry, url: string, rawOptions: unknown): Promise<PreparedStart> {
    if (url !== '' && !entry.urls.some((prefix) => prefix === '*' || url.startsWith(prefix))) {
      const shown = url.length > 100 ? `${url.slice(0, 100)}…` : url;
      throw tandemError('BAD_URL', `pipeline "${entry.name}" takes urls starting with ${entry.urls.map((u) => JSON.stringify(u)).join(' or ')}, got ${JSON.stringify(shown)}`);
    }
    // "*" admits any url but this one: the client becomes the producer only where the pipeline says it may.
    if (url === CLIENT_URL && !entry.urls.includes(CLIENT_URL)) {
      throw tandemError('BAD_URL', `pipeline "${entry.name}" does not take client audio: its urls do not list "client:" (it takes ${entry.urls.map((u) => JSON.stringify(u)).join(', ')})`);
    }
    if (url.startsWith(CLIENT_URL) && url !== CLIENT_URL) {
      throw tandemError('BAD_URL', `the client feeds the audio with url exactly ${JSON.stringify(CLIENT_URL)}; got ${JSON.stringify(url.slice(0, 100))}`);
    }
    const options = structuredClone(rawOptions ?? {}) as Record<string, unknown>;
    if (!entry.validate(options)) {
      const e = entry.validate.errors?.[0];
      const where = e ? `options${e.instancePath.replaceAll('/', '.')}` : 'options';
      const extra = e?.keyword === 'additionalProperties' ? ` (${String(e.params.additionalProperty)})` : '';
      throw tandemError('BAD_OPTIONS', `${where} ${e?.message ?? 'is invalid'}${extra}`);
    }
    const ctx: PrepareContext = { url, options, settings: this.#settings, resolveFileUrl: (u) => resolveFileUrl(u, this.#fileRoot) };
    let input: unknown = null;
    if (entry.definition.prepare) {
      try {
        input = (await entry.definition.prepare(ctx)) ?? null;
      } catch (err) {
        if (err instanceof Error && 'code' in err && typeof err.code === 'string' && err.name === 'TandemError') throw err;
        throw tandemError('BAD_URL', `pipeline "${entry.name}" refused the start: ${describeError(err)}`);
      }
    }
    return { options, input, clientSampleBytes: isClientFed(entry, url) ? clientSampleBytes(entry, options) : null };
  }
}

function checkDefinition(def: PipelineDefinition | undefined): string | undefined {
  if (!def || typeof def !== 'object') return 'the module has no default export of a pipeline definition';
  if (typeof def.name !== 'string' || !NAME_PATTERN.test(def.name)) return `name must match ${NAME_PATTERN}`;
  for (const side of ['producer', 'consumer'] as const) {
    const s = def[side] as { shape?: unknown; step?: unknown; run?: unknown } | undefined;
    if (!s || (s.shape !== 'step' && s.shape !== 'loop')) return `${side}.shape must be "step" or "loop"`;
    const fn = s.shape === 'step' ? 'step' : 'run';
    if (typeof s[fn] !== 'function') return `${side}.${fn} must be a function for a ${s.shape}-shaped ${side}`;
  }
  if (def.options !== undefined && (typeof def.options !== 'object' || def.options === null)) return 'options must be a JSON Schema object';
  if (def.urls !== undefined && (!Array.isArray(def.urls) || def.urls.some((u) => typeof u !== 'string' || u === ''))) {
    return 'urls must be an array of url prefixes such as "file://"';
  }
  if (def.available !== undefined && typeof def.available !== 'function') return 'available must be a function';
  if (def.clientSampleBytes !== undefined && typeof def.clientSampleBytes !== 'function') return 'clientSampleBytes must be a function';
  return undefined;
}

/** Resolves a file:// URL under `root`, following symlinks, or throws BAD_URL. */
export function resolveFileUrl(url: string, root: string): string {
  let file: string;
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'file:') throw new Error('not file');
    file = fileURLToPath(parsed);
  } catch {
    throw tandemError('BAD_URL', `url must be a file:// URL under ${root}, got ${JSON.stringify(url)}`);
  }
  const realRoot = fs.existsSync(root) ? fs.realpathSync(root) : path.resolve(root);
  // Resolve the deepest part that exists, so a symlink anywhere on the way cannot escape.
  let existing = path.resolve(file);
  const rest: string[] = [];
  while (!fs.existsSync(existing) && path.dirname(existing) !== existing) {
    rest.unshift(path.basename(existing));
    existing = path.dirname(existing);
  }
  const real = path.join(fs.realpathSync(existing), ...rest);
  const rel = path.relative(realRoot, real);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
    throw tandemError('BAD_URL', `url ${JSON.stringify(url)} is outside the allowed folder ${root} (FILE_ROOT)`);
  }
  return real;
}
