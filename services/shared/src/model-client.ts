import { Breaker, BreakerOptions } from './breaker';
import { RenderRequest } from './job';

/** The model API answered with an HTTP error. 4xx are the caller's fault and do not trip the breaker. */
export class ModelHttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`model API answered ${status}: ${body.slice(0, 200)}`);
    this.name = 'ModelHttpError';
  }
}

export interface ModelClientOptions extends Omit<BreakerOptions, 'target' | 'isFailure'> {
  /** Base URL of the model API, e.g. http://levee-model:8081 */
  readonly baseUrl: string;
}

/**
 * The only way Levee talks to the model API: every call goes through one circuit breaker
 * (target "model") with a timeout.
 */
export class ModelClient {
  readonly breaker: Breaker;
  private readonly baseUrl: string;

  constructor(options: ModelClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.breaker = new Breaker({
      ...options,
      target: 'model',
      isFailure: (err) => !(err instanceof ModelHttpError && err.status >= 400 && err.status < 500),
    });
  }

  /** POST /v1/render → PNG bytes. */
  render(request: RenderRequest): Promise<Buffer> {
    return this.breaker.execute(async (signal) => {
      const res = await fetch(`${this.baseUrl}/v1/render`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(request),
        signal,
      });
      if (!res.ok) throw new ModelHttpError(res.status, await res.text());
      return Buffer.from(await res.arrayBuffer());
    });
  }

  /** GET /v1/styles → the style catalog (JSON). */
  styles(): Promise<unknown> {
    return this.breaker.execute(async (signal) => {
      const res = await fetch(`${this.baseUrl}/v1/styles`, { signal });
      if (!res.ok) throw new ModelHttpError(res.status, await res.text());
      return res.json() as Promise<unknown>;
    });
  }
}
