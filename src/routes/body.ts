import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { tandemError } from '../errors.js';

/** The one media type /api/* reads. */
const JSON_TYPE = 'application/json';

/**
 * Guards request bodies on /api/*: a body over `maxBytes` (MAX_REQUEST_BODY_BYTES) → 413, a body
 * that is not JSON → 415, JSON that does not parse → 400. No operation of openapi.yaml takes a
 * body today, so a well-behaved client sends none; but a body must never be read without bound
 * or silently ignored. A declared length over the limit is refused before a byte is read; a
 * chunked body is counted as it arrives.
 */
export function bodyGuard(maxBytes: number): RequestHandler {
  const parseJson = express.json({ limit: maxBytes, strict: false, type: JSON_TYPE });
  return (req: Request, res: Response, next: NextFunction) => {
    const declared = req.headers['content-length'];
    const chunked = req.headers['transfer-encoding'] !== undefined;
    const length = declared === undefined ? 0 : Number(declared);
    if (!chunked && length === 0) return next();
    if (length > maxBytes) {
      return next(tandemError('PAYLOAD_TOO_LARGE', `the request body has ${length} bytes; at most ${maxBytes} are accepted (MAX_REQUEST_BODY_BYTES)`));
    }
    if (!req.is(JSON_TYPE)) {
      const type = req.headers['content-type'] ?? 'none';
      return next(tandemError('UNSUPPORTED_MEDIA_TYPE', `the request body is of type ${JSON.stringify(type.slice(0, 100))}; send ${JSON_TYPE}, or no body`));
    }
    parseJson(req, res, (err?: unknown) => {
      if (!err) return next();
      const e = err as { type?: unknown; status?: unknown };
      if (e.type === 'entity.too.large') {
        return next(tandemError('PAYLOAD_TOO_LARGE', `the request body has more than ${maxBytes} bytes (MAX_REQUEST_BODY_BYTES)`));
      }
      if (e.type === 'entity.parse.failed') return next(tandemError('VALIDATION', 'the request body is not valid JSON'));
      if (e.type === 'charset.unsupported' || e.type === 'encoding.unsupported') {
        return next(tandemError('UNSUPPORTED_MEDIA_TYPE', 'the request body must be UTF-8 JSON without content encoding'));
      }
      // Aborted or malformed uploads (http-errors with a 4xx status): let the problem handler map the status.
      next(err);
    });
  };
}
