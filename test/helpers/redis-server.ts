import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports';

/** The port was free when picked but something else bound it before redis-server did. */
class PortTakenError extends Error {}

/**
 * A private `redis-server` on a free loopback port, for fault tests that must kill and
 * restart Redis without disturbing anyone else. Keeps nothing on disk.
 */
export class RedisServer {
  private proc?: ChildProcess;
  /** Its working directory: a replica's full-sync file lands there, never in the repository. */
  private readonly dir = mkdtempSync(join(tmpdir(), 'levee-redis-'));
  private constructor(
    readonly port: number,
    /** More redis-server arguments (e.g. `--replicaof 127.0.0.1 <port>`). */
    private readonly extraArgs: readonly string[] = [],
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts on a free port; a port taken between picking and binding it means another try. */
  static async start(extraArgs: readonly string[] = []): Promise<RedisServer> {
    for (let attempt = 1; ; attempt++) {
      const server = new RedisServer(await freePort(), extraArgs);
      try {
        await server.restart();
        return server;
      } catch (err) {
        if (!(err instanceof PortTakenError) || attempt === 3) throw err;
      }
    }
  }

  /** Starts (again) on the same port and resolves once it answers. */
  async restart(): Promise<void> {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) return;
    const proc = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--loglevel', 'warning', '--dir', this.dir, ...this.extraArgs],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.proc = proc;
    let output = '';
    proc.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    // 'close': exited and its output read to the end (the reason may arrive after 'exit')
    const closed = new Promise<void>((resolve) => proc.once('close', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      proc.once('error', (err) =>
        reject(new Error(`could not start redis-server (is it installed and on PATH?): ${err.message}`)),
      );
      proc.once('spawn', () => resolve());
    });
    const deadline = Date.now() + 5000;
    // Ours answers (by its pid): another Redis already on this port must not pass for it.
    while ((await serverPid(this.port)) !== proc.pid) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        await closed;
        const why = `redis-server on port ${this.port} exited (${proc.exitCode ?? proc.signalCode}): ${output.trim()}`;
        throw /already in use/i.test(output) ? new PortTakenError(why) : new Error(why);
      }
      if (Date.now() > deadline) throw new Error(`redis-server on port ${this.port} did not answer within 5 s: ${output.trim()}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /**
   * SIGSTOP: the server stops answering but its connections stay open (the kernel still
   * accepts and acknowledges), like a Redis whose node was lost without a FIN or RST.
   */
  pause(): void {
    this.proc?.kill('SIGSTOP');
  }

  /** SIGCONT after `pause()`. */
  resume(): void {
    this.proc?.kill('SIGCONT');
  }

  /** SIGKILLs the server (paused or not) and waits until it is gone. */
  async kill(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The pid of the Redis answering on `port` (INFO server), or undefined when none answers. */
function serverPid(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let reply = '';
    socket.setTimeout(1000, () => socket.destroy());
    socket.once('connect', () => socket.write('*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n'));
    socket.on('data', (d) => {
      reply += d.toString();
      const pid = /^process_id:(\d+)\r\n/m.exec(reply);
      if (!pid) return;
      resolve(Number(pid[1]));
      socket.destroy();
    });
    socket.once('error', () => undefined); // nothing listening yet: 'close' follows
    socket.once('close', () => resolve(undefined));
  });
}
