import type { ErrorRequestHandler, Request, Response } from 'express';
import type { Logger } from 'pino';
import { ERRORS, problemBody, TandemError, type ErrorCode } from '../errors.js';
import type { components } from '../generated/openapi.js';

type Problem = components['schemas']['Problem'];

/** HTTP status of an error raised outside our code (the OpenAPI validator, express) → our stable code. */
const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: 'VALIDATION',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  406: 'NOT_ACCEPTABLE',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
};

/** The shape express-openapi-validator's and http-errors' errors share. */
interface HttpLikeError {
  status?: unknown;
  statusCode?: unknown;
  message?: unknown;
  errors?: Array<{ path?: unknown; message?: unknown }>;
}

/**
 * Sends an RFC 9457 problem document. `extra` adds extension members (e.g. readiness checks).
 * A 401 carries WWW-Authenticate (RFC 6750), with `error="invalid_token"` when a token was sent.
 */
export function sendProblem(req: Request, res: Response, code: ErrorCode, detail: string, extra: Record<string, unknown> = {}): void {
  const { status } = ERRORS[code];
  const body: Problem & Record<string, unknown> = problemBody(code, detail, req.originalUrl.split('?')[0]!, extra);
  // The rest of an oversized body is not worth reading: end the connection after the answer.
  if (status === 413) res.set('Connection', 'close');
  if (status === 401) {
    res.set('WWW-Authenticate', req.headers.authorization ? 'Bearer realm="tandem", error="invalid_token"' : 'Bearer realm="tandem"');
  }
  res.status(status).type('application/problem+json').json(body);
}

/**
 * The one place where errors become HTTP responses: coded TandemErrors keep their code, the
 * validator's errors get one by status, anything else is INTERNAL (logged with its stack,
 * answered without it).
 */
export function problemHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, next) => {
    if (res.headersSent) return next(err);
    if (err instanceof TandemError) return sendProblem(req, res, err.code, err.message);
    const e = (err ?? {}) as HttpLikeError;
    const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : 500;
    const code = CODE_BY_STATUS[status];
    if (!code) {
      logger.error({ err, path: req.originalUrl }, 'request failed');
      return sendProblem(req, res, 'INTERNAL', 'internal error; the server log has the details');
    }
    const errors = Array.isArray(e.errors)
      ? e.errors.map((x) => ({ path: String(x.path ?? ''), message: String(x.message ?? '') }))
      : undefined;
    const detail = typeof e.message === 'string' && e.message ? e.message : ERRORS[code].title;
    sendProblem(req, res, code, detail, errors && code === 'VALIDATION' ? { errors } : {});
  };
}
