import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { request } from './http';

const ROOT = path.resolve(__dirname, '../..');
/** Services whose metrics listener is apart from PORT (the worker's METRICS_PORT is its only port). */
const OWN_METRICS_LISTENER = new Set(['gateway', 'media', 'model']);

/**
 * A real Levee service process (`node --import tsx services/<name>/src/server.ts`), as
 * `npm run start:<name>` would run it, configured only by environment variables.
 */
export class ServiceProcess {
  private proc: ChildProcess;
  readonly output: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(
    readonly name: string,
    readonly env: Record<string, string>,
    /** Script to run, relative to the repository root. @default services/<name>/src/server.ts */
    script = path.join('services', name, 'src', 'server.ts'),
  ) {
    this.proc = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, script)], {
      cwd: ROOT,
      // The HTTP services' metrics listeners get a port of the OS's choosing unless the test
      // names one (a fixed default port would collide between parallel tests).
      env: { ...process.env, LOG_LEVEL: 'warn', ...(OWN_METRICS_LISTENER.has(name) ? { METRICS_PORT: '0' } : {}), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (chunk: Buffer) => {
      this.output.push(chunk.toString());
      if (this.output.length > 200) this.output.shift();
    };
    this.proc.stdout!.on('data', keep);
    this.proc.stderr!.on('data', keep);
    this.exited = new Promise((resolve) => this.proc.once('exit', (code, signal) => resolve({ code, signal })));
  }

  get pid(): number {
    return this.proc.pid!;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.proc.kill(sig);
  }

  /** Resolves once GET `path` on `port` answers `expectStatus`; fails with the process output otherwise. */
  async waitHttp(port: number, urlPath: string, timeoutMs = 20_000, expectStatus = 200): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.running) throw new Error(`${this.name} exited before it was ready:\n${this.output.join('')}`);
      try {
        const res = await request(port, urlPath, { timeoutMs: 1000 });
        if (res.status === expectStatus) return;
      } catch {
        /* not listening yet */
      }
      if (Date.now() > deadline) throw new Error(`${this.name} not ready on :${port}${urlPath} after ${timeoutMs} ms:\n${this.output.join('')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** SIGKILL (also continues a SIGSTOPped process) and wait for the exit. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.proc.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.proc.kill('SIGCONT');
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/**
 * User + system CPU a process has used so far, in seconds (Linux /proc; undefined elsewhere).
 * `mainThread`: only its main thread's (for Node, the event loop's; not GC or libuv threads).
 */
export function cpuSecondsOf(pid: number | undefined, { mainThread = false } = {}): number | undefined {
  if (!pid) return undefined;
  try {
    const fields = fs.readFileSync(mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return undefined;
  }
}
