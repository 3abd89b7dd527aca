/**
 * Log monitoring: a loop producer follows a file under FILE_ROOT (like `tail -F`), writing each
 * batch of appended bytes as a chunk; it survives truncation and rotation. The consumer splits
 * complete lines (carrying a partial last line to the next chunk) and applies an optional regex.
 */
import fs from 'node:fs';
import { definePipeline } from '../types.js';

interface TailInput {
  file: string;
  /** Where following starts: fixed at START so nothing appended after `started` is missed. */
  ino: number;
  offset: number;
}

interface Cursor {
  fd: number;
  ino: number;
  offset: number;
}

/** Opens `file`; continues at `resume.offset` if it is still the same file, else reads it from the start. */
function open(file: string, resume?: { ino: number; offset: number }): Cursor | null {
  try {
    const fd = fs.openSync(file, 'r');
    const st = fs.fstatSync(fd);
    const same = resume && resume.ino === st.ino && resume.offset <= st.size;
    return { fd, ino: st.ino, offset: same ? resume.offset : 0 };
  } catch {
    return null;
  }
}

export default definePipeline({
  name: 'tail',
  description: 'Follows a text file under FILE_ROOT given as a file:// url and streams its new lines.',
  urls: ['file://'],
  options: {
    type: 'object',
    additionalProperties: false,
    properties: {
      filter: { type: 'string', maxLength: 1000, description: 'Regular expression; only matching lines are returned.' },
      fromStart: { type: 'boolean', default: false, description: 'Read the file from its beginning instead of its end.' },
      pollMs: { type: 'integer', minimum: 10, maximum: 10_000, default: 100, description: 'How often the file is checked, in ms.' },
      maxChunkBytes: { type: 'integer', minimum: 1024, maximum: 16_777_216, default: 1_048_576, description: 'Largest chunk read at once, in bytes.' },
    },
  },
  prepare(ctx) {
    const filter = ctx.options.filter;
    if (typeof filter === 'string') {
      try {
        new RegExp(filter);
      } catch (err) {
        throw new Error(`options.filter is not a valid regular expression: ${(err as Error).message}`);
      }
    }
    const file = ctx.resolveFileUrl(ctx.url);
    const st = fs.statSync(file, { throwIfNoEntry: false });
    const fromStart = ctx.options.fromStart === true;
    return { file, ino: st?.ino ?? -1, offset: st && !fromStart ? st.size : 0 } satisfies TailInput;
  },
  producer: {
    shape: 'loop',
    run(ctx) {
      const input = ctx.input as TailInput;
      const { file } = input;
      const pollMs = ctx.options.pollMs as number;
      const maxChunk = ctx.options.maxChunkBytes as number;
      const buf = Buffer.alloc(maxChunk);
      let cur = open(file, input);
      try {
        while (!ctx.stopRequested) {
          if (!cur) {
            cur = open(file);
            if (!cur && !ctx.sleep(pollMs)) break;
            continue;
          }
          const n = fs.readSync(cur.fd, buf, 0, maxChunk, cur.offset);
          if (n > 0) {
            cur.offset += n;
            ctx.write(buf.subarray(0, n));
            continue;
          }
          // Nothing new: was the file truncated or replaced (rotation)?
          const byName = fs.statSync(file, { throwIfNoEntry: false });
          if (byName && byName.ino !== cur.ino) {
            fs.closeSync(cur.fd);
            cur = open(file);
            continue;
          }
          if (fs.fstatSync(cur.fd).size < cur.offset) cur.offset = 0;
          if (!ctx.sleep(pollMs)) break;
        }
      } finally {
        if (cur) fs.closeSync(cur.fd);
      }
    },
  },
  consumer: {
    shape: 'step',
    step(ctx, chunk) {
      const text = ((ctx.state as string | undefined) ?? '') + chunk.text();
      const lines = text.split('\n');
      ctx.state = lines.pop() ?? '';
      const filter = typeof ctx.options.filter === 'string' ? new RegExp(ctx.options.filter) : null;
      return lines.map((l) => l.replace(/\r$/, '')).filter((l) => !filter || filter.test(l));
    },
  },
});
