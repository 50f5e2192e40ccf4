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

/** env ROUTES = [{ prefix, service, port }], env PORT; longest prefix wins, element-wise (Prefix / PathPrefix). */
export const L7_SCRIPT = `
const http = require('http');
const routes = JSON.parse(process.env.ROUTES).sort((a, b) => b.prefix.length - a.prefix.length);
const matches = (path, prefix) => prefix === '/' || path === prefix || path.startsWith(prefix.endsWith('/') ? prefix : prefix + '/');
http.createServer((req, res) => {
  const path = req.url.split('?')[0];
  const route = routes.find((r) => matches(path, r.prefix));
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
