/**
 * A Redis Sentinel group on free loopback ports, started with the chart's own containers:
 * the synthesized `levee-queue-redis` and `levee-queue-sentinel` StatefulSets' command, args
 * and environment (the production default topology), run with the local `sh` and
 * `redis-server` (Debian's runs Sentinel as `redis-server <conf> --sentinel`). Only what a
 * pod has and a laptop does not is replaced: ports, DNS names (127.0.0.1), data and config
 * directories, and shorter failure detection. Keeps nothing after `stop()`.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { buildManifests, resolveConfig } from '../../infra';
import { freePort } from './ports';

/** The master group the chart's Sentinels monitor. */
export const MASTER_NAME = 'levee-queue';

// Manifests are plain JSON.
type Container = { command: string[]; args: string[]; env: { name: string; value?: string; valueFrom?: unknown }[] };

function chartContainers(): { data: Container; sentinel: Container; replicas: number; sentinels: number } {
  const manifests = buildManifests(resolveConfig({})) as any[];
  const sts = (name: string) => manifests.find((m) => m.kind === 'StatefulSet' && m.metadata.name === name);
  const data = sts('levee-queue-redis');
  const sentinel = sts('levee-queue-sentinel');
  if (!data || !sentinel) throw new Error('the production chart has no Sentinel topology (LEVEE_QUEUE_REDIS default changed?)');
  return { data: data.spec.template.spec.containers[0], sentinel: sentinel.spec.template.spec.containers[0], replicas: data.spec.replicas, sentinels: sentinel.spec.replicas };
}

/** The chart's plain env values with `overrides` applied; every override must name a variable the chart sets. */
function envFor(c: Container, overrides: Record<string, string>, password: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of c.env) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.name === 'REDIS_PASSWORD' || e.name === 'REDISCLI_AUTH') env[e.name] = password;
  }
  const names = new Set(c.env.map((e) => e.name));
  for (const [k, v] of Object.entries(overrides)) {
    if (!names.has(k)) throw new Error(`the chart's container sets no ${k}; the test overrides it`);
    env[k] = v;
  }
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env };
}

/** `args` with the value after `flag` replaced. */
function withFlag(args: string[], flag: string, value: string): string[] {
  const i = args.indexOf(flag);
  if (i < 0) throw new Error(`the chart's args have no ${flag}`);
  return [...args.slice(0, i + 1), value, ...args.slice(i + 2)];
}

export interface Member {
  readonly index: number;
  readonly port: number;
  proc?: ChildProcess;
  output: string;
}

export class SentinelGroup {
  readonly data: Member[] = [];
  readonly sentinels: Member[] = [];
  private readonly dir = mkdtempSync(join(tmpdir(), 'levee-sentinel-'));
  private readonly chart = chartContainers();

  private constructor(
    readonly password: string,
    readonly downAfterMs: number,
  ) {}

  /** Starts the chart's data pods and Sentinels and resolves once the group is whole (replicas in sync, Sentinels know each other). */
  static async start(opts: { password?: string; downAfterMs?: number } = {}): Promise<SentinelGroup> {
    const group = new SentinelGroup(opts.password ?? 'levee-test-password-0123', opts.downAfterMs ?? 1000);
    try {
      for (let i = 0; i < group.chart.replicas; i++) group.data.push({ index: i, port: await freePort(), output: '' });
      for (let i = 0; i < group.chart.sentinels; i++) group.sentinels.push({ index: i, port: await freePort(), output: '' });
      for (const m of group.data) group.startData(m);
      for (const s of group.sentinels) group.startSentinel(s);
      await group.waitWhole();
    } catch (err) {
      await group.stop();
      throw err;
    }
    return group;
  }

  /** `host:port,…` of the Sentinels, as QUEUE_REDIS_SENTINELS takes them. */
  get sentinelList(): string {
    return this.sentinels.map((s) => `127.0.0.1:${s.port}`).join(',');
  }

  private spawnMember(m: Member, c: Container, args: string[], env: Record<string, string>): void {
    m.output = '';
    // sh -c '<script>' redis-server <args>: the script execs redis-server, which keeps the pid.
    const proc = spawn(c.command[0]!, [...c.command.slice(1), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (d: Buffer) => {
      m.output = (m.output + d.toString()).slice(-20_000);
    };
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    m.proc = proc;
  }

  /** (Re)starts data pod `m` with the chart's start script: it asks the Sentinels for the primary. */
  startData(m: Member): void {
    const c = this.chart.data;
    const dir = join(this.dir, `data-${m.index}`);
    mkdirSync(dir, { recursive: true });
    let args = withFlag(withFlag(c.args, '--port', String(m.port)), '--dir', dir);
    args = [...args, '--bind', '127.0.0.1', '--loglevel', 'notice'];
    const env = envFor(
      c,
      {
        POD_NAME: `levee-queue-redis-${m.index}`,
        REDIS_PORT: String(m.port),
        ANNOUNCE_HOST: '127.0.0.1',
        PRIMARY_HOST: '127.0.0.1',
        PRIMARY_PORT: String(this.data[0]!.port),
        SENTINELS: this.sentinels.map((s) => `127.0.0.1:${s.port}`).join(' '),
      },
      this.password,
    );
    this.spawnMember(m, c, args, env);
  }

  private startSentinel(s: Member): void {
    const c = this.chart.sentinel;
    const dir = join(this.dir, `sentinel-${s.index}`);
    mkdirSync(dir, { recursive: true });
    const env = envFor(
      c,
      {
        POD_NAME: `levee-queue-sentinel-${s.index}`,
        SENTINEL_PORT: String(s.port),
        SENTINEL_DIR: dir,
        ANNOUNCE_HOST: '127.0.0.1',
        SENTINELS: this.sentinels.map((x) => `127.0.0.1:${x.port}`).join(' '),
        PRIMARY_HOST: '127.0.0.1',
        PRIMARY_PORT: String(this.data[0]!.port),
        DOWN_AFTER_MS: String(this.downAfterMs),
        FAILOVER_TIMEOUT_MS: '5000',
      },
      this.password,
    );
    this.spawnMember(s, c, [...c.args, '--bind', '127.0.0.1'], env);
  }

  private client(port: number): Redis {
    const r = new Redis({ host: '127.0.0.1', port, password: this.password, lazyConnect: false, maxRetriesPerRequest: 1, retryStrategy: () => null, connectTimeout: 1000 });
    r.on('error', () => undefined);
    return r;
  }

  /** One command to one member, on a short-lived connection; undefined when it does not answer. */
  async ask(port: number, ...cmd: (string | number)[]): Promise<unknown> {
    const r = this.client(port);
    try {
      return await r.call(String(cmd[0]), ...cmd.slice(1).map(String));
    } catch {
      return undefined;
    } finally {
      r.disconnect();
    }
  }

  /** The primary's port as the first Sentinel that answers reports it. */
  async primaryPort(): Promise<number | undefined> {
    for (const s of this.sentinels) {
      const a = (await this.ask(s.port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER_NAME)) as string[] | null | undefined;
      if (Array.isArray(a)) return Number(a[1]);
    }
    return undefined;
  }

  member(port: number): Member {
    const m = this.data.find((d) => d.port === port);
    if (!m) throw new Error(`no data member on port ${port}`);
    return m;
  }

  /**
   * Resolves once every running data pod is in sync with the primary and every Sentinel sees
   * the primary, the other Sentinels and every replica (a Sentinel learns of a replica from the
   * primary's INFO, read every 10 s: until then it could neither promote nor reconfigure it).
   */
  async waitWhole(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const running = () => this.data.filter((m) => m.proc && m.proc.exitCode === null && m.proc.signalCode === null);
    for (;;) {
      const primary = await this.primaryPort();
      let ok = primary !== undefined;
      if (ok) {
        const info = String((await this.ask(primary!, 'INFO', 'replication')) ?? '');
        const online = (info.match(/state=online/g) ?? []).length;
        ok = info.includes('role:master') && online === running().length - 1;
        for (const s of this.sentinels) {
          const master = (await this.ask(s.port, 'SENTINEL', 'MASTER', MASTER_NAME)) as string[] | undefined;
          const field = (k: string) => (Array.isArray(master) ? master[master.indexOf(k) + 1] : undefined);
          ok =
            ok &&
            Number(field('num-other-sentinels')) === this.sentinels.length - 1 &&
            Number(field('num-slaves')) === running().length - 1 &&
            Number(field('port')) === primary &&
            !String(field('flags')).includes('down');
        }
      }
      if (ok) return;
      if (Date.now() > deadline) throw new Error(`the Sentinel group did not become whole in ${timeoutMs} ms:\n${this.describe()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** SIGKILL one data member (no FIN for its clients beyond the kernel's, no AOF flush by Redis). */
  async kill(m: Member): Promise<void> {
    const proc = m.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    proc.kill('SIGKILL');
    await exited;
  }

  /** SIGTERM one data member, as a pod deletion or a node drain does, and wait until it has exited. */
  async terminate(m: Member): Promise<number | null> {
    const proc = m.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return proc?.exitCode ?? null;
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    proc.kill('SIGTERM');
    return exited;
  }

  /** Polls the Sentinels until they report a primary other than `oldPort`; resolves to its port. */
  async waitForNewPrimary(oldPort: number, timeoutMs = 30_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const port = await this.primaryPort();
      if (port !== undefined && port !== oldPort) return port;
      if (Date.now() > deadline) throw new Error(`no new primary after ${timeoutMs} ms:\n${this.describe()}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** The last `lines` log lines of every member. */
  describe(lines = 15): string {
    return [...this.data.map((m) => `data ${m.index} :${m.port}`), ...this.sentinels.map((s) => `sentinel ${s.index} :${s.port}`)]
      .map((label, i) => `--- ${label}\n${[...this.data, ...this.sentinels][i]!.output.split('\n').slice(-lines).join('\n')}`)
      .join('\n');
  }

  async stop(): Promise<void> {
    await Promise.all([...this.data, ...this.sentinels].map((m) => this.kill(m)));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
