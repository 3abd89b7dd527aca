import pino, { type DestinationStream, type Logger } from 'pino';

/**
 * Structured JSON logs, on stdout unless `destination` says otherwise (tests capture them).
 * Tokens and secrets are never passed to it.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'tandem' },
      redact: { paths: ['req.headers.authorization', 'headers.authorization', 'token'], censor: '[redacted]' },
    },
    destination,
  );
}
