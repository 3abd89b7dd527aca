#!/usr/bin/env node
/**
 * `tandem`: the operator's command line over the REST control plane (and one WebSocket command).
 * Reads the server from --server or TANDEM_URL and the token from --token or TANDEM_TOKEN;
 * prints tables for people, or the API's JSON with --json. Exit codes: 0 done, 1 the server
 * refused or could not be reached, 2 bad usage.
 */
import { parseArgs } from 'node:util';
import { ApiClient, ApiError, type Schemas } from './api-client.js';
import { bytes, dash, fields, ms, seconds, table, time } from './format.js';
import { resolveSessionId } from './session-id.js';
import { stream } from './stream.js';
import { streamAudio } from './audio-stream.js';

const USAGE = `Usage: tandem <command> [options]

Commands:
  list [--state S] [--pipeline P] [--limit N] [--cursor C] [--all]
                         sessions, newest first (live and recently ended)
  inspect <id>           one session: sides, threads, counters, lag, latency
                         (<id> may be any unambiguous start of the id, as in docker)
  stop <id> [--timeout SECONDS]
                         stop a session (graceful, forced after the timeout)
  spools                 kept spools (START keep: true), oldest first, with their bounds
  delete-spool <id>      delete a kept spool (not while its session runs)
  pool                   worker threads, queue and timings
  pipelines              pipelines START can name
  stream [--pipeline P] [--url URL] [--options JSON] [--keep]
                         start a session over WebSocket and print each result as a
                         line of JSON until Ctrl-C, which stops it
  stream --file F [--pipeline P] [--fast] [--options JSON]
                         push audio as the session's client (url "client:"): F is a
                         16 kHz mono 16-bit WAV or anything sox reads, or - for raw
                         s16le 16 kHz mono PCM on stdin (arecord -f S16_LE -r 16000
                         -c 1 | tandem stream --file -); 16 KiB frames at the audio's
                         pace (--fast: as fast as the server takes them), END at the
                         end; prints finals as lines (partials in place on a terminal)

Options:
  --server URL   server address (env TANDEM_URL, default http://127.0.0.1:8000)
  --token T      bearer token (env TANDEM_TOKEN)
  --json         print the API's JSON instead of a table
  -h, --help     this text
`;

class UsageError extends Error {}

const OPTIONS = {
  server: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
  state: { type: 'string' },
  pipeline: { type: 'string' },
  limit: { type: 'string' },
  cursor: { type: 'string' },
  all: { type: 'boolean', default: false },
  timeout: { type: 'string' },
  url: { type: 'string' },
  options: { type: 'string' },
  keep: { type: 'boolean', default: false },
  file: { type: 'string' },
  fast: { type: 'boolean', default: false },
} as const;

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values: v, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (v.help || !command) {
    process.stdout.write(USAGE);
    return command || v.help ? 0 : 2;
  }
  const server = v.server ?? process.env.TANDEM_URL ?? 'http://127.0.0.1:8000';
  const api = new ApiClient(server, v.token ?? (process.env.TANDEM_TOKEN || undefined));
  const print = (json: unknown, human: () => string) => {
    process.stdout.write(`${v.json ? JSON.stringify(json, null, 2) : human()}\n`);
  };
  const needId = () => {
    if (rest.length !== 1) throw new UsageError(`${command} takes exactly one ${command === 'delete-spool' ? 'spool' : 'session'} id`);
    return rest[0]!;
  };
  const noArgs = () => {
    if (rest.length > 0) throw new UsageError(`${command} takes no arguments, got: ${rest.join(' ')}`);
  };

  switch (command) {
    case 'list': {
      noArgs();
      const limit = v.limit === undefined ? undefined : positiveInt(v.limit, '--limit');
      const query = { state: v.state, pipeline: v.pipeline, limit, cursor: v.cursor };
      let page = await api.listSessions(query);
      const items = [...page.items];
      while (v.all && page.nextCursor) {
        page = await api.listSessions({ ...query, cursor: page.nextCursor });
        items.push(...page.items);
      }
      const result: Schemas['SessionList'] = { items, total: page.total, nextCursor: v.all ? null : page.nextCursor };
      print(result, () => listTable(result));
      return 0;
    }
    case 'inspect':
      {
        const s = await api.inspect(await resolveSessionId(api, needId()));
        print(s, () => inspectText(s));
      }
      return 0;
    case 'stop': {
      const id = await resolveSessionId(api, needId());
      const timeout = v.timeout === undefined ? undefined : nonNegative(v.timeout, '--timeout');
      const s = await api.stop(id, timeout);
      print(s, () => `session ${s.session} ended: reason ${s.reason}, ${s.chunks} results delivered, ${s.produced} produced, ${s.forced ? 'forced' : 'graceful'}, stop took ${ms(s.stopMs)}${s.error ? `, error: ${s.error}` : ''}`);
      return 0;
    }
    case 'spools': {
      noArgs();
      const list = await api.keptSpools();
      print(list, () => spoolsTable(list));
      return 0;
    }
    case 'delete-spool': {
      const s = await api.deleteSpool(needId());
      print(s, () => `kept spool ${s.id} deleted: ${bytes(s.sizeBytes)} in ${s.files} files`);
      return 0;
    }
    case 'pool': {
      noArgs();
      const p = await api.pool();
      print(p, () => poolText(p));
      return 0;
    }
    case 'pipelines': {
      noArgs();
      const p = await api.pipelines();
      print(p, () => pipelinesText(p));
      return 0;
    }
    case 'stream': {
      noArgs();
      let options: Record<string, unknown> | undefined;
      if (v.options !== undefined) {
        try {
          options = JSON.parse(v.options) as Record<string, unknown>;
        } catch {
          throw new UsageError('--options must be a JSON object, e.g. --options \'{"intervalMs":500}\'');
        }
        if (typeof options !== 'object' || options === null || Array.isArray(options)) throw new UsageError('--options must be a JSON object');
      }
      if (v.file !== undefined) {
        if (v.url !== undefined || v.keep) throw new UsageError('--file sends the audio itself (url "client:"): leave out --url and --keep');
        return streamAudio({
          server,
          pipeline: v.pipeline ?? 'transcribe',
          file: v.file,
          fast: v.fast,
          options,
          stdin: process.stdin,
          out: process.stdout,
          err: process.stderr,
        });
      }
      if (v.fast) throw new UsageError('--fast goes with --file');
      return stream({ server, pipeline: v.pipeline, url: v.url, options, keep: v.keep, out: process.stdout, err: process.stderr });
    }
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

function positiveInt(s: string, name: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${name} must be a positive integer, got "${s}"`);
  return n;
}

function nonNegative(s: string, name: string): number {
  const n = Number(s);
  if (s.trim() === '' || !Number.isFinite(n) || n < 0) throw new UsageError(`${name} must be a number of seconds ≥ 0, got "${s}"`);
  return n;
}

function listTable(list: Schemas['SessionList']): string {
  const rows = list.items.map((s) => [s.id, s.pipeline, s.state, time(s.createdAt), String(s.delivered), dash(s.endReason), dash(s.clientAddress)]);
  const more = list.nextCursor ? `\n(${list.total} in all; next page: --cursor ${list.nextCursor}, or --all)` : '';
  return table(['ID', 'PIPELINE', 'STATE', 'CREATED', 'DELIVERED', 'REASON', 'CLIENT'], rows) + more;
}

function spoolsTable(list: Schemas['KeptSpoolList']): string {
  const rows = list.items.map((s) => [s.id, s.live ? 'live' : dash(s.session), bytes(s.sizeBytes), String(s.files), time(s.keptAt), seconds(s.ageSeconds)]);
  const bounds = `(${bytes(list.totalBytes)} of ${bytes(list.maxBytes)} kept; each at most ${list.maxAgeSeconds} s)`;
  return `${table(['ID', 'SESSION', 'SIZE', 'FILES', 'KEPT', 'AGE'], rows)}\n${bounds}`;
}

function sideText(s: Schemas['Side']): string {
  return [
    `${s.shape}, ${s.state}`,
    `thread ${dash(s.threadId)}`,
    `${s.steps} steps`,
    `current step ${seconds(s.currentStepSeconds)}`,
    s.lastError ? `last error: ${s.lastError}` : null,
  ]
    .filter(Boolean)
    .join(', ');
}

function inspectText(s: Schemas['SessionDetail']): string {
  const l = s.latencyMs;
  return fields([
    ['id', s.id],
    ['pipeline', s.pipeline],
    ['url', dash(s.url)],
    ['options', JSON.stringify(s.options)],
    ['state', s.endReason ? `${s.state} (${s.endReason})` : s.state],
    ['error', dash(s.error)],
    ['client', dash(s.clientAddress)],
    ['created', time(s.createdAt)],
    ['started', time(s.startedAt)],
    ['ended', time(s.endedAt)],
    ['producer', sideText(s.producer)],
    ['consumer', sideText(s.consumer)],
    ['chunks', `${s.counters.produced} produced, ${s.counters.consumed} consumed, ${s.counters.delivered} delivered, ${bytes(s.counters.bytesProduced)}`],
    ['lag', `${s.lag.chunks} chunks, oldest ${seconds(s.lag.ageSeconds)}`],
    ['latency', `p50 ${ms(l.p50)}, p95 ${ms(l.p95)}, p99 ${ms(l.p99)}, max ${ms(l.max)} (${l.samples} results)`],
    ['spool', bytes(s.spoolSizeBytes)],
  ]);
}

function poolText(p: Schemas['Pool']): string {
  const t = (h: Schemas['TimingSummary']) => `mean ${ms(h.mean)}, p50 ${ms(h.p50)}, p90 ${ms(h.p90)}, p99 ${ms(h.p99)}, max ${ms(h.max)}`;
  return fields([
    ['threads', `${p.threads.total} (${p.threads.busy} busy, ${p.threads.idle} idle, ${p.threads.heldByLoops} held by loops)`],
    ['bounds', `steps ${p.minThreads}–${p.maxThreads} threads, loops up to ${p.loopMaxThreads}`],
    ['queue', String(p.queueDepth)],
    ['utilization', `${(p.utilization * 100).toFixed(1)} %`],
    ['completed', String(p.tasksCompleted)],
    ['wait', t(p.waitTimeMs)],
    ['run', t(p.runTimeMs)],
  ]);
}

function pipelinesText(p: Schemas['PipelineList']): string {
  const rows = p.items.map((x) => [
    x.name + (x.default ? ' *' : ''),
    x.producer.shape,
    x.consumer.shape,
    Object.keys((x.options.properties as object | undefined) ?? {}).join(',') || '-',
    x.urls.join(','),
    x.available ? x.description : `UNAVAILABLE: ${x.unavailableReason ?? ''}`,
  ]);
  const errors = p.loadErrors.map((e) => `failed to load ${e.module}: ${e.error}`);
  const ignored = p.ignored.map((f) => `ignored ${f.file}: ${f.reason}`);
  return [table(['NAME', 'PRODUCER', 'CONSUMER', 'OPTIONS', 'URLS', 'DESCRIPTION'], rows), '(* default)', ...errors, ...ignored].join('\n');
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`tandem: ${err.message}\n\n${USAGE}`);
      process.exitCode = 2;
    } else if (err instanceof ApiError) {
      process.stderr.write(`tandem: ${err.message}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`tandem: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    }
  },
);
