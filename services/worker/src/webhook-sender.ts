import http from 'node:http';
import { annotate, queueTelemetry } from '../../shared/src/tracing';
import https from 'node:https';
import { UnrecoverableError, Worker } from 'bullmq';
import type Redis from 'ioredis';
import { Counter, Histogram, Registry } from 'prom-client';
import { Webhook } from 'standardwebhooks';
import type { Logger } from '../../shared/src/logger';
import { checkWebhookUrlSyntax, guardedLookup, WebhookUrlError, WebhookUrlPolicy } from '../../shared/src/webhook-url';
import { WebhookDelivery, WebhookState, webhookQueueName, writeWebhookState } from '../../shared/src/webhooks';

/**
 * The webhook sender: a BullMQ worker on the webhook queue that posts each delivery once per
 * attempt, signed per Standard Webhooks (the `standardwebhooks` package: `webhook-id`,
 * `webhook-timestamp`, `webhook-signature`, HMAC-SHA256 with WEBHOOK_SECRET). The
 * `webhook-id` is the job's (`msg_<job id>`), the same on every attempt, so receivers can
 * de-duplicate. A 2xx delivers; anything else (another status, a timeout, a refused
 * connection) is retried by BullMQ with the delivery's backoff (WEBHOOK_JOB_OPTIONS); an
 * address the policy refuses, found at connection time (DNS re-pointed since the submit), fails
 * at once. Deliveries run side by side (`concurrency`), each bounded by `timeoutMs`, so a slow
 * receiver holds one slot, never rendering or the other deliveries. Redirects are not followed.
 */
export interface WebhookSenderOptions {
  /** A 'worker'-role client (maxRetriesPerRequest: null); BullMQ duplicates it for blocking reads. */
  readonly connection: Redis;
  readonly queueName: string;
  /** WEBHOOK_SECRET, `whsec_<base64>`. */
  readonly secret: string;
  readonly policy: WebhookUrlPolicy;
  /** Per attempt, the whole exchange. @default 10000 */
  readonly timeoutMs?: number;
  /** Deliveries in flight at once. @default 50 */
  readonly concurrency?: number;
  readonly registry: Registry;
  readonly logger: Logger;
  /** Extra CA certificates for https receivers (tests). @default the system's and NODE_EXTRA_CA_CERTS */
  readonly ca?: string | Buffer;
}

export type DeliveryResult = 'delivered' | 'retried' | 'failed' | 'refused';
const RESULTS: DeliveryResult[] = ['delivered', 'retried', 'failed', 'refused'];

export interface WebhookSender {
  readonly worker: Worker<WebhookDelivery>;
  ready(): boolean;
  close(): Promise<void>;
}

/** The body a receiver gets. */
export function webhookPayload(delivery: WebhookDelivery): string {
  return JSON.stringify({ type: delivery.type, timestamp: delivery.timestamp, data: delivery.data });
}

/** The `webhook-id` of a job's delivery: the same on every attempt. */
export function webhookMessageId(jobId: string): string {
  return `msg_${jobId}`;
}

export function createWebhookSender(options: WebhookSenderOptions): WebhookSender {
  const { connection, policy, logger } = options;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const signer = new Webhook(options.secret); // throws on a secret that is not base64
  const lookup = guardedLookup(policy);
  const agents = {
    'https:': new https.Agent({ keepAlive: true, lookup, ...(options.ca ? { ca: options.ca } : {}) }),
    'http:': new http.Agent({ keepAlive: true, lookup }),
  };
  const deliveries = new Counter({
    name: 'levee_webhook_deliveries_total',
    help: 'Webhook delivery attempts by result: delivered (2xx), retried (will be tried again), failed (attempts used up), refused (an address the policy refuses).',
    labelNames: ['result'],
    registers: [options.registry],
  });
  for (const result of RESULTS) deliveries.inc({ result }, 0);
  const duration = new Histogram({
    name: 'levee_webhook_delivery_duration_seconds',
    help: "Time of one delivery attempt, until the receiver's status line (or the failure).",
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [options.registry],
  });

  const worker = new Worker<WebhookDelivery>(
    webhookQueueName(options.queueName),
    async (job) => {
      const delivery = job.data;
      annotate(() => ({ 'levee.job.id': delivery.data.id, 'levee.webhook.attempt': job.attemptsMade + 1 }));
      const id = delivery.data.id;
      const attempt = job.attemptsMade + 1;
      const last = attempt >= (job.opts.attempts ?? 1);
      const record = (state: WebhookState) => writeWebhookState(connection, id, state).catch((err: unknown) => logger.warn({ err, jobId: id }, 'could not record the webhook state'));
      const payload = webhookPayload(delivery);
      const started = performance.now();
      let problem: string;
      try {
        const url = checkWebhookUrlSyntax(delivery.url, policy);
        const messageId = webhookMessageId(id);
        const at = new Date();
        const status = await post(url, payload, {
          'content-type': 'application/json',
          'user-agent': 'levee-webhooks',
          'webhook-id': messageId,
          'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
          'webhook-signature': signer.sign(messageId, at, payload),
        });
        duration.observe((performance.now() - started) / 1000);
        if (status >= 200 && status < 300) {
          deliveries.inc({ result: 'delivered' });
          await record({ state: 'delivered', attempts: attempt });
          return { status };
        }
        problem = `HTTP ${status}`;
      } catch (err) {
        duration.observe((performance.now() - started) / 1000);
        if (err instanceof WebhookUrlError || (err as NodeJS.ErrnoException).code === 'EWEBHOOKADDRESS') {
          deliveries.inc({ result: 'refused' });
          await record({ state: 'failed', attempts: attempt, lastError: (err as Error).message });
          logger.warn({ jobId: id, err: (err as Error).message }, 'webhook refused: its address is not allowed');
          throw new UnrecoverableError((err as Error).message);
        }
        problem = (err as Error).message;
      }
      deliveries.inc({ result: last ? 'failed' : 'retried' });
      await record({ state: last ? 'failed' : 'pending', attempts: attempt, lastError: problem });
      logger.warn({ jobId: id, attempt, last, problem }, last ? 'webhook delivery failed for good' : 'webhook delivery failed; will retry');
      throw new Error(problem);
    },
    { connection, concurrency: options.concurrency ?? 50, autorun: true, ...queueTelemetry() },
  );
  worker.on('error', (err) => logger.error({ err }, 'webhook worker error'));

  function post(url: URL, body: string, headers: Record<string, string>): Promise<number> {
    const client = url.protocol === 'https:' ? https : http;
    return new Promise<number>((resolve, reject) => {
      const req = client.request(
        url,
        { method: 'POST', agent: agents[url.protocol as 'https:' | 'http:'], headers: { ...headers, 'content-length': Buffer.byteLength(body) }, signal: AbortSignal.timeout(timeoutMs) },
        (res) => {
          // The answer's body is not read beyond a little: only its status counts.
          res.on('data', () => undefined);
          res.on('error', () => undefined);
          resolve(res.statusCode ?? 0);
          res.resume();
        },
      );
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err.name === 'AbortError' || err.code === 'ABORT_ERR') reject(new Error(`no answer within ${timeoutMs} ms`));
        else reject(err);
      });
      // A receiver is a third party: no trace context leaves for it (tracing on).
      req.removeHeader('traceparent');
      req.removeHeader('tracestate');
      req.end(body);
    });
  }

  return {
    worker,
    ready: () => !worker.closing && connection.status === 'ready',
    close: async () => {
      await worker.close();
      agents['https:'].destroy();
      agents['http:'].destroy();
    },
  };
}
