// A step-shaped pipeline: sample a sensor every `intervalMs`, and report each sample with a
// running average. Each step is one bounded call; what it must remember for the next step
// (the sample count, the running sum) is plain data in `ctx.state`.
export default {
  name: 'sensor',
  description: 'Samples a (simulated) sensor every intervalMs and reports a running average.',
  options: {
    type: 'object',
    additionalProperties: false,
    properties: {
      intervalMs: { type: 'integer', minimum: 10, default: 1000, description: 'Sampling period in ms.' },
      unit: { type: 'string', enum: ['C', 'F'], default: 'C' },
    },
  },
  producer: {
    shape: 'step',
    step(ctx) {
      const n = (ctx.state ?? 0) + 1;
      const celsius = 20 + 5 * Math.sin(n / 10); // a blocking driver call would go here
      ctx.write(JSON.stringify({ n, celsius }));
      ctx.state = n;
      return { delayMs: ctx.options.intervalMs };
    },
  },
  consumer: {
    shape: 'step',
    step(ctx, chunk) {
      const { n, celsius } = JSON.parse(chunk.text());
      const value = ctx.options.unit === 'F' ? celsius * 1.8 + 32 : celsius;
      const sum = (ctx.state ?? 0) + value;
      ctx.state = sum;
      return { sample: n, value: Number(value.toFixed(2)), average: Number((sum / n).toFixed(2)) };
    },
  },
};
