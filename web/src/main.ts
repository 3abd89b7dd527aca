/**
 * The live view at `/`: asks for a token when the API wants one, subscribes to GET /api/live
 * and keeps the sessions table, the pool panel and the try-it panel up to date.
 */
import { ApiError, token } from './api.js';
import { byId } from './dom.js';
import { readLiveStream } from './live-stream.js';
import { PoolView } from './pool-view.js';
import { SessionsView } from './sessions-view.js';
import { TryIt } from './try-it.js';

/** Wait before reconnecting a stream that ended (the server restarted, the network dropped), ms. */
const RECONNECT_MS = 2000;

const status = byId('status');
const main = byId('main');
const tokenSection = byId('token-section');
const tokenForm = byId<HTMLFormElement>('token-form');
const tokenInput = byId<HTMLInputElement>('token-input');
const tokenError = byId('token-error');
const forget = byId<HTMLButtonElement>('forget-token');
const roleBadge = byId('role');

const sessions = new SessionsView();
const pool = new PoolView();
const tryIt = new TryIt();
let stream: AbortController | null = null;

tokenForm.addEventListener('submit', (e) => {
  e.preventDefault();
  token.set(tokenInput.value.trim());
  tokenInput.value = '';
  connect();
});
forget.addEventListener('click', () => {
  token.clear();
  stream?.abort();
  askForToken('Token forgotten. Enter a token to continue.');
});

function askForToken(message: string): void {
  main.hidden = true;
  tokenSection.hidden = false;
  forget.hidden = true;
  tokenError.textContent = message;
  status.textContent = 'A token is needed.';
  tokenInput.focus();
}

function connect(): void {
  stream?.abort();
  const controller = new AbortController();
  stream = controller;
  status.textContent = 'Connecting…';
  readLiveStream(
    {
      hello(hello) {
        tokenSection.hidden = true;
        main.hidden = false;
        forget.hidden = token.get() === null;
        roleBadge.textContent = hello.canStop ? 'may stop sessions' : 'read-only: may watch, not stop';
        status.textContent = 'Live.';
        sessions.canStop = hello.canStop;
        tryIt.clientTokenRequired = hello.clientTokenRequired;
        pool.history(hello.history, hello.historySeconds);
        void tryIt.load().then(
          (names) => sessions.pipelines(names),
          (err: unknown) => (status.textContent = `Could not load pipelines: ${String(err)}`),
        );
      },
      snapshot(snapshot) {
        sessions.update(snapshot);
        pool.update(snapshot.pool, snapshot.sample);
      },
    },
    controller.signal,
  ).then(
    () => retry('The live stream ended; reconnecting…', RECONNECT_MS),
    (err: unknown) => {
      if (controller.signal.aborted) return;
      if (err instanceof ApiError && err.status === 401) {
        const had = token.get() !== null;
        token.clear();
        askForToken(had ? `That token was refused (${err.code}): ${err.message}` : 'This service needs a token (ADMIN_TOKEN or ADMIN_READ_TOKEN).');
        return;
      }
      if (err instanceof ApiError) {
        retry(`${err.code}: ${err.message}`, (err.retryAfterSeconds ?? RECONNECT_MS / 1000) * 1000);
        return;
      }
      retry(`The live stream failed (${String(err)}); reconnecting…`, RECONNECT_MS);
    },
  );

  function retry(message: string, delayMs: number): void {
    if (controller.signal.aborted) return;
    status.textContent = message;
    setTimeout(() => {
      if (stream === controller) connect();
    }, delayMs);
  }
}

connect();
