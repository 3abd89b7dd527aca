import type { Problem } from './types.js';

const TOKEN_KEY = 'tandem.token';

/**
 * The token the operator typed, kept in this tab's session storage only: never in a URL (the
 * server's logs) nor in a cookie (the server sets none). It travels in `Authorization` headers.
 */
export const token = {
  get(): string | null {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set(value: string): void {
    sessionStorage.setItem(TOKEN_KEY, value);
  },
  clear(): void {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

/** A refusal from the API, with its problem document when there is one. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly retryAfterSeconds: number | null;

  constructor(status: number, problem: Partial<Problem> | null, retryAfter: string | null) {
    super(problem?.detail ?? problem?.title ?? `HTTP ${status}`);
    this.status = status;
    this.code = problem?.code ?? `HTTP_${status}`;
    const seconds = Number(retryAfter);
    this.retryAfterSeconds = retryAfter !== null && Number.isFinite(seconds) ? seconds : null;
  }
}

export function authHeaders(extra: Record<string, string> = {}): Record<string, string> {
  const t = token.get();
  return t ? { ...extra, Authorization: `Bearer ${t}` } : extra;
}

/** Turns a non-2xx response into an ApiError carrying its problem document. */
export async function refusal(res: Response): Promise<ApiError> {
  let problem: Partial<Problem> | null = null;
  try {
    problem = (await res.json()) as Partial<Problem>;
  } catch {
    problem = null;
  }
  return new ApiError(res.status, problem, res.headers.get('Retry-After'));
}

/** Calls the REST API with the token; resolves with the JSON body or rejects with an ApiError. */
export async function api<T>(method: 'GET' | 'POST', path: string): Promise<T> {
  const res = await fetch(path, { method, headers: authHeaders({ Accept: 'application/json' }), cache: 'no-store' });
  if (!res.ok) throw await refusal(res);
  return (await res.json()) as T;
}
