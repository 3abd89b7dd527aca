import { Counter, Gauge, type Registry } from 'prom-client';
import type WebSocket from 'ws';
import { ERRORS, type ErrorCode } from '../errors.js';
import type { ConnectionObserver } from '../ws/connection.js';
import { METRIC_PREFIX } from './buckets.js';

export interface WebSocketMetricsDeps {
  /** The open client sockets, read at scrape time. */
  sockets: () => Iterable<WebSocket>;
}

/** Open connections, frames in and out, bytes queued in send buffers, error frames by code. */
export function webSocketMetrics(registry: Registry, deps: WebSocketMetricsDeps): ConnectionObserver {
  new Gauge({
    name: METRIC_PREFIX + 'ws_connections',
    help: 'Open WebSocket connections.',
    registers: [registry],
    collect() {
      let n = 0;
      for (const _ of deps.sockets()) n++;
      this.set(n);
    },
  });
  new Gauge({
    name: METRIC_PREFIX + 'ws_send_buffer_bytes',
    help: 'Bytes queued in WebSocket send buffers and not yet written to the network (slow clients).',
    registers: [registry],
    collect() {
      let bytes = 0;
      for (const ws of deps.sockets()) bytes += ws.bufferedAmount;
      this.set(bytes);
    },
  });
  const received = new Counter({
    name: METRIC_PREFIX + 'ws_messages_received_total',
    help: 'WebSocket messages received from clients.',
    registers: [registry],
  });
  const sent = new Counter({
    name: METRIC_PREFIX + 'ws_messages_sent_total',
    help: 'WebSocket messages sent to clients (started, transcript, error, stopped).',
    registers: [registry],
  });
  const byThreads = new Counter({
    name: METRIC_PREFIX + 'ws_results_sent_by_step_threads_total',
    help: 'Transcript messages a step thread wrote into the client socket itself (STEP_SENDS); the others the main thread sent.',
    registers: [registry],
  });
  const errors = new Counter({
    name: METRIC_PREFIX + 'ws_errors_total',
    help: 'Error messages sent to clients, by error code.',
    labelNames: ['code'] as const,
    registers: [registry],
  });
  for (const code of Object.keys(ERRORS)) errors.inc({ code }, 0);
  const pings = new Counter({
    name: METRIC_PREFIX + 'ws_pings_total',
    help: 'Heartbeat pings sent to clients, by how: written straight into the socket (direct: step threads may write it, nothing else is queued) or queued through the WebSocket stream (queued).',
    labelNames: ['written'] as const,
    registers: [registry],
  });
  const pingsDirect = pings.labels({ written: 'direct' });
  const pingsQueued = pings.labels({ written: 'queued' });
  pingsDirect.inc(0);
  pingsQueued.inc(0);

  return {
    messageReceived: () => received.inc(),
    messageSent: () => sent.inc(),
    resultSentByThread: (count = 1) => {
      sent.inc(count);
      byThreads.inc(count);
    },
    errorSent: (code: ErrorCode) => errors.inc({ code }),
    pingSent: (direct: boolean) => (direct ? pingsDirect : pingsQueued).inc(),
  };
}
