import { ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import { freePort } from './ports';

/**
 * A private `redis-server` on a free loopback port, for fault tests that must kill and
 * restart Redis without disturbing anyone else. Keeps nothing on disk.
 */
export class RedisServer {
  private proc?: ChildProcess;
  private constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<RedisServer> {
    const server = new RedisServer(await freePort());
    await server.restart();
    return server;
  }

  /** Starts (again) on the same port and resolves once it answers. */
  async restart(): Promise<void> {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) return;
    const proc = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--loglevel', 'warning'],
      { stdio: 'ignore' },
    );
    this.proc = proc;
    await new Promise<void>((resolve, reject) => {
      proc.once('error', (err) =>
        reject(new Error(`could not start redis-server (is it installed and on PATH?): ${err.message}`)),
      );
      proc.once('spawn', () => resolve());
    });
    const deadline = Date.now() + 5000;
    while (!(await pingable(this.port))) {
      if (Date.now() > deadline) throw new Error(`redis-server on port ${this.port} did not answer within 5 s`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** SIGKILLs the server and waits until it is gone. */
  async kill(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    await this.kill();
  }
}

function pingable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => socket.write('*1\r\n$4\r\nPING\r\n'));
    socket.once('data', (d) => {
      socket.destroy();
      resolve(d.toString().includes('PONG'));
    });
    socket.once('error', () => resolve(false));
  });
}
