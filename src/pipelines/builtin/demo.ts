/**
 * The seed's pair: the producer writes a text chunk every `intervalMs` saying when it was
 * produced; the consumer reads it back and returns its text.
 */
import { definePipeline } from '../types.js';

export default definePipeline({
  name: 'demo',
  description: 'Writes a timestamped text chunk every intervalMs; the consumer returns its text.',
  // Any url, ignored: a client written for the seed sends one (rtsp://…, http://…) and must work unchanged.
  urls: ['*'],
  options: {
    type: 'object',
    additionalProperties: false,
    properties: {
      intervalMs: {
        type: 'integer',
        minimum: 0,
        maximum: 3_600_000,
        default: 1500,
        description: 'Pause between chunks in ms (0: as fast as the pool allows).',
      },
    },
  },
  producer: {
    shape: 'step',
    step(ctx) {
      const n = ((ctx.state as number | undefined) ?? 0) + 1;
      ctx.write(`Data from producer #${n} at ${(Date.now() / 1000).toFixed(3)}`);
      ctx.state = n;
      return { delayMs: ctx.options.intervalMs as number };
    },
  },
  consumer: {
    shape: 'step',
    step(_ctx, chunk) {
      return chunk.text().trim();
    },
  },
});
