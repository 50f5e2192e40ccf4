import { QueueEvents } from 'bullmq';
import type Redis from 'ioredis';
import { Counter, Gauge, Registry } from 'prom-client';
import type { StatusDocument } from '../../shared/src/webhooks';
import { estimatePosition, Producer, QueueUnavailableError } from './producer';

/**
 * The live side of GET /api/images/{id}/events: one BullMQ QueueEvents per gateway process
 * (one Redis connection, however many streams) fans each job event out to the streams that
 * follow that job. A stream re-reads its job's status document on each of its job's events
 * (active, progress, completed, failed, removed, delayed, waiting) and sends it when it
 * changed; queued streams get their position from one O(1) read of the waiting list every
 * `positionIntervalMs`, shared by all of them. Admission is bounded per client key and per
 * process.
 */
export interface JobEventsOptions {
  readonly producer: Producer;
  /** Makes the dedicated connection QueueEvents blocks on (a 'worker'-role client), on the first stream. */
  readonly connect: () => Redis;
  readonly queueName: string;
  /** Open streams per client key (EVENTS_MAX_PER_CLIENT). */
  readonly maxPerClient: number;
  /** Open streams per process (EVENTS_MAX). */
  readonly maxStreams: number;
  /** How often queued streams get their position. @default 2000 */
  readonly positionIntervalMs?: number;
  /** Longest a new stream waits for the event reader to be ready (Redis down: a 503 then). @default 2000 */
  readonly readyTimeoutMs?: number;
  readonly registry?: Registry;
  /** Errors of the event reader (Redis trouble); it reconnects by itself. */
  readonly onError?: (err: Error) => void;
}

/** One open stream. */
export interface Subscription {
  readonly id: string;
  /** Called with each new document; the stream ends after a final one (completed, failed, cancelled). */
  onStatus?: (doc: StatusDocument) => void;
  /** Called once when the subscription ends (its close, or closeAll while draining): the route ends the response. */
  onEnd?: () => void;
  /** The last document sent (set by the route once it sent the first one). */
  last?: StatusDocument;
  close(): void;
}

export type Admission = { readonly ok: true; readonly subscription: Subscription } | { readonly ok: false; readonly reason: 'client' | 'process' };

const FINAL = new Set<StatusDocument['status']>(['completed', 'failed', 'cancelled']);

export function isFinal(doc: StatusDocument): boolean {
  return FINAL.has(doc.status);
}

const JOB_EVENTS = ['active', 'progress', 'completed', 'failed', 'removed', 'delayed', 'waiting'] as const;

interface Sub extends Subscription {
  clientKey: string;
  reading: boolean;
  dirty: boolean;
  closed: boolean;
  /** Its last read failed or found nothing (Redis trouble, a cancel half done): read again on the next tick. */
  stale: boolean;
}

export class JobEvents {
  private events?: QueueEvents;
  private connection?: Redis;
  private readonly byJob = new Map<string, Set<Sub>>();
  private readonly perClient = new Map<string, number>();
  private open = 0;
  private positionTimer?: NodeJS.Timeout;
  private readonly refused?: Counter<'reason'>;

  constructor(private readonly options: JobEventsOptions) {
    if (options.registry) {
      const streams = () => this.open;
      new Gauge({
        name: 'levee_event_streams',
        help: 'Open GET /api/images/{id}/events streams in this process.',
        registers: [options.registry],
        collect() {
          this.set(streams());
        },
      });
      this.refused = new Counter({
        name: 'levee_event_streams_refused_total',
        help: 'Event streams refused: client (EVENTS_MAX_PER_CLIENT, 429) or process (EVENTS_MAX, 503).',
        labelNames: ['reason'],
        registers: [options.registry],
      });
      for (const reason of ['client', 'process']) this.refused.inc({ reason }, 0);
    }
  }

  /** Opens a stream for job `id` if the limits allow; the event reader starts with the first one. */
  async subscribe(id: string, clientKey: string): Promise<Admission> {
    if (this.open >= this.options.maxStreams) return this.refuse('process');
    if ((this.perClient.get(clientKey) ?? 0) >= this.options.maxPerClient) return this.refuse('client');
    this.open++;
    this.perClient.set(clientKey, (this.perClient.get(clientKey) ?? 0) + 1);
    const sub: Sub = {
      id,
      clientKey,
      reading: false,
      dirty: false,
      closed: false,
      stale: false,
      close: () => this.unsubscribe(sub),
    };
    let set = this.byJob.get(id);
    if (!set) this.byJob.set(id, (set = new Set()));
    set.add(sub);
    this.positionTimer ??= setInterval(() => void this.refreshPositions(), this.options.positionIntervalMs ?? 2000).unref();
    try {
      // Events from now on reach the stream: its first document is read after this.
      const ms = this.options.readyTimeoutMs ?? 2000;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.reader().waitUntilReady(),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new QueueUnavailableError(new Error(`event reader not ready within ${ms} ms`), true)), ms))),
      ]).finally(() => clearTimeout(timer));
    } catch (err) {
      this.unsubscribe(sub);
      throw err instanceof QueueUnavailableError ? err : new QueueUnavailableError(err);
    }
    return { ok: true, subscription: sub };
  }

  /**
   * The route has sent the first document (`sub.last`) and set `onStatus`: read once more, for
   * an event that came between the subscription and that first read.
   */
  started(subscription: Subscription): void {
    const sub = subscription as Sub;
    if (!sub.closed) void this.refresh(sub);
  }

  /** Streams open now (all, or one client's). */
  count(clientKey?: string): number {
    return clientKey === undefined ? this.open : (this.perClient.get(clientKey) ?? 0);
  }

  /** Ends every stream (the process is draining: clients reconnect to another replica). */
  closeAll(): void {
    for (const set of [...this.byJob.values()]) for (const sub of [...set]) sub.close();
  }

  async close(): Promise<void> {
    this.closeAll();
    clearInterval(this.positionTimer);
    this.positionTimer = undefined;
    const connection = this.connection;
    // A connection that never came up (Redis down) is dropped, not asked to QUIT: that would wait for it.
    if (connection && connection.status !== 'ready') connection.disconnect();
    // BullMQ's QueueEvents.close() waits for a connection that never came up: bounded here.
    if (this.events) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.events.close().catch(() => undefined), new Promise((r) => (timer = setTimeout(r, 1000)))]).finally(() => clearTimeout(timer));
    }
    if (connection?.status === 'ready') await connection.quit().catch(() => connection.disconnect());
  }

  private refuse(reason: 'client' | 'process'): Admission {
    this.refused?.inc({ reason });
    return { ok: false, reason };
  }

  private unsubscribe(sub: Sub): void {
    if (sub.closed) return;
    sub.closed = true;
    this.open--;
    const left = (this.perClient.get(sub.clientKey) ?? 1) - 1;
    if (left > 0) this.perClient.set(sub.clientKey, left);
    else this.perClient.delete(sub.clientKey);
    const set = this.byJob.get(sub.id);
    set?.delete(sub);
    if (set?.size === 0) this.byJob.delete(sub.id);
    if (this.open === 0) {
      clearInterval(this.positionTimer);
      this.positionTimer = undefined;
    }
    sub.onEnd?.();
  }

  private reader(): QueueEvents {
    if (this.events) return this.events;
    this.connection = this.options.connect();
    const events = new QueueEvents(this.options.queueName, { connection: this.connection });
    events.on('error', (err) => this.options.onError?.(err));
    for (const name of JOB_EVENTS) events.on(name, ({ jobId }: { jobId: string }) => this.changed(jobId));
    this.events = events;
    return events;
  }

  /** A job event: each stream of that job reads the status again (one read at a time per stream). */
  private changed(jobId: string): void {
    const set = this.byJob.get(jobId);
    if (!set) return;
    for (const sub of set) void this.refresh(sub);
  }

  private async refresh(sub: Sub): Promise<void> {
    if (sub.reading) {
      sub.dirty = true;
      return;
    }
    sub.reading = true;
    try {
      do {
        sub.dirty = false;
        const doc = await this.options.producer.status(sub.id).catch(() => undefined);
        if (sub.closed) return;
        // No document (Redis trouble, or the job gone with no outcome yet): the next tick reads again.
        sub.stale = doc === undefined;
        if (doc) this.deliver(sub, doc);
      } while (sub.dirty && !sub.closed);
    } finally {
      sub.reading = false;
    }
  }

  /** Sends `doc` if it differs from the last one sent (a position changes it too). */
  private deliver(sub: Sub, doc: StatusDocument): void {
    // Before the route has sent the first document, nothing is sent: `started` reads again then.
    if (!sub.onStatus) return;
    if (sub.last && JSON.stringify(sub.last) === JSON.stringify(doc)) return;
    sub.last = doc;
    sub.onStatus?.(doc);
  }

  /** Every tick: streams whose last read failed read again; one read of the waiting list gives every queued stream its position. */
  private async refreshPositions(): Promise<void> {
    for (const set of this.byJob.values()) for (const sub of set) if (sub.stale && !sub.closed) void this.refresh(sub);
    const queued = [...this.byJob.values()].flatMap((set) => [...set]).filter((s) => s.last?.status === 'queued' && s.last.position !== undefined && !s.closed);
    if (queued.length === 0) return;
    const window = await this.options.producer.waitWindow().catch(() => undefined);
    if (!window) return;
    for (const sub of queued) {
      const last = sub.last!;
      const position = estimatePosition(window, Date.parse(last.createdAt));
      if (position === undefined || position === last.position) continue;
      this.deliver(sub, { ...last, position });
    }
  }
}
