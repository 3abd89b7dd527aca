// A loop-shaped pipeline: each side is one call that runs for the whole session on a thread of
// its own. The producer stands for third-party blocking code that never returns by itself; the
// consumer keeps in-memory state across chunks (a word split over two chunks is joined), as a
// streaming decoder would. Every wait (`sleep`, `next`) wakes at once when the session stops.
export default {
  name: 'words',
  description: 'Streams text in arbitrary slices; the consumer emits the complete words of each slice.',
  options: {
    type: 'object',
    additionalProperties: false,
    properties: {
      text: { type: 'string', minLength: 1, maxLength: 100000, default: 'the quick brown fox jumps over the lazy dog' },
      sliceBytes: { type: 'integer', minimum: 1, maximum: 1024, default: 7 },
      intervalMs: { type: 'integer', minimum: 0, default: 100 },
    },
  },
  producer: {
    shape: 'loop',
    run(ctx) {
      const { text, sliceBytes, intervalMs } = ctx.options;
      // Returning ends the producer; the session completes once every chunk is delivered.
      for (let at = 0; at < text.length && !ctx.stopRequested; at += sliceBytes) {
        ctx.write(text.slice(at, at + sliceBytes));
        if (!ctx.sleep(intervalMs)) return; // false: the session is stopping
      }
    },
  },
  consumer: {
    shape: 'loop',
    run(ctx) {
      let carry = ''; // in-memory state that lives as long as the loop
      for (let chunk = ctx.next(); chunk !== null; chunk = ctx.next()) {
        const parts = (carry + chunk.text()).split(' ');
        carry = parts.pop();
        ctx.emit(parts.filter(Boolean));
      }
      // next() returned null: stopped, or the producer finished and everything was taken.
    },
  },
};
