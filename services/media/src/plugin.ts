import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply } from 'fastify';
import { isJobId } from '../../shared/src/keys';
import { sendProblem } from '../../shared/src/problem';
import { IMMUTABLE, StoredImage } from '../../shared/src/s3-images';
import type { ImageSource } from './image-source';

export interface MediaRoutesOptions {
  /** Where the worker stored the PNGs: the queue Redis or object storage. */
  readonly source: ImageSource;
  /** `stream` (default): the bytes through this app; `redirect`: a 302 to a presigned URL of the object (s3). */
  readonly delivery?: 'stream' | 'redirect';
  /** Lifetime of a presigned URL (redirect). @default 900 */
  readonly urlTtlSeconds?: number;
}

/**
 * `GET /images/{id}.png`: the PNG the worker rendered for job `id`. A job's image never
 * changes, so it is cacheable for a year (immutable); its ETag is a hash of the bytes, the
 * same whichever store holds it, and `If-None-Match` answers 304 (from a HEAD of the object in
 * S3: the bytes are not read). 404 until the image exists; 503 while the store is unreachable.
 *
 * Delivery `redirect` (s3 only): a 302 to a presigned URL of the object, so the bytes never pass
 * through media; the store serves them with the Cache-Control and Content-Type set at upload
 * (and its own ETag). The redirect itself is not cached (`no-store`).
 *
 * Registered by the media process and, for local use, by the gateway (SERVE_MEDIA).
 */
export const mediaRoutes: FastifyPluginAsync<MediaRoutesOptions> = async (app: FastifyInstance, options) => {
  const { source } = options;
  const delivery = options.delivery ?? 'stream';
  const ttl = options.urlTtlSeconds ?? 900;
  if (delivery === 'redirect' && !source.presign) throw new Error(`IMAGE_DELIVERY=redirect needs an image store that can presign URLs (IMAGE_STORE=s3); this one is ${source.kind}`);

  const unavailable = (reply: FastifyReply, err: unknown) => {
    reply.log.warn({ err }, 'image store unreachable');
    return sendProblem(reply.header('retry-after', '1'), 503, 'The image store is temporarily unreachable.');
  };
  const notFound = (reply: FastifyReply, id: string) =>
    sendProblem(reply.header('cache-control', 'no-store'), 404, `No image for job ${id} (yet): poll /api/images/${id}.`);

  app.get<{ Params: { file: string } }>('/images/:file', async (request, reply) => {
    const { file } = request.params;
    const id = file.endsWith('.png') ? file.slice(0, -4) : '';
    if (!isJobId(id)) return sendProblem(reply, 404, 'No such image: image URLs look like /images/{job id}.png.');
    const ifNoneMatch = request.headers['if-none-match'];
    try {
      // Conditional requests and redirects need only the ETag: a HEAD where the store has one
      // (in Redis the bytes come with it, and are used).
      const headOnly = ifNoneMatch !== undefined || delivery === 'redirect' || request.method === 'HEAD';
      const image: StoredImage | (StoredImage & { body: Buffer | Readable }) | undefined = headOnly ? await source.head(id) : await source.get(id);
      if (!image) return notFound(reply, id);
      if (matches(ifNoneMatch, image.etag)) return reply.code(304).header('etag', image.etag).header('cache-control', IMMUTABLE).send();
      if (delivery === 'redirect') {
        // Not cached: a presigned URL signed with temporary credentials dies with them, earlier
        // than its own expiry may say.
        const url = await source.presign!(id, ttl);
        return reply.code(302).header('location', url).header('cache-control', 'no-store').send();
      }
      // A HEAD gets the headers of the GET, from a HEAD of the object (its bytes are not read).
      // (An empty stream as the payload: Fastify's HEAD handling keeps a stream's Content-Length.)
      if (request.method === 'HEAD' && !('body' in image)) {
        return reply.type('image/png').header('etag', image.etag).header('cache-control', IMMUTABLE).header('content-length', image.bytes).send(Readable.from([]));
      }
      const whole = 'body' in image ? image : await source.get(id);
      if (!whole) return notFound(reply, id);
      return reply.type('image/png').header('etag', whole.etag).header('cache-control', IMMUTABLE).header('content-length', whole.bytes).send(whole.body);
    } catch (err) {
      return unavailable(reply, err);
    }
  });
};

/** RFC 9110 If-None-Match: `*` or a list of (weak or strong) tags, compared weakly. */
function matches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}
