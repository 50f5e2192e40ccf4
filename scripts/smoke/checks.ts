/**
 * The smoke test: the promises of the HTTP contract a deployment must keep, checked over
 * HTTP only, in the order a client meets them. Shared by `npm run smoke` (any deployment)
 * and `npm run rehearse` (the synthesized manifests on Docker).
 */
import { randomUUID } from 'node:crypto';
import { PNG } from 'pngjs';

export interface SmokeOptions {
  /** Base URL of the API (`/api/...`). */
  readonly url: string;
  /** Base URL of the media routes (`/images/...`). @default url */
  readonly imagesUrl?: string;
  /** How long a job may take to render. @default 90 s */
  readonly renderTimeoutMs?: number;
  /** Per-request timeout. @default 10 s */
  readonly requestTimeoutMs?: number;
  /** Receives one line per check as it finishes. */
  readonly log?: (line: string) => void;
  /**
   * A webhook receiver the deployment may reach (the rehearsal runs one): a job is submitted
   * with `url`, and `received(id)` says what arrived for it, its signature verified. @default no webhook check
   */
  readonly webhook?: { readonly url: string; readonly received: (jobId: string) => Promise<readonly { readonly type: string; readonly verified: boolean; readonly webhookId: string }[]> };
}

export interface CheckResult {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
  readonly ms: number;
}

export interface SmokeResult {
  readonly passed: boolean;
  readonly results: readonly CheckResult[];
  /** Set when the deployment did not answer at all. */
  readonly unreachable?: string;
  /** The job the smoke test rendered, when it got that far. */
  readonly jobId?: string;
}

/** The size the smoke job asks for: not square, so a swapped width/height shows. */
export const SMOKE_WIDTH = 128;
export const SMOKE_HEIGHT = 96;

class CheckFailed extends Error {}
class Unreachable extends Error {}

const fail = (message: string): never => {
  throw new CheckFailed(message);
};

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Buffer;
  json<T = any>(): T;
}

/**
 * One request. A `429` is waited out (Retry-After, up to 3 times) as a polite client would,
 * so the smoke test's own requests never trip a small limit; the burst check asks for the
 * 429 itself (`retry429: false`). The answer's body is left unread.
 */
export async function politeFetch(url: string, init: RequestInit & { timeoutMs: number; retry429?: boolean }): Promise<Response> {
  for (let attempt = 0; ; attempt++) {
    let res: Response;
    try {
      res = await fetch(url, { ...init, signal: AbortSignal.timeout(init.timeoutMs), redirect: 'manual' });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (err as Error).message;
      throw new Unreachable(`${init.method ?? 'GET'} ${url}: ${why}`);
    }
    if (res.status !== 429 || init.retry429 === false || attempt === 3) return res;
    await res.arrayBuffer();
    await sleep(Math.min(Number(res.headers.get('retry-after') ?? 1), 10) * 1000);
  }
}

/** One request through {@link politeFetch}, its body read. */
async function call(url: string, init: RequestInit & { timeoutMs: number; retry429?: boolean }): Promise<Answer> {
  const res = await politeFetch(url, init);
  const body = Buffer.from(await res.arrayBuffer());
  return {
    status: res.status,
    headers: res.headers,
    body,
    json: () => {
      try {
        return JSON.parse(body.toString('utf8'));
      } catch {
        return fail(`${init.method ?? 'GET'} ${url} → ${res.status} with a body that is not JSON: ${body.toString('utf8').slice(0, 120)}`);
      }
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `"default";q=10;w=1` → 10 (draft-ietf-httpapi-ratelimit-headers). */
export function quotaOf(policy: string | null): number | undefined {
  const m = policy ? /;\s*q=(\d+)/.exec(policy) : null;
  return m ? Number(m[1]) : undefined;
}

export async function runSmoke(options: SmokeOptions): Promise<SmokeResult> {
  const api = options.url.replace(/\/+$/, '');
  const media = (options.imagesUrl ?? options.url).replace(/\/+$/, '');
  const timeoutMs = options.requestTimeoutMs ?? 10_000;
  const renderTimeoutMs = options.renderTimeoutMs ?? 90_000;
  const log = options.log ?? (() => undefined);
  const results: CheckResult[] = [];
  const state: { id?: string; statusUrl?: string; imageUrl?: string; completed?: boolean; etag?: string; quota?: number } = {};
  const body = { prompt: `levee smoke test ${new Date().toISOString()}`, width: SMOKE_WIDTH, height: SMOKE_HEIGHT, style: 'watercolor', seed: Math.floor(Math.random() * 2 ** 31) };
  const idempotencyKey = `smoke-${randomUUID()}`;
  const post = () =>
    call(`${api}/api/images`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': idempotencyKey },
      body: JSON.stringify(body),
      timeoutMs,
    });

  /** `needs`: the state an earlier check must have produced, or the check is skipped. */
  const checks: { name: string; needs?: 'job' | 'completed' | 'png'; run: () => Promise<string> }[] = [
    {
      name: 'POST /api/images → 202 queued, with Location and RateLimit headers',
      run: async () => {
        const r = await post();
        if (r.status !== 202) fail(`got ${r.status}${r.headers.get('retry-after') ? ` (Retry-After ${r.headers.get('retry-after')})` : ''}: ${r.body.toString().slice(0, 200)}`);
        const j = r.json<{ id: string; status: string; statusUrl: string; imageUrl: string }>();
        if (j.status !== 'queued' || !j.id || !j.statusUrl || !j.imageUrl) fail(`body ${JSON.stringify(j)}`);
        if (r.headers.get('location') !== j.statusUrl) fail(`Location ${r.headers.get('location')} is not the statusUrl ${j.statusUrl}`);
        const policy = r.headers.get('ratelimit-policy');
        if (!policy || !r.headers.get('ratelimit')) fail('no RateLimit-Policy / RateLimit headers');
        Object.assign(state, { id: j.id, statusUrl: j.statusUrl, imageUrl: j.imageUrl, quota: quotaOf(policy) });
        return `job ${j.id}, ${policy}`;
      },
    },
    {
      name: 'the same Idempotency-Key again → 202 with the same job',
      needs: 'job',
      run: async () => {
        const r = await post();
        if (r.status !== 202) fail(`got ${r.status}`);
        const id = r.json<{ id: string }>().id;
        if (id !== state.id) fail(`a second job ${id} instead of ${state.id}`);
        return `job ${id}`;
      },
    },
    {
      name: `GET the status until the worker completes it (at most ${renderTimeoutMs / 1000} s)`,
      needs: 'job',
      run: async () => {
        const deadline = Date.now() + renderTimeoutMs;
        let last = '';
        while (Date.now() < deadline) {
          const r = await call(`${api}${state.statusUrl}`, { timeoutMs });
          if (r.status !== 200) fail(`status read → ${r.status}: ${r.body.toString().slice(0, 200)}`);
          const j = r.json<{ status: string; attempts: number; imageUrl?: string; error?: string }>();
          last = j.status;
          if (j.status === 'completed') {
            if (j.imageUrl !== state.imageUrl) fail(`imageUrl ${j.imageUrl} differs from the 202's ${state.imageUrl}`);
            state.completed = true;
            return `completed after ${j.attempts} attempt(s)`;
          }
          if (j.status === 'failed') fail(`the job failed: ${j.error}`);
          await sleep(400);
        }
        return fail(`still "${last}" after ${renderTimeoutMs / 1000} s`);
      },
    },
    {
      name: `GET the PNG → 200 image/png, ${SMOKE_WIDTH}×${SMOKE_HEIGHT}, ETag, immutable`,
      needs: 'completed',
      run: async () => {
        const r = await call(`${media}${state.imageUrl}`, { timeoutMs });
        if (r.status !== 200) fail(`got ${r.status}`);
        if (r.headers.get('content-type') !== 'image/png') fail(`Content-Type ${r.headers.get('content-type')}`);
        const etag = r.headers.get('etag');
        if (!etag) fail('no ETag');
        if (!/immutable/.test(r.headers.get('cache-control') ?? '')) fail(`Cache-Control ${r.headers.get('cache-control')}`);
        let png: PNG;
        try {
          png = PNG.sync.read(r.body);
        } catch (err) {
          return fail(`the body does not decode as a PNG: ${(err as Error).message}`);
        }
        if (png.width !== SMOKE_WIDTH || png.height !== SMOKE_HEIGHT) fail(`decoded ${png.width}×${png.height}`);
        state.etag = etag!;
        return `${r.body.length} bytes, ETag ${etag}`;
      },
    },
    {
      name: 'GET the PNG with If-None-Match → 304',
      needs: 'png',
      run: async () => {
        const r = await call(`${media}${state.imageUrl}`, { headers: { 'if-none-match': state.etag! }, timeoutMs });
        if (r.status !== 304) fail(`got ${r.status}`);
        return '304 Not Modified';
      },
    },
    {
      name: 'GET /api/styles twice → the catalog, then Cache-Status: levee; hit',
      run: async () => {
        const first = await call(`${api}/api/styles`, { timeoutMs });
        if (first.status !== 200) fail(`first → ${first.status}: ${first.body.toString().slice(0, 200)}`);
        first.json();
        const s1 = first.headers.get('cache-status') ?? '';
        if (!/^levee; (hit|fwd=miss|fwd=stale)$/.test(s1)) fail(`first Cache-Status "${s1}"`);
        const second = await call(`${api}/api/styles`, { timeoutMs });
        const s2 = second.headers.get('cache-status') ?? '';
        if (second.status !== 200 || s2 !== 'levee; hit') fail(`second → ${second.status}, Cache-Status "${s2}"`);
        return `"${s1}", then "${s2}"`;
      },
    },
    {
      name: 'GET an unknown job → 404 problem details',
      run: async () => {
        const r = await call(`${api}/api/images/${randomUUID()}`, { timeoutMs });
        if (r.status !== 404) fail(`got ${r.status}`);
        if (!(r.headers.get('content-type') ?? '').startsWith('application/problem+json')) fail(`Content-Type ${r.headers.get('content-type')}`);
        const p = r.json<{ type?: string; title?: string; status?: number }>();
        if (p.status !== 404 || !p.title || !p.type) fail(`body ${JSON.stringify(p)}`);
        return `"${p.title}"`;
      },
    },
    {
      name: 'GET /api/images/{id}/events → an event stream of the status until completed, then its end',
      run: async () => {
        const r = await call(`${api}/api/images`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, prompt: `${body.prompt} (followed)` }), timeoutMs });
        if (r.status !== 202) fail(`POST → ${r.status}`);
        const id = r.json<{ id: string }>().id;
        // The stream ends by itself after the final document; the deadline only bounds a broken one.
        let res: Response;
        try {
          res = await politeFetch(`${api}/api/images/${id}/events`, { headers: { accept: 'text/event-stream' }, timeoutMs: renderTimeoutMs });
        } catch (err) {
          return fail(`GET events: ${(err as Error).message}`);
        }
        if (res.status !== 200 || !(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) fail(`got ${res.status} ${res.headers.get('content-type')}`);
        let text: string;
        try {
          text = await res.text();
        } catch (err) {
          return fail(`the stream did not end within ${renderTimeoutMs / 1000} s: ${(err as Error).message}`);
        }
        const docs = text
          .split('\n\n')
          .filter((block) => /^event: status$/m.test(block))
          .map((block) => JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? '{}') as { status: string; imageUrl?: string });
        if (docs.length === 0) fail(`no status event in ${JSON.stringify(text.slice(0, 200))}`);
        const last = docs[docs.length - 1]!;
        if (last.status !== 'completed' || !last.imageUrl) fail(`the last event is ${JSON.stringify(last)}`);
        return `${docs.map((d) => d.status).join(' → ')}, then the end of the stream`;
      },
    },
    {
      name: 'DELETE a new job → cancelled (200, or 202 while its render is aborted); DELETE the completed one → 409',
      needs: 'completed',
      run: async () => {
        // A render that finishes while its cancel is on the way completes (docs/push.md): a fast
        // deployment may do that to a job or two, so up to three jobs are tried.
        let first = 0;
        let status = '';
        const outcomes: string[] = [];
        for (let attempt = 0; attempt < 3 && status !== 'cancelled'; attempt++) {
          // A fresh rate-limit window (1 s), so the POST and the DELETE go out back to back, not after a 429's wait.
          await sleep(1100);
          // A large image: it is still queued or rendering when the DELETE arrives.
          const r = await call(`${api}/api/images`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, width: 2048, height: 2048, prompt: `${body.prompt} (cancelled ${attempt})` }), timeoutMs });
          if (r.status !== 202) fail(`POST → ${r.status}`);
          const id = r.json<{ id: string }>().id;
          const d = await call(`${api}/api/images/${id}`, { method: 'DELETE', timeoutMs });
          if (d.status === 409) {
            outcomes.push('409 (completed first)');
            continue;
          }
          if (d.status !== 200 && d.status !== 202) fail(`DELETE → ${d.status}: ${d.body.toString().slice(0, 200)}`);
          first = d.status;
          const deadline = Date.now() + renderTimeoutMs;
          status = d.json<{ status: string }>().status;
          while (status !== 'cancelled' && status !== 'completed' && Date.now() < deadline) {
            await sleep(300);
            status = (await call(`${api}/api/images/${id}`, { timeoutMs })).json<{ status: string }>().status;
          }
          outcomes.push(`${first} → ${status}`);
        }
        if (status !== 'cancelled') fail(`no job was cancelled in 3 tries: ${outcomes.join('; ')}`);
        const done = await call(`${api}${state.statusUrl}`, { method: 'DELETE', timeoutMs });
        if (done.status !== 409) fail(`DELETE of the completed job → ${done.status}`);
        return `${outcomes.join('; ')}; the completed job → 409`;
      },
    },
    ...(options.webhook
      ? [
          {
            name: 'a job with a webhookUrl → one signed image.completed at the receiver',
            run: async () => {
              const hook = options.webhook!;
              const r = await call(`${api}/api/images`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, prompt: `${body.prompt} (webhook)`, webhookUrl: hook.url }), timeoutMs });
              if (r.status !== 202) fail(`POST → ${r.status}: ${r.body.toString().slice(0, 300)}`);
              const id = r.json<{ id: string }>().id;
              const deadline = Date.now() + renderTimeoutMs;
              let got: Awaited<ReturnType<typeof hook.received>> = [];
              while (Date.now() < deadline && got.length === 0) {
                await sleep(500);
                got = await hook.received(id);
              }
              if (got.length === 0) fail(`nothing arrived within ${renderTimeoutMs / 1000} s`);
              const w = got[0]!;
              if (!w.verified) fail('the signature did not verify');
              if (w.type !== 'image.completed') fail(`type ${w.type}`);
              const status = (await call(`${api}/api/images/${id}`, { timeoutMs })).json<{ webhook?: { state: string } }>();
              return `${w.type}, webhook-id ${w.webhookId}, signature verified; status webhook ${JSON.stringify(status.webhook)}`;
            },
          },
        ]
      : []),
    {
      name: 'a burst from one client reaches 429 with Retry-After',
      run: async () => {
        const n = 2 * (state.quota ?? 10) + 5;
        const answers = await Promise.all(Array.from({ length: n }, () => call(`${api}${state.statusUrl ?? '/api/styles'}`, { timeoutMs, retry429: false })));
        const limited = answers.filter((a) => a.status === 429);
        if (limited.length === 0) fail(`${n} requests at once, none limited: ${[...new Set(answers.map((a) => a.status))].join(', ')}`);
        const first = limited[0]!;
        if (!first.headers.get('retry-after')) fail('a 429 without Retry-After');
        if (!(first.headers.get('content-type') ?? '').startsWith('application/problem+json')) fail(`a 429 as ${first.headers.get('content-type')}`);
        return `${n} at once: ${answers.length - limited.length} admitted, ${limited.length} × 429, Retry-After ${first.headers.get('retry-after')} s`;
      },
    },
  ];

  const has = { job: () => state.id !== undefined, completed: () => state.completed === true, png: () => state.etag !== undefined };
  let unreachable: string | undefined;
  for (const { name, needs, run } of checks) {
    const t0 = Date.now();
    let result: CheckResult;
    if (unreachable !== undefined || (needs !== undefined && !has[needs]())) {
      result = { name, ok: false, detail: 'skipped: an earlier check failed', ms: 0 };
    } else {
      try {
        result = { name, ok: true, detail: await run(), ms: Date.now() - t0 };
      } catch (err) {
        if (err instanceof Unreachable && results.length === 0) return { passed: false, results, unreachable: err.message };
        if (err instanceof Unreachable) unreachable = err.message;
        const detail = err instanceof CheckFailed || err instanceof Unreachable ? err.message : String(err);
        result = { name, ok: false, detail, ms: Date.now() - t0 };
      }
    }
    results.push(result);
    log(formatCheck(results.length, result));
  }
  return {
    passed: results.every((r) => r.ok),
    results,
    ...(unreachable !== undefined ? { unreachable } : {}),
    ...(state.id !== undefined ? { jobId: state.id } : {}),
  };
}

export function formatCheck(n: number, r: CheckResult): string {
  return `  ${r.ok ? 'ok  ' : 'FAIL'} ${String(n).padStart(2)}. ${r.name} — ${r.detail}${r.ms > 0 ? ` (${r.ms} ms)` : ''}`;
}
