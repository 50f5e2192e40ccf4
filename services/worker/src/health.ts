import http from 'node:http';
import type { Registry } from 'prom-client';
import { sendMetrics } from '../../shared/src/metrics-server';
import type { ProgressMonitor } from './progress';

export interface HealthServerOptions {
  readonly registry: Registry;
  /** The model calls in flight; none (the webhook sender): liveness is the process answering. */
  readonly progress?: ProgressMonitor;
  /** Readiness: false while draining or while the queue connection is down. */
  readonly ready: () => boolean;
}

/**
 * The worker's only HTTP surface, on METRICS_PORT: `/metrics`, `/healthz` (liveness:
 * 503 only when the progress monitor sees a stuck model call; never touches Redis) and
 * `/readyz`. Plain node:http: three fixed routes do not need a framework.
 */
export function createHealthServer(options: HealthServerOptions): http.Server {
  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  };
  return http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { status: 405, title: 'Method Not Allowed' });
    switch (path) {
      case '/healthz': {
        if (!options.progress) return json(res, 200, { status: 'ok' });
        const status = options.progress.status();
        return json(res, status.stuck ? 503 : 200, { status: status.stuck ? 'stuck' : 'ok', ...status });
      }
      case '/readyz':
        return options.ready() ? json(res, 200, { status: 'ready' }) : json(res, 503, { status: 'not ready' });
      case '/metrics':
        return sendMetrics(options.registry, res);
      default:
        return json(res, 404, { status: 404, title: 'Not Found' });
    }
  });
}
