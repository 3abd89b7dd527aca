/** Entry point of `npm start`: configuration from the environment, then serve until a signal. */
import { createApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './logger.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`tandem: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  const app = await createApp({ config, logger });
  const address = await app.listen();
  logger.info({ address: `http://${address.address}:${address.port}` }, 'tandem listening');

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
}

main().catch((err: unknown) => {
  process.stderr.write(`tandem: failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
