import { once } from 'node:events';
import { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { createHealthServer } from '../../services/worker/src/health';
import { ProgressMonitor } from '../../services/worker/src/progress';
import { request } from '../helpers/http';

describe('worker health server', () => {
  it('fails liveness only while a model call is stuck past its bound, and readiness while not ready', async () => {
    let now = 0;
    const progress = new ProgressMonitor(1000, () => now);
    let ready = true;
    const server = createHealthServer({ registry: new Registry(), progress, ready: () => ready });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    try {
      expect((await request(port, '/healthz')).status).toBe(200);
      let finish!: () => void;
      const call = progress.track(() => new Promise<void>((r) => (finish = r)));
      now = 1000;
      expect((await request(port, '/healthz')).status).toBe(200);
      now = 1001;
      const stuck = await request(port, '/healthz');
      expect(stuck.status).toBe(503);
      expect(stuck.json).toMatchObject({ status: 'stuck', inFlight: 1, oldestMs: 1001 });
      finish();
      await call;
      expect((await request(port, '/healthz')).status).toBe(200);

      expect((await request(port, '/readyz')).status).toBe(200);
      ready = false;
      expect((await request(port, '/readyz')).status).toBe(503);
      expect((await request(port, '/metrics')).headers['content-type']).toMatch(/^text\/plain/);
      expect((await request(port, '/nope')).status).toBe(404);
    } finally {
      server.close();
    }
  });
});
