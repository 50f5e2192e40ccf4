import { Counter, Histogram, Registry } from 'prom-client';

export type JobResult = 'completed' | 'failed' | 'retried' | 'postponed';

/** The worker's own metrics (the breaker registers `levee_circuit_state` itself). */
export interface WorkerMetrics {
  jobs: Counter<'result'>;
  duration: Histogram<'result'>;
}

export function createWorkerMetrics(registry: Registry): WorkerMetrics {
  return {
    jobs: new Counter({
      name: 'levee_jobs_total',
      help: 'Render job attempts by result: completed, failed (for good), retried (will run again), postponed (breaker open).',
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
}
