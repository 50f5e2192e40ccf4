import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';

/**
 * RFC 9457 problem details: the one shape of every error body Levee sends.
 * Full detail goes to the log; the client gets a title and a safe detail, never a stack.
 */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  [extension: string]: unknown;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export function problemBody(status: number, detail: string, extra: Record<string, unknown> = {}): Problem {
  return { type: 'about:blank', title: TITLES[status] ?? 'Error', status, detail, ...extra };
}

/** Sends a problem-details response. */
export function sendProblem(reply: FastifyReply, status: number, detail: string, extra: Record<string, unknown> = {}): FastifyReply {
  return reply.code(status).type('application/problem+json').send(problemBody(status, detail, extra));
}

/** Maps Fastify's own errors (validation, body limit, content type, bad JSON) to problem details. */
export function registerProblemHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err.validation) {
      return sendProblem(reply, 400, `${err.validationContext ?? 'request'} ${err.validation.map((v) => `${v.instancePath || ''} ${v.message ?? ''}`.trim()).join('; ')}`.trim());
    }
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) {
      request.log.error({ err }, 'request failed');
      return sendProblem(reply, status, status === 503 ? 'The service is temporarily unavailable.' : 'An unexpected error occurred.');
    }
    request.log.info({ err: { code: err.code, message: err.message } }, 'client error');
    return sendProblem(reply, status, clientDetail(err));
  });
  app.setNotFoundHandler((request, reply) => sendProblem(reply, 404, `No route for ${request.method} ${request.url.split('?')[0]}.`));
}

function clientDetail(err: FastifyError): string {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'The request body is larger than allowed.';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'The request body must be application/json.';
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return 'The request body is empty; a JSON object is required.';
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return 'The request body is not valid JSON.';
    default:
      return err.message;
  }
}
