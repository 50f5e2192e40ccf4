import pino, { Logger, LevelWithSilent } from 'pino';

/** JSON logs on stdout, one line per event, with the service name on every line. */
export function createLogger(service: string, level: LevelWithSilent | string = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({ name: `levee-${service}`, level, base: { service } });
}

export type { Logger };
