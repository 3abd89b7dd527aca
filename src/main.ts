/** Entry point of `npm start`: configuration from the environment, then serve until a signal. */
import { createApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { DataDirLockedError } from './data-dir-lock.js';
import { createLogger } from './logger.js';

/** Exit status when the service refuses to start over its configuration or environment. */
const EXIT_REFUSED = 2;

function refuse(message: string): never {
  process.stderr.write(`tandem: ${message}\n`);
  process.exit(EXIT_REFUSED);
}

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) refuse(err.message);
    throw err;
  }
  const logger = createLogger(config.logLevel);
  const app = await createApp({ config, logger });
  let address;
  try {
    // The port first, then DATA_DIR: a second instance fails on whichever it shares, never
    // after touching the first one's data.
    address = await app.listen();
  } catch (err) {
    await app.close();
    if (err instanceof DataDirLockedError) refuse(`refusing to start: ${err.message}`);
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      refuse(`refusing to start: cannot listen on ${config.host}:${config.port} (${code}); set HOST/PORT, or stop what uses it`);
    }
    throw err;
  }
  const onSignal = (signal: NodeJS.Signals) => {
    logger.info({ signal }, 'shutting down');
    const began = performance.now();
    app.close().then(
      () => {
        logger.info({ signal, shutdownMs: Math.round(performance.now() - began) }, 'tandem stopped');
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  // Announced only once a signal is handled: a supervisor (or a test) that sends SIGTERM as soon
  // as it reads this line must not meet the default action, which kills without shutting down.
  logger.info({ address: `http://${address.address}:${address.port}` }, 'tandem listening');
}

main().catch((err: unknown) => {
  process.stderr.write(`tandem: failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
