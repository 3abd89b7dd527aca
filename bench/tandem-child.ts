/**
 * The service under test, as the bench's child process: the same `createApp` as `npm start`,
 * configured from the environment the bench passes, plus the bench's IPC stats channel.
 * Everything else the bench learns from the service it learns over its public interfaces
 * (WebSocket, REST), so the bench does not move when the service's internals do.
 */
import { createApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { serveChildStats } from './child-stats.js';

// Every bench client comes from 127.0.0.1: the per-address limit would cap a crowd at its default.
const config = loadConfig({ MAX_SESSIONS_PER_CLIENT: '0', ...process.env });
const app = await createApp({ config, logger: createLogger(config.logLevel) });
const { port } = await app.listen(0, '127.0.0.1');
serveChildStats(
  port,
  () => ({}),
  () => app.close(),
);
