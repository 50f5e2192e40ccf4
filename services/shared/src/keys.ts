/**
 * The Redis key layout shared by the gateway, the worker and the media backend. One
 * module, so a renamed key cannot leave one side reading what the other no longer writes.
 * Rendered images live in the queue Redis (persistent, noeviction) with a TTL.
 */
export const KEY_PREFIX = 'levee';

/** The PNG bytes of a completed job. */
export function imageKey(id: string): string {
  return `${KEY_PREFIX}:image:${id}`;
}

/**
 * The outcome of a finished job (`JobOutcome` JSON; a completed one's is written with its
 * image): the job's status outlives BullMQ's bounded history of finished jobs.
 */
export function outcomeKey(id: string): string {
  return `${KEY_PREFIX}:done:${id}`;
}

/** The idempotency record of a client's key: it maps to the job id it created. */
export function idempotencyKey(clientIp: string, key: string): string {
  return `${KEY_PREFIX}:idem:${clientIp}:${key}`;
}

/** The delivery state of a job's webhook (`WebhookState` JSON), written by the sender. */
export function webhookStateKey(id: string): string {
  return `${KEY_PREFIX}:webhook:${id}`;
}

/** Set when a job is cancelled (DELETE): a worker that takes the job afterwards drops it. */
export function cancelKey(id: string): string {
  return `${KEY_PREFIX}:cancel:${id}`;
}

/** The channel a job id is published on when it is cancelled while active: the worker holding it aborts it. */
export const CANCEL_CHANNEL = `${KEY_PREFIX}:cancel`;

/** Job ids are UUIDs (from the gateway) — the only ids the status and media routes accept. */
export const JOB_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isJobId(id: string): boolean {
  return JOB_ID_PATTERN.test(id);
}
