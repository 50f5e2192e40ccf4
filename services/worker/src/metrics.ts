import { Counter, Histogram, Registry } from 'prom-client';

export type JobResult = 'completed' | 'failed' | 'retried' | 'postponed' | 'cancelled' | 'expired';

/** The worker's own metrics (the breaker registers `levee_circuit_state` itself). */
export interface WorkerMetrics {
  jobs: Counter<'result'>;
  duration: Histogram<'result'>;
}

const RESULTS: JobResult[] = ['completed', 'failed', 'retried', 'postponed', 'cancelled', 'expired'];

export function createWorkerMetrics(registry: Registry): WorkerMetrics {
  const metrics: WorkerMetrics = {
    jobs: new Counter({
      name: 'levee_jobs_total',
      help: 'Render job attempts by result: completed, failed (for good), retried (will run again), postponed (breaker open, model or store not ready), cancelled (DELETE), expired (past JOB_DEADLINE_SECONDS, not rendered).',
      labelNames: ['result'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'levee_job_duration_seconds',
      help: 'Time spent processing one job attempt, by result.',
      labelNames: ['result'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
  };
  // Every series exists from the start, so rate() and alerts see a 0, not a gap.
  for (const result of RESULTS) metrics.jobs.inc({ result }, 0);
  return metrics;
}
