/**
 * Every error the service reports to a client or an operator, with its stable code,
 * its HTTP status and, where a WebSocket closes over it, the close code.
 * Business code throws these; src/routes/problem.ts and src/ws/connection.ts are the
 * only places that turn them into wire formats.
 */
export interface ErrorSpec {
  readonly status: number;
  readonly title: string;
  /** Close code when the error ends a WebSocket; absent when the connection stays usable. */
  readonly wsClose?: number;
}

export const ERRORS = {
  BAD_JSON: { status: 400, title: 'Message is not valid JSON' },
  BAD_MESSAGE: { status: 400, title: 'Message does not match the protocol' },
  UNKNOWN_COMMAND: { status: 400, title: 'Unknown command' },
  UNKNOWN_PIPELINE: { status: 400, title: 'Unknown pipeline' },
  PIPELINE_UNAVAILABLE: { status: 503, title: 'Pipeline failed to load' },
  BAD_OPTIONS: { status: 400, title: 'Invalid pipeline options' },
  BAD_URL: { status: 400, title: 'Invalid or forbidden URL' },
  ALREADY_STARTED: { status: 409, title: 'A session already runs on this connection' },
  TOO_MANY_SESSIONS: { status: 503, title: 'Too many sessions', wsClose: 1013 },
  NO_LOOP_THREADS: { status: 503, title: 'No thread left for a loop-shaped side', wsClose: 1013 },
  SHUTTING_DOWN: { status: 503, title: 'The service is shutting down', wsClose: 1001 },
  PIPELINE_FAILED: { status: 500, title: 'The pipeline failed', wsClose: 1011 },
  SESSION_NOT_FOUND: { status: 404, title: 'No such session' },
  KEEP_NOT_ALLOWED: { status: 403, title: 'This service does not keep spools' },
  SPOOL_NOT_FOUND: { status: 404, title: 'No such kept spool' },
  SPOOL_LIVE: { status: 409, title: 'The spool belongs to a running session' },
  // REST control plane (src/routes): request problems found by the OpenAPI validator or the auth check.
  VALIDATION: { status: 400, title: 'The request does not match openapi.yaml' },
  UNAUTHORIZED: { status: 401, title: 'A valid bearer token is required' },
  FORBIDDEN: { status: 403, title: 'This token may not do that' },
  NOT_FOUND: { status: 404, title: 'No such resource' },
  METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed' },
  NOT_ACCEPTABLE: { status: 406, title: 'Not acceptable' },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'Request body too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported media type' },
  NOT_READY: { status: 503, title: 'The service is not ready' },
  RESUME_FAILED: { status: 404, title: 'No resumable session with that id and secret' },
  RESUME_GAP: { status: 409, title: 'The results to replay are no longer kept' },
  OWNER_UNREACHABLE: { status: 503, title: 'The instance running the session could not be reached' },
  // WebSocket door and connection limits (src/ws).
  FORBIDDEN_ORIGIN: { status: 403, title: 'Origin not allowed' },
  FORBIDDEN_HOST: { status: 403, title: 'Host not allowed' },
  TOO_MANY_CLIENT_SESSIONS: { status: 503, title: 'Too many sessions from this client address' },
  RATE_LIMITED: { status: 429, title: 'Too many messages', wsClose: 1008 },
  // The live view's stream (src/web) and plain HTTP on a WebSocket path.
  TOO_MANY_VIEWERS: { status: 503, title: 'Too many live viewers' },
  UPGRADE_REQUIRED: { status: 426, title: 'This endpoint speaks WebSocket' },
  INTERNAL: { status: 500, title: 'Internal error', wsClose: 1011 },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export class TandemError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly wsClose: number | undefined;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TandemError';
    this.code = code;
    const spec: ErrorSpec = ERRORS[code];
    this.status = spec.status;
    this.wsClose = spec.wsClose;
  }
}

export function tandemError(code: ErrorCode, message: string, cause?: unknown): TandemError {
  return new TandemError(code, message, cause === undefined ? undefined : { cause });
}

/**
 * RFC 9457 problem details: the one builder of the body every HTTP error carries (REST
 * responses and refused WebSocket upgrades alike). Never carries a stack.
 */
export function problemBody(code: ErrorCode, detail: string, instance?: string, extra: Record<string, unknown> = {}) {
  const { status, title } = ERRORS[code];
  return { type: `urn:tandem:problem:${code}`, title, status, code, detail, ...(instance ? { instance } : {}), ...extra };
}

/** Refusals that the door (before an upgrade) and START (after it) both make, worded once. */
export const refusals = {
  shuttingDown: () => tandemError('SHUTTING_DOWN', 'the service is shutting down; reconnect later'),
  starting: () => tandemError('NOT_READY', 'the service is starting (taking DATA_DIR and recovering spools); retry in a moment'),
  tooManySessions: (max: number) =>
    tandemError('TOO_MANY_SESSIONS', `the service runs its maximum of ${max} sessions (MAX_SESSIONS); retry later`),
  forbiddenHost: (host: string | undefined) =>
    tandemError('FORBIDDEN_HOST', `Host ${JSON.stringify(host ?? '')} is not one this service answers to on loopback (ALLOWED_HOSTS)`),
};

/** The message of anything thrown, without a stack. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}
