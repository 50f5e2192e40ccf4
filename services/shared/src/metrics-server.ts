import http from 'node:http';
import type { Registry } from 'prom-client';
import { problemBody } from './problem';

/**
 * Writes the registry's Prometheus text on `res` (a 500 problem if a collector fails).
 * Shared by the metrics listener of the HTTP services and the worker's health server.
 */
export function sendMetrics(registry: Registry, res: http.ServerResponse): void {
  registry.metrics().then(
    (text) => {
      res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
      res.end(text);
    },
    () => sendProblem(res, 500, 'Collecting the metrics failed.'),
  );
}

function sendProblem(res: http.ServerResponse, status: number, detail: string): void {
  res.writeHead(status, { 'content-type': 'application/problem+json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(problemBody(status, detail)));
}

/**
 * The metrics listener of an HTTP service (METRICS_PORT): `GET /metrics` and nothing else.
 * It is a server of its own so that the public PORT never serves metrics (over the L4
 * LoadBalancer anyone could read them, unthrottled) and so that the manifests can expose it
 * on a Service port only Prometheus's namespace may reach. Plain node:http: one fixed route
 * needs no framework, and a scrape never competes with the app's hooks (rate limiter, drain).
 */
export function createMetricsServer(registry: Registry): http.Server {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') return sendProblem(res, 404, 'This listener serves only GET /metrics.');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return sendProblem(res, 405, 'Use GET.');
    }
    sendMetrics(registry, res);
  });
  // A scrape is short; idle keep-alive connections must not hold a shutdown.
  server.keepAliveTimeout = 5000;
  server.requestTimeout = 10_000;
  server.headersTimeout = 5000;
  return server;
}
