import type { DestinationStream } from 'pino';

/** One pino log line, parsed. */
export type LogLine = Record<string, unknown> & { level: number; msg?: string };

/** A pino destination that keeps every line in memory, so a test can assert what was logged. */
export class LogCapture implements DestinationStream {
  readonly lines: LogLine[] = [];

  write(chunk: string): void {
    for (const line of chunk.split('\n')) if (line) this.lines.push(JSON.parse(line) as LogLine);
  }

  /** Lines that carry every field of `fields` with that exact value. */
  matching(fields: Record<string, unknown>): LogLine[] {
    return this.lines.filter((l) => Object.entries(fields).every(([k, v]) => l[k] === v));
  }
}
