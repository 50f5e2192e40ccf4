import net from 'node:net';
import { parseMediaSettings } from '../../services/media/src/settings';
import { buildMedia } from '../../services/media/src/app';
import { parseGatewaySettings } from '../../services/gateway/src/settings';
import { drainAndClose } from '../../services/shared/src/http-lifecycle';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../../services/shared/src/http-server';
import { randomUUID } from 'node:crypto';
import { freePort } from '../helpers/ports';
import { ServiceProcess } from '../helpers/processes';
import { TEST_REDIS_URL } from '../helpers/redis-url';
import { portOf, Stack, testSettings, waitReady } from './helpers';

/**
 * Slow clients (slowloris): a request whose headers or body never finish arriving must not
 * hold its socket, or the drain at SIGTERM, for ever. Fastify's own default is no timeout.
 */

/** Sends `head` on a raw connection and never finishes the request; resolves with what the server wrote once it closes. */
function stall(port: number, head: string): Promise<{ reply: string; closedAfterMs: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write(head));
    let reply = '';
    socket.on('data', (d) => (reply += d.toString()));
    socket.on('error', reject);
    socket.on('close', () => resolve({ reply, closedAfterMs: Date.now() - started }));
  });
}

jest.setTimeout(20_000);

const BODY_NEVER_ENDS = 'POST /api/images HTTP/1.1\r\nHost: levee\r\nContent-Type: application/json\r\nContent-Length: 16000\r\n\r\n{"prompt":';
const HEADERS_NEVER_END = 'GET /api/styles HTTP/1.1\r\nHost: levee\r\nX-Slow: ';

describe('slow clients', () => {
  let stack: Stack;
  beforeEach(() => {
    stack = new Stack();
  });
  afterEach(() => stack.close());

  it.each([
    ['a body that never finishes', BODY_NEVER_ENDS],
    ['headers that never finish', HEADERS_NEVER_END],
  ])('%s: 408 problem details after REQUEST_TIMEOUT_MS, and the socket is closed', async (_name, head) => {
    const origin = await stack.origin(1);
    const app = await stack.gateway(testSettings({ MODEL_URL: origin.url, REQUEST_TIMEOUT_MS: '1000' }));
    const { reply, closedAfterMs } = await stall(portOf(app), head);
    expect(reply).toMatch(/^HTTP\/1\.1 408 /);
    expect(reply).toMatch(/content-type: application\/problem\+json/i);
    expect(reply).toContain('"status":408');
    expect(closedAfterMs).toBeGreaterThanOrEqual(900);
    // the gateway is still serving
    expect((await fetch(`http://127.0.0.1:${portOf(app)}/healthz`)).status).toBe(200);
  });

  it('a request already answered (a 429 before its body arrived) gets no second answer when it then times out', async () => {
    const origin = await stack.origin(1);
    const app = await stack.gateway(testSettings({ MODEL_URL: origin.url, REQUEST_TIMEOUT_MS: '1000', RATE_LIMIT_PER_SECOND: '1' }));
    expect((await fetch(`http://127.0.0.1:${portOf(app)}/api/styles`)).status).toBe(200); // the budget is used up
    const { reply } = await stall(portOf(app), BODY_NEVER_ENDS);
    expect(reply).toMatch(/^HTTP\/1\.1 429 /);
    expect(reply.match(/HTTP\/1\.1 \d{3} /g)).toHaveLength(1);
  });

  it('the drain at SIGTERM ends at its deadline (DRAIN_TIMEOUT_SECONDS), instead of waiting on a stalled request for ever', async () => {
    const origin = await stack.origin(1);
    const app = await stack.gateway(testSettings({ MODEL_URL: origin.url, REQUEST_TIMEOUT_MS: '1000' }));
    const stalled = stall(portOf(app), BODY_NEVER_ENDS);
    await new Promise((r) => setTimeout(r, 100)); // the request is in flight
    const closing = Date.now();
    // Node stops its request-timeout checks once the server closes: only the drain's own
    // deadline ends this request.
    await drainAndClose(app, app.lifecycle, 0, undefined, 1000);
    expect(Date.now() - closing).toBeGreaterThanOrEqual(900);
    expect((await stalled).closedAfterMs).toBeGreaterThanOrEqual(900);
  });

  it('a gateway process given SIGTERM with a stalled request in flight exits 0 at DRAIN_TIMEOUT_SECONDS', async () => {
    const origin = await stack.origin(1);
    const port = await freePort();
    const queueName = `t-${randomUUID().slice(0, 8)}`;
    const gateway = new ServiceProcess('gateway', {
      PORT: String(port), HOST: '127.0.0.1', REDIS_URL: TEST_REDIS_URL, MODEL_URL: origin.url, QUEUE_NAME: queueName,
      SHUTDOWN_DELAY_SECONDS: '0', DRAIN_TIMEOUT_SECONDS: '1',
    });
    try {
      await gateway.waitHttp(port, '/readyz');
      const stalled = stall(port, BODY_NEVER_ENDS);
      await new Promise((r) => setTimeout(r, 200)); // the request is in flight
      const signalled = Date.now();
      gateway.signal('SIGTERM');
      expect(await gateway.exited).toEqual({ code: 0, signal: null });
      expect(Date.now() - signalled).toBeGreaterThanOrEqual(900);
      await stalled;
    } finally {
      await gateway.kill();
      const admin = stack.redis();
      await waitReady(admin);
      const keys = await admin.keys(`bull:${queueName}:*`);
      if (keys.length) await admin.del(...keys);
    }
  });

  it('defaults: the whole request within 15 s, the headers within 10 s, for the gateway and media', async () => {
    expect(parseGatewaySettings({}).REQUEST_TIMEOUT_MS).toBe(DEFAULT_REQUEST_TIMEOUT_MS);
    expect(parseMediaSettings({}).REQUEST_TIMEOUT_MS).toBe(DEFAULT_REQUEST_TIMEOUT_MS);
    expect(parseGatewaySettings({}).DRAIN_TIMEOUT_SECONDS).toBe(20);
    expect(parseMediaSettings({}).DRAIN_TIMEOUT_SECONDS).toBe(20);
    expect(DEFAULT_REQUEST_TIMEOUT_MS).toBe(15_000);
    const origin = await stack.origin(1);
    const app = await stack.gateway(testSettings({ MODEL_URL: origin.url }));
    expect(app.server.requestTimeout).toBe(15_000);
    expect(app.server.headersTimeout).toBe(10_000);
    const media = buildMedia(parseMediaSettings({ REDIS_URL: TEST_REDIS_URL }));
    try {
      expect(media.server.requestTimeout).toBe(15_000);
      expect(media.server.headersTimeout).toBe(10_000);
    } finally {
      await media.close();
    }
  });

  it('REQUEST_TIMEOUT_MS out of range is refused, naming the variable', () => {
    expect(() => parseGatewaySettings({ REQUEST_TIMEOUT_MS: '10' })).toThrow(/REQUEST_TIMEOUT_MS/);
    expect(() => parseMediaSettings({ REQUEST_TIMEOUT_MS: 'soon' })).toThrow(/REQUEST_TIMEOUT_MS/);
  });
});
