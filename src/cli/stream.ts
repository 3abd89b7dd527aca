import WebSocket from 'ws';

export interface StreamOptions {
  /** HTTP base URL of the server; the WebSocket is `/ws` on the same host. */
  server: string;
  pipeline: string | undefined;
  url: string | undefined;
  options: Record<string, unknown> | undefined;
  keep: boolean;
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

/**
 * Starts a session over WebSocket and writes each result as one line of JSON (the server's
 * `transcript` message) until the session ends. Ctrl-C (SIGINT) sends STOP and waits for
 * `stopped`. Resolves with the exit code: 0 when the session ended by a stop, 1 otherwise.
 */
export function stream(opts: StreamOptions): Promise<number> {
  const wsUrl = new URL('/ws', opts.server);
  wsUrl.protocol = wsUrl.protocol === 'https:' ? 'wss:' : 'ws:';
  return new Promise((resolve) => {
    const ws = new WebSocket(wsUrl);
    let started = false;
    let stoppedCleanly = false;
    let failed = false;
    const onSigint = () => {
      opts.err.write('stopping…\n');
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ command: 'STOP' }));
      else ws.terminate();
    };
    process.on('SIGINT', onSigint);
    ws.on('open', () => {
      const start: Record<string, unknown> = { command: 'START' };
      if (opts.pipeline !== undefined) start.pipeline = opts.pipeline;
      if (opts.url !== undefined) start.url = opts.url;
      if (opts.options !== undefined) start.options = opts.options;
      if (opts.keep) start.keep = true;
      ws.send(JSON.stringify(start));
    });
    ws.on('message', (data) => {
      const text = data.toString();
      let msg: { type?: string; [k: string]: unknown };
      try {
        msg = JSON.parse(text) as typeof msg;
      } catch {
        return;
      }
      switch (msg.type) {
        case 'started':
          started = true;
          opts.err.write(`session ${String(msg.session)} started (pipeline ${String(msg.pipeline)}); Ctrl-C stops it\n`);
          break;
        case 'transcript':
          opts.out.write(`${text}\n`);
          break;
        case 'error':
          failed = true;
          opts.err.write(`tandem: ${String(msg.code)}: ${String(msg.message)}\n`);
          // Before START succeeded, an error ends the attempt.
          if (!started) ws.close();
          break;
        case 'stopped':
          stoppedCleanly = msg.reason !== 'failed';
          opts.err.write(`session ${String(msg.session)} stopped (reason ${String(msg.reason)}, ${String(msg.chunks)} results)\n`);
          break;
      }
    });
    ws.on('error', (err) => {
      failed = true;
      opts.err.write(`tandem: cannot stream from ${wsUrl.href}: ${err.message}\n`);
    });
    ws.on('close', () => {
      process.off('SIGINT', onSigint);
      resolve(stoppedCleanly && !(failed && !started) ? 0 : 1);
    });
  });
}
