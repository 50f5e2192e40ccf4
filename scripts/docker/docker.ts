/**
 * The Docker CLI, as `npm run images` and `npm run rehearse` use it. Plain `docker`
 * commands (what a reader would type), never a second client library: every call here can
 * be copied into a shell.
 */
import { spawn, SpawnOptions } from 'node:child_process';

export interface DockerResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Raised when the Docker engine cannot be used at all; its message is the one line to print. */
export class DockerUnavailableError extends Error {
  override name = 'DockerUnavailableError';
}

export interface DockerOptions {
  /** Kill the command after this many milliseconds (exit code 124). */
  readonly timeoutMs?: number;
  /** Written to the command's stdin. */
  readonly input?: string | Buffer;
  /** Extra environment (e.g. DOCKER_BUILDKIT=0). */
  readonly env?: Readonly<Record<string, string>>;
  /** Stream the command's output here as it comes (line-buffered by the caller). */
  readonly onOutput?: (chunk: string) => void;
  readonly cwd?: string;
}

/** Runs `<command> ...args` and collects its output; never throws for a non-zero exit. */
export function run(command: string, args: readonly string[], options: DockerOptions = {}): Promise<DockerResult> {
  return new Promise((resolve, reject) => {
    const spawnOptions: SpawnOptions = {
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
    };
    const child = spawn(command, args, spawnOptions);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = options.timeoutMs !== undefined ? setTimeout(() => ((timedOut = true), child.kill('SIGKILL')), options.timeoutMs) : undefined;
    child.stdout!.on('data', (c: Buffer) => {
      stdout += c.toString();
      options.onOutput?.(c.toString());
    });
    child.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString();
      options.onOutput?.(c.toString());
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer);
      if (err.code === 'ENOENT') reject(new DockerUnavailableError(`${command}: command not found`));
      else reject(err);
    });
    child.on('close', (code) => {
      if (timer) clearTimeout(timer);
      resolve({ code: timedOut ? 124 : (code ?? 1), stdout, stderr });
    });
    child.stdin!.on('error', () => undefined); // a command that exits early closes its stdin
    child.stdin!.end(options.input ?? '');
  });
}

export const docker = (args: readonly string[], options?: DockerOptions) => run('docker', args, options);

/** Like {@link docker}, but a non-zero exit is an error carrying the command's stderr. */
export async function dockerOk(args: readonly string[], options?: DockerOptions): Promise<string> {
  const r = await docker(args, options);
  if (r.code !== 0) {
    const detail = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-5).join('\n');
    throw new Error(`docker ${args.slice(0, 3).join(' ')} … failed (exit ${r.code}): ${detail}`);
  }
  return r.stdout;
}

/**
 * Checks that a Docker engine answers. Throws {@link DockerUnavailableError} with one line
 * that says what to do: no client, or a client without an engine.
 */
export async function requireEngine(): Promise<string> {
  let r: DockerResult;
  try {
    r = await docker(['version', '--format', '{{.Server.Version}}'], { timeoutMs: 15_000 });
  } catch (err) {
    if (err instanceof DockerUnavailableError) {
      throw new DockerUnavailableError('no Docker: the `docker` command is not installed (Debian: apt-get install -y docker.io, then start dockerd)');
    }
    throw err;
  }
  const version = r.stdout.trim();
  if (r.code !== 0 || version === '') {
    const why = r.stderr.trim().split('\n').pop() ?? '';
    throw new DockerUnavailableError(`no Docker engine answers${why ? ` (${why})` : ''}; start one (e.g. \`dockerd &\`) and try again`);
  }
  return version;
}

export async function imageExists(ref: string): Promise<boolean> {
  return (await docker(['image', 'inspect', '--format', '{{.Id}}', ref])).code === 0;
}

/** Uncompressed size of an image in bytes (what `docker images` shows). */
export async function imageSize(ref: string): Promise<number> {
  return Number((await dockerOk(['image', 'inspect', '--format', '{{.Size}}', ref])).trim());
}

/** Tries `docker pull`; false when no registry answers within the timeout. */
export async function tryPull(ref: string, timeoutMs = 90_000): Promise<boolean> {
  return (await docker(['pull', ref], { timeoutMs })).code === 0;
}

export const MB = 1_000_000;
export const formatMB = (bytes: number) => `${(bytes / MB).toFixed(1)} MB`;
export const formatSeconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
