import type { components } from '../generated/openapi.js';

export type Schemas = components['schemas'];

/** A problem+json answer (or a transport failure) turned into one error the CLI prints. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/**
 * The few calls the CLI makes to the REST API. Response types come from openapi.yaml through
 * src/generated/openapi.d.ts; the server has already validated what it was sent.
 */
export class ApiClient {
  constructor(
    readonly baseUrl: string,
    readonly token: string | undefined,
  ) {}

  listSessions(query: { state?: string; pipeline?: string; limit?: number; cursor?: string }): Promise<Schemas['SessionList']> {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
    const qs = params.toString();
    return this.#call('GET', `/api/sessions${qs ? `?${qs}` : ''}`);
  }

  inspect(id: string): Promise<Schemas['SessionDetail']> {
    return this.#call('GET', `/api/sessions/${encodeURIComponent(id)}`);
  }

  stop(id: string, timeoutSeconds: number | undefined): Promise<Schemas['StopSummary']> {
    const qs = timeoutSeconds === undefined ? '' : `?timeout=${timeoutSeconds}`;
    return this.#call('POST', `/api/sessions/${encodeURIComponent(id)}/stop${qs}`);
  }

  keptSpools(): Promise<Schemas['KeptSpoolList']> {
    return this.#call('GET', '/api/spools');
  }

  deleteSpool(id: string): Promise<Schemas['KeptSpool']> {
    return this.#call('DELETE', `/api/spools/${encodeURIComponent(id)}`);
  }

  pool(): Promise<Schemas['Pool']> {
    return this.#call('GET', '/api/pool');
  }

  pipelines(): Promise<Schemas['PipelineList']> {
    return this.#call('GET', '/api/pipelines');
  }

  async #call<T>(method: string, path: string): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let res: Response;
    try {
      res = await fetch(new URL(path, this.baseUrl), { method, headers });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ApiError(`cannot reach ${this.baseUrl}: ${cause?.code ?? cause?.message ?? String(err)}`, null);
    }
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new ApiError(`${method} ${path}: HTTP ${res.status} with a body that is not JSON`, res.status);
    }
    if (!res.ok) {
      const p = body as Partial<Schemas['Problem']>;
      throw new ApiError(`${res.status} ${p.code ?? 'ERROR'}: ${p.detail ?? p.title ?? 'request failed'}`, res.status);
    }
    return body as T;
  }
}
