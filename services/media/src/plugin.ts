import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type Redis from 'ioredis';
import { imageKey, isJobId } from '../../shared/src/keys';
import { sendProblem } from '../../shared/src/problem';

export interface MediaRoutesOptions {
  /** The queue Redis, where the worker stores rendered PNGs (`imageKey(id)`). */
  readonly redis: Redis;
}

const IMMUTABLE = 'public, max-age=31536000, immutable';

/**
 * `GET /images/{id}.png`: the PNG the worker rendered for job `id`, straight from Redis.
 * A job's image never changes, so it is cacheable for a year (immutable); the ETag is a
 * hash of the bytes and `If-None-Match` answers 304. 404 until the image exists.
 * Registered by the media process and, for local use, by the gateway.
 */
export const mediaRoutes: FastifyPluginAsync<MediaRoutesOptions> = async (app: FastifyInstance, options) => {
  const { redis } = options;
  app.get<{ Params: { file: string } }>('/images/:file', async (request, reply) => {
    const { file } = request.params;
    const id = file.endsWith('.png') ? file.slice(0, -4) : '';
    if (!isJobId(id)) return sendProblem(reply, 404, 'No such image: image URLs look like /images/{job id}.png.');
    let png: Buffer | null;
    try {
      png = await redis.getBuffer(imageKey(id));
    } catch (err) {
      request.log.warn({ err }, 'image store unreachable');
      return sendProblem(reply.header('retry-after', '1'), 503, 'The image store is temporarily unreachable.');
    }
    if (!png) return sendProblem(reply.header('cache-control', 'no-store'), 404, `No image for job ${id} (yet): poll /api/images/${id}.`);
    const etag = `"${createHash('sha256').update(png).digest('base64url').slice(0, 27)}"`;
    reply.header('etag', etag).header('cache-control', IMMUTABLE);
    if (matches(request.headers['if-none-match'], etag)) return reply.code(304).send();
    return reply.type('image/png').header('content-length', png.length).send(png);
  });
};

/** RFC 9110 If-None-Match: `*` or a list of (weak or strong) tags, compared weakly. */
function matches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}
