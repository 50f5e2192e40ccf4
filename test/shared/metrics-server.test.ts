import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { Counter, Registry } from 'prom-client';
import { createMetricsServer } from '../../services/shared/src/metrics-server';
import { request } from '../helpers/http';

describe('the metrics listener (METRICS_PORT)', () => {
  const registry = new Registry();
  const counter = new Counter({ name: 'levee_test_total', help: 'a test counter', registers: [registry] });
  const server = createMetricsServer(registry);
  let port: number;

  beforeAll(async () => {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('serves GET /metrics as Prometheus text, read at scrape time', async () => {
    counter.inc(3);
    const res = await request(port, '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe(registry.contentType);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body.toString()).toContain('levee_test_total 3');
  });

  it('answers anything else with a problem: 404 for other paths, 405 for other methods', async () => {
    const other = await request(port, '/api/styles');
    expect(other.status).toBe(404);
    expect(other.headers['content-type']).toBe('application/problem+json');
    expect(other.json).toEqual({ type: 'about:blank', title: 'Not Found', status: 404, detail: 'This listener serves only GET /metrics.' });
    const post = await request(port, '/metrics', { body: {} });
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
  });

  it('answers a failing collector with a 500 problem, not a hang', async () => {
    const broken = new Registry();
    new Counter({ name: 'levee_broken_total', help: 'fails', registers: [broken], collect: () => Promise.reject(new Error('boom')) });
    const s = createMetricsServer(broken);
    s.listen(0, '127.0.0.1');
    await once(s, 'listening');
    try {
      const res = await request((s.address() as AddressInfo).port, '/metrics');
      expect(res.status).toBe(500);
      expect(res.json).toMatchObject({ status: 500, title: 'Internal Server Error' });
    } finally {
      s.close();
    }
  });
});
