import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import { S3Images } from '../../services/shared/src/s3-images';
import type { S3Location } from '../../services/shared/src/image-settings';
import { freePort } from './ports';

/** The only credentials s3rver knows (it does not check SigV4 signatures, but it does check the key id). */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

const S3RVER_CLI = resolve(__dirname, '../../node_modules/s3rver/bin/s3rver.js');

/**
 * A private S3-compatible server (`s3rver`, an emulator of the S3 REST API, from npm) on a free
 * loopback port, as its own process so that fault tests can kill it and start it again on the
 * same port with the same objects. Keeps its objects in a temporary directory.
 */
export class S3Server {
  private proc?: ChildProcess;
  private output = '';
  private readonly dir = mkdtempSync(join(tmpdir(), 'levee-s3-'));

  private constructor(
    readonly port: number,
    /** Buckets created at every start (s3rver keeps their objects on disk across restarts). */
    readonly buckets: readonly string[],
  ) {}

  static async start(buckets: readonly string[] = ['levee-test']): Promise<S3Server> {
    const server = new S3Server(await freePort(), buckets);
    await server.restart();
    return server;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The first bucket. */
  get bucket(): string {
    return this.buckets[0]!;
  }

  /** Starts (again) on the same port and resolves once it accepts connections. */
  async restart(): Promise<void> {
    if (this.running) return;
    this.output = '';
    const proc = spawn(process.execPath, [S3RVER_CLI, '--directory', this.dir, '--address', '127.0.0.1', '--port', String(this.port), '--silent', ...this.buckets.flatMap((b) => ['--configure-bucket', b])], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    proc.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    const deadline = Date.now() + 10_000;
    while (!(await accepts(this.port))) {
      if (!this.running) throw new Error(`s3rver on port ${this.port} exited (${proc.exitCode ?? proc.signalCode}): ${this.output.trim()}`);
      if (Date.now() > deadline) throw new Error(`s3rver on port ${this.port} did not listen within 10 s: ${this.output.trim()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  get running(): boolean {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** SIGKILL, and wait until it is gone (its connections are reset). */
  async kill(): Promise<void> {
    const proc = this.proc;
    if (!proc || !this.running) return;
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    proc.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Where the services find it (path-style, as for MinIO or Ceph). */
  location(overrides: Partial<S3Location> = {}): S3Location {
    return { bucket: this.bucket, prefix: 'images/', endpoint: this.endpoint, region: 'us-east-1', forcePathStyle: true, timeoutMs: 5000, ...overrides };
  }

  /** An S3Images client of the store, with s3rver's credentials. */
  images(overrides: Partial<S3Location> = {}, config: Partial<S3ClientConfig> = {}): S3Images {
    return new S3Images(this.location(overrides), { credentials: S3RVER_CREDENTIALS, ...config });
  }

  /** The environment of a service process that uses this store (IMAGE_STORE=s3, credentials from the SDK's default chain). */
  env(overrides: Record<string, string> = {}): Record<string, string> {
    return {
      IMAGE_STORE: 's3',
      IMAGE_S3_BUCKET: this.bucket,
      IMAGE_S3_ENDPOINT: this.endpoint,
      IMAGE_S3_REGION: 'us-east-1',
      IMAGE_S3_FORCE_PATH_STYLE: 'true',
      AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
      ...overrides,
    };
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
