/**
 * The smoke test's requests wait out a 429 as a polite client would (Retry-After), so its own
 * checks never fail on a small rate limit; the burst check can still ask for the 429 itself.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { politeFetch } from '../../scripts/smoke/checks';

let server: Server;
let url: string;
let seen: number[] = [];

beforeAll(async () => {
  server = createServer((_req, res) => {
    seen.push(Date.now());
    if (seen.length === 1) {
      res.writeHead(429, { 'retry-after': '1', 'content-type': 'application/problem+json' }).end('{"status":429}');
    } else {
      res.writeHead(200, { 'content-type': 'text/event-stream' }).end('event: status\ndata: {}\n\n');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/images/x/events`;
});
beforeEach(() => (seen = []));
afterAll(() => new Promise((r) => server.close(r)));

test('a 429 is waited out for its Retry-After, then the request is sent again', async () => {
  const res = await politeFetch(url, { timeoutMs: 5000 });
  expect(res.status).toBe(200);
  expect(await res.text()).toContain('event: status');
  expect(seen).toHaveLength(2);
  expect(seen[1]! - seen[0]!).toBeGreaterThanOrEqual(950);
});

test('with retry429: false the 429 itself is the answer', async () => {
  const res = await politeFetch(url, { timeoutMs: 5000, retry429: false });
  expect(res.status).toBe(429);
  expect(res.headers.get('retry-after')).toBe('1');
  expect(seen).toHaveLength(1);
});
