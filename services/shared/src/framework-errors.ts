import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { sendProblem } from './problem';

/**
 * Fastify's `frameworkErrors` option: errors raised by the router before any route or error
 * handler runs (a malformed URL, a path parameter over `maxParamLength`) become problem
 * details too, instead of Fastify's own JSON shape.
 */
export function problemFrameworkErrors(err: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    sendProblem(reply, 414, 'A path segment of the URL is too long.', { title: 'URI Too Long' });
    return;
  }
  sendProblem(reply, err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 400, 'The URL is malformed.');
}
