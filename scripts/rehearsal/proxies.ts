/**
 * The two stand-ins the rehearsal runs where a cluster has infrastructure of its own, as
 * `node -e` programs inside one of the app images (they carry Node and nothing else is
 * needed): a TCP forwarder for Services whose port differs from their pods' targetPort
 * (kube-proxy's job; for a LoadBalancer Service it is also the external address), and an
 * L7 router that sends each path prefix of the manifests' Ingress/HTTPRoute to its Service
 * (the ingress controller's or Gateway's job), adding X-Forwarded-For as they do.
 */

/** env FORWARDS = [{ port, targets: [{ ip, port }] }]; round-robin per connection. */
export const FORWARDER_SCRIPT = `
const net = require('net');
for (const f of JSON.parse(process.env.FORWARDS)) {
  let next = 0;
  net.createServer((client) => {
    const t = f.targets[next++ % f.targets.length];
    const upstream = net.connect(t.port, t.ip);
    const close = () => { client.destroy(); upstream.destroy(); };
    client.on('error', close); upstream.on('error', close); client.on('close', close); upstream.on('close', close);
    client.pipe(upstream).pipe(client);
  }).listen(f.port, '0.0.0.0');
}
process.on('SIGTERM', () => process.exit(0));
`;

/**
 * env ROUTES = [{ prefix, regex?, service, port }], env PORT; regular-expression routes first
 * (as Envoy Gateway orders them), then the longest prefix, element-wise (Prefix / PathPrefix).
 * Responses stream through unbuffered (event streams).
 */
export const L7_SCRIPT = `
const http = require('http');
const all = JSON.parse(process.env.ROUTES);
const routes = [...all.filter((r) => r.regex), ...all.filter((r) => !r.regex).sort((a, b) => b.prefix.length - a.prefix.length)];
const matches = (path, r) => r.regex ? new RegExp(r.regex).test(path) : r.prefix === '/' || path === r.prefix || path.startsWith(r.prefix.endsWith('/') ? r.prefix : r.prefix + '/');
http.createServer((req, res) => {
  const path = req.url.split('?')[0];
  const route = routes.find((r) => matches(path, r));
  if (!route) { res.writeHead(404, { 'content-type': 'text/plain' }); res.end('no route for ' + path + '\\n'); return; }
  const xff = [req.headers['x-forwarded-for'], req.socket.remoteAddress].filter(Boolean).join(', ');
  const headers = { ...req.headers, 'x-forwarded-for': xff, 'x-forwarded-proto': 'http' };
  const upstream = http.request({ host: route.service, port: route.port, method: req.method, path: req.url, headers }, (u) => {
    res.writeHead(u.statusCode, u.headers);
    u.pipe(res);
  });
  upstream.on('error', (e) => { if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' }); res.end('upstream ' + route.service + ': ' + e.message + '\\n'); });
  req.pipe(upstream);
}).listen(Number(process.env.PORT), '0.0.0.0');
process.on('SIGTERM', () => process.exit(0));
`;

/** Container port of the L7 stand-in. */
export const L7_PORT = 8080;

/**
 * The webhook receiver stand-in (env WEBHOOK_SECRET, PORT): verifies each POST with the
 * `standardwebhooks` verifier (from the repository's node_modules, mounted read-only), answers
 * 204, and lists what arrived for a job at GET /received?job=<id>.
 */
export const WEBHOOK_RECEIVER_SCRIPT = `
const http = require('http');
const { Webhook } = require('/opt/levee-rehearsal/node_modules/standardwebhooks');
const verifier = new Webhook(process.env.WEBHOOK_SECRET);
const received = [];
http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    if (req.method === 'GET' && req.url.startsWith('/received')) {
      const job = new URL(req.url, 'http://receiver').searchParams.get('job');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(received.filter((r) => r.jobId === job)));
      return;
    }
    const body = Buffer.concat(chunks);
    let payload, verified = false;
    try { payload = verifier.verify(body, req.headers); verified = true; } catch { try { payload = JSON.parse(body.toString()); } catch {} }
    received.push({ jobId: payload && payload.data && payload.data.id, type: payload && payload.type, verified, webhookId: req.headers['webhook-id'] });
    res.writeHead(204);
    res.end();
  });
}).listen(Number(process.env.PORT), '0.0.0.0');
process.on('SIGTERM', () => process.exit(0));
`;
