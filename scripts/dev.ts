/**
 * `npm run dev`: model, worker, webhook sender and gateway (with the media routes) on this
 * machine, against REDIS_URL, with readable logs; Ctrl-C stops them all.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import readline from 'node:readline';
import Redis from 'ioredis';
import { prettyFactory } from 'pino-pretty';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const GATEWAY_PORT = process.env.PORT ?? '8080';
const MODEL_PORT = process.env.MODEL_PORT ?? '8081';
/** Each service's metrics listener (the public ports serve no /metrics). */
const METRICS = {
  gateway: process.env.GATEWAY_METRICS_PORT ?? '9465',
  worker: process.env.WORKER_METRICS_PORT ?? process.env.METRICS_PORT ?? '9464',
  model: process.env.MODEL_METRICS_PORT ?? '9467',
  webhooks: process.env.WEBHOOKS_METRICS_PORT ?? '9468',
};
/** The key webhooks are signed with: WEBHOOK_SECRET, or a new one each run (printed). */
const WEBHOOK_SECRET = process.env.WEBHOOK_SECRET ?? `whsec_${randomBytes(32).toString('base64')}`;

const TTY = Boolean(process.stdout.isTTY);
const COLORS: Record<string, string> = TTY ? { model: '\x1b[35m', worker: '\x1b[33m', webhooks: '\x1b[32m', gateway: '\x1b[36m' } : {};
const RESET = TTY ? '\x1b[0m' : '';

async function redisReachable(url: string): Promise<string | undefined> {
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: 1500, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  let cause: string | undefined; // the socket error says more than "Connection is closed"
  redis.on('error', (err: Error) => (cause ??= err.message));
  try {
    await redis.connect();
    await redis.ping();
    return undefined;
  } catch (err) {
    return cause ?? (err as Error).message;
  } finally {
    redis.disconnect();
  }
}

function start(name: string, script: string, env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pretty = prettyFactory({ colorize: TTY, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname,service,name' });
  const prefix = `${COLORS[name] ?? ''}${name.padEnd(7)}${RESET} │ `;
  for (const stream of [child.stdout!, child.stderr!]) {
    readline.createInterface({ input: stream }).on('line', (line) => {
      let text = line;
      if (line.startsWith('{')) {
        try {
          text = pretty(JSON.parse(line)).trimEnd();
        } catch {
          /* not a log line: print as is */
        }
      }
      process.stdout.write(prefix + text.split('\n').join(`\n${prefix}`) + '\n');
    });
  }
  child.on('exit', (code, signal) => {
    if (!stopping) {
      process.stdout.write(`${prefix}exited (${signal ?? code}); stopping the others\n`);
      void stopAll(1);
    }
  });
  return child;
}

const children: ChildProcess[] = [];
let stopping = false;

async function stopAll(exitCode: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  const alive = children.filter((c) => c.exitCode === null && c.signalCode === null);
  await Promise.all(
    alive.map(
      (c) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => c.kill('SIGKILL'), 15_000);
          c.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          c.kill('SIGTERM');
        }),
    ),
  );
  process.exit(exitCode);
}

async function main(): Promise<void> {
  const problem = await redisReachable(REDIS_URL);
  if (problem) {
    process.stderr.write(
      `levee dev: cannot reach Redis at ${REDIS_URL} (${problem}); start one with \`redis-server --daemonize yes\` or set REDIS_URL.\n`,
    );
    process.exit(1);
  }
  const modelUrl = `http://127.0.0.1:${MODEL_PORT}`;
  // Everything listens on loopback only: this is a developer machine, not a pod.
  children.push(start('model', 'services/model/src/server.ts', { PORT: MODEL_PORT, HOST: '127.0.0.1', METRICS_PORT: METRICS.model, METRICS_HOST: '127.0.0.1' }));
  children.push(start('worker', 'services/worker/src/server.ts', { REDIS_URL, MODEL_URL: modelUrl, METRICS_PORT: METRICS.worker, METRICS_HOST: '127.0.0.1' }));
  // Webhooks: public https receivers only, unless WEBHOOK_ALLOWED_CIDRS / _ALLOW_HTTP / _ALLOWED_PORTS say otherwise (docs/push.md).
  children.push(start('webhooks', 'services/worker/src/webhooks-server.ts', { REDIS_URL, WEBHOOK_SECRET, METRICS_PORT: METRICS.webhooks, METRICS_HOST: '127.0.0.1' }));
  children.push(
    start('gateway', 'services/gateway/src/server.ts', {
      REDIS_URL,
      MODEL_URL: modelUrl,
      PORT: GATEWAY_PORT,
      HOST: '127.0.0.1',
      METRICS_PORT: METRICS.gateway,
      METRICS_HOST: '127.0.0.1',
      SHUTDOWN_DELAY_SECONDS: process.env.SHUTDOWN_DELAY_SECONDS ?? '0',
    }),
  );
  process.stdout.write(`levee dev: gateway on http://127.0.0.1:${GATEWAY_PORT} (Ctrl-C stops everything)\n`);
  process.stdout.write(`levee dev: webhooks are signed with ${process.env.WEBHOOK_SECRET ? 'WEBHOOK_SECRET' : `${WEBHOOK_SECRET} (new each run; set WEBHOOK_SECRET to keep one)`}\n`);
  process.stdout.write(
    `levee dev: metrics on ${Object.entries(METRICS)
      .map(([name, port]) => `${name} http://127.0.0.1:${port}/metrics`)
      .join(', ')}\n`,
  );
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));
}

void main();
