import { Breaker, BreakerOptions } from './breaker';
import { RenderRequest } from './job';

/** The two image APIs the worker speaks (MODEL_API). */
export const MODEL_APIS = ['levee', 'openai-images'] as const;
export type ModelApi = (typeof MODEL_APIS)[number];

/** The model API answered with an HTTP error. Only 400, 413 and 422 (the request's fault) do not count for the breaker. */
export class ModelHttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    /** The server's `Retry-After`, in ms, when it sent one (429, 503). */
    readonly retryAfterMs?: number,
  ) {
    super(`model API answered ${status}: ${serverMessage(body).slice(0, 300)}`);
    this.name = 'ModelHttpError';
  }

  /** What the server said, for the job's `error`: a problem's `detail`, an OpenAI-style `error.message`, or the body. */
  get serverMessage(): string {
    return serverMessage(this.body);
  }
}

/** The caller aborted the call (a cancelled job): not the model's failure, never a breaker failure. */
export class JobCancelledError extends Error {
  override name = 'JobCancelledError';
  constructor() {
    super('the job was cancelled: model call aborted');
  }
}

/** The model answered 200 with something that is not a PNG (or no image at all). */
export class ModelResponseError extends Error {
  override name = 'ModelResponseError';
}

/** The first 8 bytes of every PNG file. */
export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function isPng(bytes: Buffer): boolean {
  return bytes.length > PNG_SIGNATURE.length && bytes.subarray(0, PNG_SIGNATURE.length).equals(PNG_SIGNATURE);
}

/** Longest Retry-After honoured: a server asking for more is asked again after this. */
const MAX_RETRY_AFTER_MS = 300_000;

/** RFC 9110 Retry-After: delay-seconds or an HTTP-date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const ms = /^\d+$/.test(value.trim()) ? Number(value.trim()) * 1000 : Date.parse(value) - now;
  return Number.isFinite(ms) ? Math.min(MAX_RETRY_AFTER_MS, Math.max(0, ms)) : undefined;
}

function serverMessage(body: string): string {
  try {
    const json = JSON.parse(body) as { detail?: unknown; error?: { message?: unknown } | unknown; message?: unknown };
    if (typeof json.detail === 'string') return json.detail;
    if (json.error && typeof json.error === 'object' && typeof (json.error as { message?: unknown }).message === 'string') return (json.error as { message: string }).message;
    if (typeof json.error === 'string') return json.error;
    if (typeof json.message === 'string') return json.message;
  } catch {
    /* not JSON */
  }
  return body;
}

/** The model refused this request for what it asks (a refused prompt, a bad size): no retry can help. */
export function isRequestRefused(err: unknown): boolean {
  return err instanceof ModelHttpError && (err.status === 400 || err.status === 413 || err.status === 422);
}

/**
 * Any other 4xx but 408 (and 429): the model refuses *us* — a wrong or rotated key (401, 403),
 * a wrong URL or API (404, 405), an unknown model name. A configuration problem, not the job's:
 * the job waits for it to be fixed, and the answer (which may quote the key) stays in the log.
 */
export function isModelMisconfigured(err: unknown): boolean {
  return err instanceof ModelHttpError && err.status >= 400 && err.status < 500 && !isRequestRefused(err) && err.status !== 408 && err.status !== 429;
}

/**
 * True when the model cannot take work yet but will (a cold or loading model, scaled up from
 * zero): it refused the connection (no ready pod behind its Service), or answered 503 or 429.
 * The worker postpones such a job instead of spending one of its attempts.
 */
export function isModelNotReady(err: unknown): boolean {
  if (err instanceof ModelHttpError) return err.status === 503 || err.status === 429;
  const code = (err as { cause?: { code?: unknown } } | undefined)?.cause?.code ?? (err as { code?: unknown } | undefined)?.code;
  return code === 'ECONNREFUSED';
}

export interface ModelClientOptions extends Omit<BreakerOptions, 'target' | 'isFailure'> {
  /** Base URL of the model API, e.g. http://levee-model:8081 */
  readonly baseUrl: string;
  /** Which API the model speaks. @default levee */
  readonly api?: ModelApi;
  /** openai-images: the `model` of every request. @default levee-stand-in */
  readonly modelName?: string;
  /** Sent as `Authorization: Bearer <key>` when set. */
  readonly apiKey?: string;
}

/**
 * The only way Levee talks to the model API: every call goes through one circuit breaker
 * (target "model") with a timeout. Two APIs:
 * - `levee`: `POST /v1/render` (JSON render request) → `image/png`; `GET /v1/styles`;
 * - `openai-images`: `POST /v1/images/generations` with `{model, prompt, size: "<w>x<h>",
 *   n: 1, response_format: "b64_json"}` plus `seed` and `style` when given → `data[0].b64_json`,
 *   decoded and checked to be a PNG. That API has no style catalog.
 * Failures count for the breaker except a 4xx other than 408 and 429 (the request's fault).
 */
export class ModelClient {
  readonly breaker: Breaker;
  readonly api: ModelApi;
  private readonly baseUrl: string;
  private readonly headers: Record<string, string>;
  private readonly modelName: string;

  constructor(options: ModelClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.api = options.api ?? 'levee';
    this.modelName = options.modelName ?? 'levee-stand-in';
    this.headers = { 'content-type': 'application/json', ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}) };
    this.breaker = new Breaker({
      ...options,
      target: 'model',
      // A refused request is the request's fault; everything else (a misconfiguration too) counts.
      // A cancelled call says nothing of the model: not a failure, unless it was the half-open
      // trial, whose end must not close the circuit without a sign the model is back.
      isFailure: (err) => (err instanceof JobCancelledError ? this.breaker.state === 'half-open' : !isRequestRefused(err)),
    });
  }

  /** One image: PNG bytes. `cancel` aborts the call (the model sees its connection closed): JobCancelledError. */
  render(request: RenderRequest, cancel?: AbortSignal): Promise<Buffer> {
    return this.breaker.execute(async (timeout) => {
      const signal = cancel ? AbortSignal.any([timeout, cancel]) : timeout;
      try {
        return await (this.api === 'openai-images' ? this.generate(request, signal) : this.renderLevee(request, signal));
      } catch (err) {
        if (cancel?.aborted) throw new JobCancelledError();
        throw err;
      }
    });
  }

  /** GET /v1/styles → the style catalog (JSON); `levee` only. */
  styles(): Promise<unknown> {
    return this.breaker.execute(async (signal) => {
      const res = await fetch(`${this.baseUrl}/v1/styles`, { signal, headers: this.headers });
      if (!res.ok) throw await httpError(res);
      return res.json() as Promise<unknown>;
    });
  }

  private async renderLevee(request: RenderRequest, signal: AbortSignal): Promise<Buffer> {
    const res = await fetch(`${this.baseUrl}/v1/render`, { method: 'POST', headers: this.headers, body: JSON.stringify(renderBody(request)), signal });
    if (!res.ok) throw await httpError(res);
    return Buffer.from(await res.arrayBuffer());
  }

  private async generate(request: RenderRequest, signal: AbortSignal): Promise<Buffer> {
    const body = {
      model: this.modelName,
      prompt: request.prompt,
      size: `${request.width}x${request.height}`,
      n: 1,
      response_format: 'b64_json',
      ...(request.seed !== undefined ? { seed: request.seed } : {}),
      ...(request.style !== undefined ? { style: request.style } : {}),
    };
    const res = await fetch(`${this.baseUrl}/v1/images/generations`, { method: 'POST', headers: this.headers, body: JSON.stringify(body), signal });
    if (!res.ok) throw await httpError(res);
    let b64: unknown;
    try {
      b64 = ((await res.json()) as { data?: { b64_json?: unknown }[] }).data?.[0]?.b64_json;
    } catch {
      throw new ModelResponseError('model API answered 200 with a body that is not JSON');
    }
    if (typeof b64 !== 'string' || b64.length === 0) throw new ModelResponseError('model API answered 200 without data[0].b64_json');
    const png = Buffer.from(b64, 'base64');
    if (!isPng(png)) throw new ModelResponseError(`model API answered 200 with data[0].b64_json that is not a PNG (${png.length} bytes)`);
    return png;
  }
}

/** What /v1/render takes: the render fields only (never the job's webhookUrl). */
function renderBody({ prompt, width, height, style, seed }: RenderRequest) {
  return { prompt, width, height, ...(style !== undefined ? { style } : {}), ...(seed !== undefined ? { seed } : {}) };
}

async function httpError(res: Response): Promise<ModelHttpError> {
  return new ModelHttpError(res.status, await res.text().catch(() => ''), parseRetryAfter(res.headers.get('retry-after')));
}
