import pino, { type Logger } from 'pino';

/** Structured JSON logs on stdout. Tokens and secrets are never passed to it. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'tandem' },
    redact: { paths: ['req.headers.authorization', 'headers.authorization', 'token'], censor: '[redacted]' },
  });
}
