import { IncomingMessage, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { problemBody, sendProblem } from './problem';

/** Records one response that was written before Fastify saw its request (http-metrics.ts `recordRaw`). */
export type RawResponseRecorder = (request: IncomingMessage, status: number, seconds: number) => void;

/** Longest path parameter the router accepts; longer is a 414 (every id we issue is far shorter). */
export const MAX_PARAM_LENGTH = 2048;

/**
 * Fastify's `frameworkErrors` option: errors raised by the router before any route or error
 * handler runs (a malformed URL, a path parameter over `MAX_PARAM_LENGTH`) become problem
 * details too, instead of Fastify's own JSON shape.
 */
export function problemFrameworkErrors(err: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    sendProblem(reply, 414, 'A path segment of the URL is too long.');
    return;
  }
  sendProblem(reply, err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 400, 'The URL is malformed.');
}

/**
 * Where `registerHttpMetrics` puts each app's recorders, so that what no hook sees is counted
 * too: router errors (`raw`, as route "unmatched") and malformed HTTP (`malformed`, by status).
 */
export const errorRecorders = new WeakMap<object, { raw: RawResponseRecorder; malformed: (status: number) => void }>();

type FrameworkErrorHandler = (err: FastifyError, request: FastifyRequest, reply: FastifyReply) => void;

/**
 * Wraps a `frameworkErrors` handler so that its answers reach the HTTP metrics (as route
 * "unmatched"): Fastify runs no route hooks for them, so a flood of malformed URLs would
 * otherwise leave no trace in `levee_http_requests_total`.
 */
export function countedFrameworkErrors(handler: FrameworkErrorHandler): FrameworkErrorHandler {
  return (err, request, reply) => {
    const record = errorRecorders.get(request.server)?.raw;
    if (record) {
      const started = performance.now();
      reply.raw.once('finish', () => record(request.raw, reply.raw.statusCode, (performance.now() - started) / 1000));
    }
    handler(err, request, reply);
  };
}

/**
 * Whether the request on `socket` already has its answer: a response under way, or one sent
 * before the request's body arrived (a 429 or 413), after which Node discards ("dumps") the
 * rest of the body. A timeout of that body must not get a second, unasked answer. (Node's
 * internals: the response bound to the socket, and the request its parser is still reading.)
 */
function alreadyAnswered(socket: Socket): boolean {
  const s = socket as Socket & { _httpMessage?: { headersSent?: boolean } | null; parser?: { incoming?: { _dumped?: boolean } | null } | null };
  return Boolean(s._httpMessage?.headersSent || s.parser?.incoming?._dumped);
}

/**
 * Node's `clientError` (what Fastify's `clientErrorHandler` option receives, bound to the
 * app): a request that is not HTTP enough to reach Fastify — a malformed request line or
 * header, headers over the size limit, a request that timed out — still gets a
 * problem-details answer, then the connection is closed (its framing can no longer be
 * trusted). Counted in the app's metrics: it never becomes a request, so no hook sees it.
 */
export function problemClientErrorHandler(this: unknown, err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  if (socket.writable && !alreadyAnswered(socket)) {
    const [status, detail] =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'The request headers are too large.']
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'The request was not received in time.']
          : [400, 'The request is not well-formed HTTP.'];
    if (typeof this === 'object' && this !== null) errorRecorders.get(this)?.malformed(status);
    const body = JSON.stringify(problemBody(status, detail));
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/problem+json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
}

/**
 * The error-shape options every Levee HTTP app passes to Fastify, so that no error, whatever
 * layer raises it, leaves in another shape than RFC 9457 problem details:
 * - router errors (counted in the HTTP metrics) and malformed HTTP as above;
 * - `return503OnClosing: false`: once the server is closing, a request that still arrives on
 *   an open keep-alive connection is served (with `Connection: close`) instead of getting
 *   Fastify's fixed JSON 503; the load balancer already sends new work elsewhere, and the
 *   drain waits for it like for any request in flight.
 */
export const PROBLEM_SERVER_OPTIONS = {
  frameworkErrors: countedFrameworkErrors(problemFrameworkErrors),
  clientErrorHandler: problemClientErrorHandler,
  return503OnClosing: false,
  routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
} as const;
