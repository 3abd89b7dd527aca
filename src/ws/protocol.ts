import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { tandemError, type ErrorCode } from '../errors.js';
import type { EndReason } from '../sessions/session.js';

/**
 * The WebSocket protocol. Client messages are validated against the schemas in asyncapi.yaml
 * (the protocol's single description); the types below name what those schemas admit.
 */
export interface StartCommand {
  command: 'START';
  url?: string;
  pipeline?: string;
  options?: Record<string, unknown>;
  keep?: boolean;
}

export interface StopCommand {
  command: 'STOP';
}

export interface ResumeCommand {
  command: 'RESUME';
  session: string;
  /** The secret `started` gave the client. */
  resume: string;
  /** Seq of the last result the client received (0: none). */
  after: number;
}

/** The client's audio is complete (a session started with url `client:`). */
export interface EndCommand {
  command: 'END';
}

export type ClientCommand = StartCommand | StopCommand | ResumeCommand | EndCommand;

const specFile = fileURLToPath(new URL('../../../asyncapi.yaml', import.meta.url));
const COMMAND_SCHEMAS: Record<string, string> = { START: 'Start', STOP: 'Stop', RESUME: 'Resume', END: 'End' };

export interface Protocol {
  /** Parses one client frame; throws a coded error naming what is wrong. */
  parse(raw: string): ClientCommand;
}

export function loadProtocol(): Protocol {
  const spec = parseYaml(fs.readFileSync(specFile, 'utf8')) as { components: { schemas: Record<string, object> } };
  const ajv = new Ajv({ strict: false, allErrors: false });
  const validators = new Map<string, ValidateFunction>();
  for (const [command, schemaName] of Object.entries(COMMAND_SCHEMAS)) {
    validators.set(command, ajv.compile(spec.components.schemas[schemaName]!));
  }
  const known = Object.keys(COMMAND_SCHEMAS).join(', ');
  return {
    parse(raw) {
      let msg: unknown;
      try {
        msg = JSON.parse(raw);
      } catch {
        throw tandemError('BAD_JSON', 'message is not valid JSON; send an object such as {"command":"START"}');
      }
      if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
        throw tandemError('BAD_MESSAGE', 'message must be a JSON object with a "command" field');
      }
      const command = (msg as { command?: unknown }).command;
      if (typeof command !== 'string') throw tandemError('BAD_MESSAGE', `field "command" is required and must be a string (${known})`);
      const validate = validators.get(command);
      if (!validate) throw tandemError('UNKNOWN_COMMAND', `unknown command ${JSON.stringify(command.slice(0, 64))}; expected one of ${known}`);
      if (!validate(msg)) {
        const e = validate.errors![0]!;
        const field = e.instancePath ? `field "${e.instancePath.slice(1).replaceAll('/', '.')}"` : 'message';
        const extra = e.keyword === 'additionalProperties' ? ` "${String(e.params.additionalProperty)}"` : '';
        throw tandemError('BAD_MESSAGE', `${command}: ${field} ${e.message ?? 'is invalid'}${extra}`);
      }
      return msg as ClientCommand;
    },
  };
}

// ---- server → client ----

export function startedMessage(session: string, pipeline: string, resume: string): string {
  return JSON.stringify({ type: 'started', session, pipeline, resume });
}

/** `audio`: for a client-fed session, the last chunk of its audio the server holds. */
export function resumedMessage(session: string, pipeline: string, after: number, audio?: number): string {
  return JSON.stringify(audio === undefined ? { type: 'resumed', session, pipeline, after } : { type: 'resumed', session, pipeline, after, audio });
}

/** A `transcript` message: made in frames.ts, which a step thread imports too. */
export { transcriptMessage } from './frames.js';

export function errorMessage(code: ErrorCode, message: string): string {
  return JSON.stringify({ type: 'error', code, message });
}

export function stoppedMessage(session: string | null, reason: EndReason, chunks: number): string {
  return JSON.stringify({ type: 'stopped', session, reason, chunks });
}

/** Close code for each way a session ends. */
export const CLOSE_CODE: Record<EndReason, number> = {
  client: 1000,
  admin: 1000,
  completed: 1000,
  disconnect: 1000,
  shutdown: 1001,
  failed: 1011,
  // Going away: the client may start again (through the balancer, on a live instance).
  instance_lost: 1001,
};
