import { ConfigError } from './config.js';
import { closeLogger, type Logger } from './logger.js';

export interface Running {
  /** Stops taking work, finishes or hands back what is in flight, closes connections. */
  stop(): Promise<void>;
}

/** Exit code and one line per problem when the configuration is wrong (docs/processes.md). */
export function exitOnConfigError(service: string, err: unknown): never {
  if (err instanceof ConfigError) {
    for (const line of err.problems) process.stderr.write(`${service}: configuration error: ${line}\n`);
    process.exit(78);
  }
  process.stderr.write(`${service}: failed to start: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
}

/** Loads the configuration, or exits with one line per bad variable (docs/processes.md). */
export function loadOrExit<C>(service: string, load: () => C): C {
  try {
    return load();
  } catch (err) {
    return exitOnConfigError(service, err);
  }
}

/**
 * Runs a process until SIGTERM/SIGINT, then stops it within `graceMs` (docs/processes.md: 10 s),
 * exiting 0 after a clean stop and 1 if the stop failed or ran out of time.
 */
export function handleSignals(service: string, logger: Logger, running: Running, graceMs = 9_000): void {
  let stopping = false;
  const onSignal = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down', { signal });
    const timer = setTimeout(() => {
      logger.error('shutdown timed out', { graceMs });
      process.exit(1);
    }, graceMs);
    timer.unref();
    running.stop().then(
      async () => {
        logger.info('stopped');
        await closeLogger(logger);
        process.exit(0);
      },
      async (err) => {
        logger.error('shutdown failed', { err });
        await closeLogger(logger);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('unhandledRejection', (err) => logger.error('unhandled rejection', { service, err }));
}
