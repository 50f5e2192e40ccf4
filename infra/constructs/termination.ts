import type { LeveeConfig } from '../config/resolve';

/** Slack on top of every computed grace period (signal delivery, logging, closing sockets). */
export const GRACE_MARGIN_SECONDS = 5;

/**
 * HTTP apps: preStop sleep, then SIGTERM → readiness fails and the app waits
 * SHUTDOWN_DELAY_SECONDS (gateway, media), then in-flight requests drain.
 */
export function httpGracePeriodSeconds(config: LeveeConfig, appHasShutdownDelay: boolean): number {
  const s = config.shutdown;
  return s.preStopSeconds + (appHasShutdownDelay ? s.shutdownDelaySeconds : 0) + s.drainSeconds + GRACE_MARGIN_SECONDS;
}

/**
 * Workers finish their active jobs on SIGTERM; a job is bounded by one model call
 * (MODEL_TIMEOUT_MS) plus storing the PNG, so twice the timeout plus 15 s outlasts the longest job.
 */
export function workerGracePeriodSeconds(config: LeveeConfig): number {
  return Math.ceil(config.worker.modelTimeoutMs / 1000) * 2 + 15;
}
