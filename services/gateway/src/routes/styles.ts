import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { annotate } from '../../../shared/src/tracing';
import { isBreakerOpen } from '../../../shared/src/breaker';
import { ModelClient, ModelHttpError } from '../../../shared/src/model-client';
import type { Style } from '../../../shared/src/model-settings';
import { sendProblem } from '../../../shared/src/problem';
import { CacheResult, FloodCache, NOT_FOUND } from '../cache';

export interface StyleRoutesOptions {
  readonly cache: FloodCache;
  readonly modelClient: ModelClient;
  /**
   * A configured catalog (MODEL_STYLES) served instead of the model's, for a model API that has
   * none (openai-images); null: none configured (404). @default undefined: ask the model API
   */
  readonly catalog?: readonly Style[] | null;
}

/** RFC 9211 Cache-Status values (CONTRACT section 3). */
const CACHE_STATUS = { hit: 'levee; hit', miss: 'levee; fwd=miss', coalesced: 'levee; fwd=miss', stale: 'levee; fwd=stale' } as const;

/**
 * `GET /api/styles`: the style catalog from the model API, through the flood-proof cache.
 * Origin failing (or breaker open) with a stale copy → the stale copy; with none → 503 +
 * Retry-After. The model answering 404 is cached negatively and answered 404. With a
 * configured catalog (openai-images: MODEL_STYLES) that catalog is served, through the same
 * cache (the same headers), and no model call is made.
 */
export const styleRoutes: FastifyPluginAsync<StyleRoutesOptions> = async (app, { cache, modelClient, catalog }) => {
  const configured = catalog === undefined ? undefined : catalog === null ? NOT_FOUND : { styles: catalog };
  const loader = configured
    ? () => Promise.resolve(configured)
    : () =>
        modelClient.styles().catch((err: unknown) => {
          if (err instanceof ModelHttpError && err.status === 404) return NOT_FOUND;
          throw err;
        });

  const send = (reply: FastifyReply, result: CacheResult) => {
    reply.header('cache-status', CACHE_STATUS[result.source]);
    annotate(() => ({ 'levee.cache.result': result.source, 'levee.breaker.state': modelClient.breaker.state }));
    if (result.entry.body === null) return sendProblem(reply, 404, 'The model API has no style catalog.');
    return reply.header('content-type', 'application/json; charset=utf-8').send(result.entry.body);
  };

  app.get('/api/styles', (_request, reply) => {
    const result = cache.get('styles', loader);
    if (!(result instanceof Promise)) return send(reply, result);
    return result.then(
      (r) => send(reply, r),
      (err: unknown) => {
        const breakerOpen = isBreakerOpen(err);
        const seconds = breakerOpen ? Math.max(1, Math.ceil(modelClient.breaker.retryAfterMs() / 1000)) : 1;
        if (!breakerOpen) reply.log.warn({ err }, 'style catalog unavailable');
        return sendProblem(
          reply.header('retry-after', String(seconds)),
          503,
          breakerOpen ? 'The model API is failing (circuit open) and no cached catalog exists.' : 'The style catalog is temporarily unavailable.',
        );
      },
    );
  });
};
