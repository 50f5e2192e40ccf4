/**
 * The deploy rehearsal: runs a plan (./plan.ts) on Docker as a kubelet would, waits for
 * every readiness probe, checks what the manifests promise about each container, runs the
 * smoke test through the L7 routes and the L4 LoadBalancer, and removes everything it made,
 * also on failure or Ctrl-C.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ensureRedisImage } from '../docker/base-images';
import { docker, dockerOk, imageExists, requireEngine, tryPull } from '../docker/docker';
import { formatCheck, runSmoke } from '../smoke/checks';
import { ContainerPlan, PlanError, PodPlan, Probe, REHEARSAL_LABEL, RehearsalPlan, planRehearsal } from './plan';
import { describeProbe, runProbe } from './probes';
import { FORWARDER_SCRIPT, L7_PORT, L7_SCRIPT, WEBHOOK_RECEIVER_SCRIPT } from './proxies';

type Json = any;

export interface RehearseOptions {
  readonly manifests: readonly Json[];
  /** Where the manifests came from, for the first line. */
  readonly source: string;
  /** How long every pod has to become ready. */
  readonly readyTimeoutSeconds: number;
  /** Leave everything running (and say how to remove it). */
  readonly keep: boolean;
  /** Run the smoke test once everything is ready. */
  readonly smoke: boolean;
  readonly log: (line: string) => void;
}

const PID_LABEL = 'dev.levee.rehearsal.pid';
/** The repository's node_modules: the object store stand-in (s3rver, a dev dependency) runs from there, mounted read-only. */
const NODE_MODULES = resolve(__dirname, '../../node_modules');

class Aborted extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(signal);
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** A container that has restarted this often is in a crash loop (CrashLoopBackOff). */
const CRASH_LOOP_RESTARTS = 3;

interface ContainerState {
  status: string;
  restarts: number;
  exitCode: number;
}

/** The kubelet's bookkeeping of one probe: consecutive results and the last one. */
class Prober {
  successes = 0;
  failures = 0;
  total = 0;
  last = 'not run yet';
  passed = false;
  livenessFailures = 0;
  private stopped = false;

  constructor(readonly probe: Probe, readonly container: ContainerPlan, private readonly onLivenessFailure: (p: Prober) => Promise<void>, private readonly gate?: () => boolean) {}

  async loop(): Promise<void> {
    await sleep(this.probe.initialDelaySeconds * 1000);
    while (!this.stopped) {
      if (this.gate && !this.gate()) {
        await sleep(200);
        continue;
      }
      const outcome = await runProbe(this.probe, this.container.dockerName);
      this.total++;
      this.last = outcome.detail;
      if (outcome.ok) {
        this.successes++;
        this.failures = 0;
        if (this.successes >= this.probe.successThreshold) this.passed = true;
      } else {
        this.failures++;
        this.successes = 0;
        if (this.probe.kind === 'readiness' && this.failures >= this.probe.failureThreshold) this.passed = false;
        if (this.probe.kind === 'liveness' && this.failures >= this.probe.failureThreshold) {
          this.livenessFailures++;
          this.failures = 0;
          await this.onLivenessFailure(this);
        }
      }
      if (this.probe.kind === 'startup' && this.passed) return;
      await sleep(this.probe.periodSeconds * 1000);
    }
  }

  stop(): void {
    this.stopped = true;
  }
}

/** Removes what earlier rehearsals left behind when their process is gone. */
async function removeLeftovers(log: (l: string) => void): Promise<void> {
  const alive = (pid: string) => {
    try {
      process.kill(Number(pid), 0);
      return true;
    } catch {
      return false;
    }
  };
  const list = async (kind: 'container' | 'network' | 'volume') => {
    const format = kind === 'container' ? '{{.ID}} {{.Label "' + PID_LABEL + '"}}' : '{{.Name}} {{.Label "' + PID_LABEL + '"}}';
    const r = await docker([kind, 'ls', ...(kind === 'container' ? ['-a'] : []), '--filter', `label=${REHEARSAL_LABEL}`, '--format', format]);
    return r.stdout.split('\n').filter(Boolean).map((l) => l.split(' ')).filter(([, pid]) => !pid || !alive(pid)).map(([id]) => id!);
  };
  const containers = await list('container');
  if (containers.length > 0) await docker(['rm', '-f', ...containers]);
  const networks = await list('network');
  if (networks.length > 0) await docker(['network', 'rm', ...networks]);
  const volumes = await list('volume');
  if (volumes.length > 0) await docker(['volume', 'rm', '-f', ...volumes]);
  const n = containers.length + networks.length + volumes.length;
  if (n > 0) log(`removed ${containers.length} containers, ${networks.length} networks and ${volumes.length} volumes left by an earlier rehearsal`);
}

/**
 * A network with a subnet of its own (Docker assigns fixed IPs only there, and a pod's IP
 * must be known before it starts: `status.podIP`): a free /24 in 172.28.0.0/14.
 */
async function createNetwork(name: string, labels: readonly string[]): Promise<string> {
  let last = '';
  for (let attempt = 0; attempt < 20; attempt++) {
    const n = Math.floor(Math.random() * 1024);
    const subnet = `172.${28 + (n >> 8)}.${n & 255}.0/24`;
    const r = await docker(['network', 'create', ...labels.flatMap((l) => ['--label', l]), '--subnet', subnet, name]);
    if (r.code === 0) return subnet;
    last = r.stderr.trim();
    if (!/overlap/i.test(last)) break;
  }
  throw new Error(`docker network create ${name} failed: ${last}`);
}

/** 100 addresses from .10 of a /24 (Docker hands out the low ones itself). */
function addresses(subnet: string): string[] {
  const [a, b, c] = subnet.split('/')[0]!.split('.');
  return Array.from({ length: 100 }, (_, i) => `${a}.${b}.${c}.${10 + i}`);
}

/**
 * The end of a container's log, of its last run only (a crash loop repeats itself). When that
 * run has nothing to show yet (Docker copies a container's output to its log asynchronously,
 * so the last lines of a run that has just exited can arrive a moment later), it is read again
 * after a short wait, this time whole: a crash loop's earlier runs said the same thing.
 */
async function logTail(dockerName: string, lines = 20): Promise<string[]> {
  const startedAt = (await docker(['inspect', '--format', '{{.State.StartedAt}}', dockerName])).stdout.trim();
  const since = /^\d{4}-/.test(startedAt) && !startedAt.startsWith('0001') ? ['--since', startedAt] : [];
  const read = async (args: string[]) => {
    const r = await docker(['logs', '--tail', String(lines), ...args, dockerName]);
    return (r.stdout + r.stderr).trim().split('\n').filter(Boolean);
  };
  const tail = await read(since);
  if (tail.length > 0) return tail;
  await sleep(500);
  return read([]);
}

async function inspect(names: readonly string[]): Promise<Map<string, ContainerState>> {
  const out = new Map<string, ContainerState>();
  if (names.length === 0) return out;
  const r = await docker(['inspect', '--format', '{{.Name}} {{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}', ...names]);
  for (const line of r.stdout.split('\n').filter(Boolean)) {
    const [name, status, restarts, exitCode] = line.split(' ');
    out.set(name!.replace(/^\//, ''), { status: status!, restarts: Number(restarts), exitCode: Number(exitCode) });
  }
  return out;
}

function httpGet(url: string, timeoutMs = 5000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

/** Sum of a counter's samples whose labels match every given pair. */
export function counterValue(text: string, metric: string, labels: Readonly<Record<string, string | RegExp>>): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+([0-9.eE+-]+)/.exec(line);
    if (!m || m[1] !== metric) continue;
    const got = Object.fromEntries([...(m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => (typeof v === 'string' ? got[k] === v : v.test(got[k] ?? '')))) sum += Number(m[4]);
  }
  return sum;
}

export async function rehearse(options: RehearseOptions): Promise<number> {
  const { log } = options;
  const started = Date.now();
  const engine = await requireEngine();
  await removeLeftovers(log);

  const runId = randomBytes(3).toString('hex');
  const label = `${REHEARSAL_LABEL}=${runId}`;
  const filesDir = mkdtempSync(join(tmpdir(), 'levee-rehearsal-'));
  const probers: Prober[] = [];
  // Everything is removed by its label, so a `docker run` cut short by Ctrl-C is found too.
  const cleanup = async () => {
    for (const p of probers) p.stop();
    rmSync(filesDir, { recursive: true, force: true });
    if (options.keep && !aborted) {
      log(`--keep: left it running; remove it with: docker rm -f $(docker ps -aq --filter label=${label}); docker network rm $(docker network ls -q --filter label=${label}); docker volume rm $(docker volume ls -q --filter label=${label})`);
      return;
    }
    const ids = async (kind: 'container' | 'network' | 'volume') =>
      (await docker([kind, 'ls', '-q', ...(kind === 'container' ? ['-a'] : []), '--filter', `label=${label}`])).stdout.split('\n').filter(Boolean);
    const containers = await ids('container');
    if (containers.length > 0) await docker(['rm', '-f', '-v', ...containers]);
    const networks = await ids('network');
    if (networks.length > 0) await docker(['network', 'rm', ...networks]);
    const volumes = await ids('volume');
    if (volumes.length > 0) await docker(['volume', 'rm', '-f', ...volumes]);
    log(`removed ${containers.length} containers, ${networks.length} network${networks.length === 1 ? '' : 's'} and ${volumes.length} volume${volumes.length === 1 ? '' : 's'}`);
  };
  // Ctrl-C or SIGTERM: stop at the next step, then clean up as after a failure.
  let aborted: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    aborted = signal;
    log(`${signal}: stopping; removing what the rehearsal created`);
    for (const p of probers) p.stop();
  };
  const guard = () => {
    if (aborted) throw new Aborted(aborted);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const results: { ok: boolean; line: string }[] = [];
  const check = (ok: boolean, text: string, detail: string[] = []) => {
    const line = `  ${ok ? 'ok  ' : 'FAIL'} ${text}`;
    results.push({ ok, line });
    log(line);
    for (const d of detail) log(`       | ${d}`);
  };

  try {
    const networkName = `lrh-${runId}`;
    const subnet = await createNetwork(networkName, [`${label}`, `${PID_LABEL}=${process.pid}`]);

    let plan: RehearsalPlan;
    try {
      plan = planRehearsal(options.manifests, { runId, network: { name: networkName, ips: addresses(subnet) }, filesDir });
    } catch (err) {
      if (err instanceof PlanError) {
        check(false, `the manifests cannot be run as written: ${err.message}`);
        return 1;
      }
      throw err;
    }
    const containers = plan.pods.flatMap((p) => p.containers);
    log(`${options.source}: ${options.manifests.length} objects in namespace ${plan.namespace} → ${plan.pods.length} pods, ${containers.length} containers (Docker ${engine}, network ${networkName} ${subnet})`);
    for (const note of plan.notes) log(`note: ${note}`);

    // Images: IfNotPresent, as the manifests say; the Redis image may be a local stand-in.
    const images = [...new Set(plan.pods.flatMap((p) => [...p.initContainers, ...p.containers].map((c) => c.image)))];
    for (const image of images) {
      if (await imageExists(image)) {
        const standIn = (await docker(['image', 'inspect', '--format', '{{index .Config.Labels "dev.levee.stand-in"}}', image])).stdout.trim();
        if (standIn && standIn !== '<no value>') log(`image ${image}: a local stand-in (${standIn})`);
        continue;
      }
      if (/(^|\/)redis[:@]/.test(image)) {
        const origin = await ensureRedisImage(image, log);
        log(`image ${image}: ${origin === 'pulled' ? 'pulled' : "no registry answered; built a local stand-in from Debian's redis-server under this tag"}`);
        continue;
      }
      if (!(await tryPull(image))) {
        check(false, `image ${image} is not present and cannot be pulled; build the app images first with \`npm run images\``);
        return 1;
      }
    }
    // Node for the forwarder and the L7 stand-in: the first app image whose command is node.
    let helperImage: string | undefined;
    for (const image of images) {
      const cmd = (await docker(['image', 'inspect', '--format', '{{json .Config.Cmd}}', image])).stdout;
      if (/"node"/.test(cmd)) {
        helperImage = image;
        break;
      }
    }

    // The object store stand-in, before the pods that use it (their readiness waits for the bucket).
    const store = plan.objectStore;
    if (store) {
      guard();
      if (!helperImage) {
        check(false, 'no image with Node to run the object store stand-in in');
        return 1;
      }
      const s3rver = '/opt/levee-rehearsal/node_modules/s3rver/bin/s3rver.js';
      await dockerOk([
        'run', '-d', '--name', store.dockerName, '--label', label, '--label', `${PID_LABEL}=${process.pid}`,
        '--network', networkName, '--ip', store.ip, '--network-alias', new URL(store.endpoint).hostname,
        '--read-only', '--tmpfs', '/data:rw,size=268435456', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--user', '10001:10001', '--memory', String(512 * 1024 ** 2), // the tmpfs counts against it
        '-v', `${NODE_MODULES}:/opt/levee-rehearsal/node_modules:ro`, '--entrypoint', 'node', helperImage,
        // Path-style only: with virtual-host buckets on, s3rver would take the host name for a bucket's.
        s3rver, '--directory', '/data', '--address', '0.0.0.0', '--port', String(store.port), '--silent', '--no-vhost-buckets', ...store.buckets.flatMap((b) => ['--configure-bucket', b]),
      ]);
      const until = Date.now() + 20_000;
      let answered = '';
      while (!answered && Date.now() < until) {
        answered = await httpGet(`http://${store.ip}:${store.port}/`, 1000).then((r) => String(r.status), () => '');
        if (!answered) await sleep(200);
      }
      if (!answered) {
        check(false, `the object store stand-in at ${store.endpoint} did not answer within 20 s`, await logTail(store.dockerName));
        return 1;
      }
      log(`object store stand-in (s3rver) at ${store.endpoint} (${store.ip}), bucket${store.buckets.length > 1 ? 's' : ''} ${store.buckets.join(', ')}`);
    }

    // The webhook receiver stand-in, reachable from the pods under its host name, and from here on a published port.
    let webhookReceiverUrl: string | undefined;
    const receiver = plan.webhookReceiver;
    if (receiver && helperImage) {
      guard();
      await dockerOk(
        [
          'run', '-d', '--name', receiver.dockerName, '--label', label, '--label', `${PID_LABEL}=${process.pid}`,
          '--network', networkName, '--ip', receiver.ip, '--network-alias', new URL(receiver.url).hostname, '-p', `127.0.0.1::${receiver.port}`,
          '--read-only', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--user', '10001:10001', '--memory', String(128 * 1024 ** 2),
          '-v', `${NODE_MODULES}:/opt/levee-rehearsal/node_modules:ro`, '-e', 'WEBHOOK_SECRET', '-e', 'PORT', '--entrypoint', 'node', helperImage, '-e', WEBHOOK_RECEIVER_SCRIPT,
        ],
        { env: { WEBHOOK_SECRET: receiver.secret, PORT: String(receiver.port) } },
      );
      const port = (await dockerOk(['port', receiver.dockerName, `${receiver.port}/tcp`])).trim().split('\n')[0]!.split(':').pop()!;
      webhookReceiverUrl = `http://127.0.0.1:${port}`;
      log(`webhook receiver stand-in at ${receiver.url} (${receiver.ip})`);
    }

    // Files of configMap/secret volumes; volumes of volumeClaimTemplates, handed to fsGroup.
    for (const pod of plan.pods) {
      for (const f of pod.files) {
        mkdirSync(f.dir, { recursive: true, mode: 0o755 });
        for (const [name, content] of Object.entries(f.files)) writeFileSync(join(f.dir, name), content, { mode: f.mode });
        chmodSync(f.dir, 0o755);
      }
      for (const v of pod.volumes) {
        await dockerOk(['volume', 'create', '--label', label, '--label', `${PID_LABEL}=${process.pid}`, v.dockerName]);
        if (v.fsGroup !== undefined) {
          await dockerOk(['run', '--rm', '--user', '0', '--entrypoint', 'sh', '-v', `${v.dockerName}:/v`, pod.containers[0]!.image, '-c', `chgrp ${v.fsGroup} /v && chmod 2775 /v`]);
        }
      }
    }
    chmodSync(filesDir, 0o755);

    // Pods: the pause container, init containers in order, then the containers and their
    // probes. A StatefulSet's pods start one after the other, each once the one before is
    // ready (podManagementPolicy OrderedReady); every other pod starts at once.
    const podStart = new Map<string, number>();
    const podFailed = new Map<string, string>();
    const livenessRestarts: string[] = [];
    const started = new Set<string>();
    const startPod = async (pod: PodPlan): Promise<void> => {
      started.add(pod.name);
      if (aborted) return;
      await dockerOk(['run', '-d', '--label', `${PID_LABEL}=${process.pid}`, ...pod.pause.args]);
      podStart.set(pod.name, Date.now());
      for (const c of pod.initContainers) {
        const r = await docker(['run', '--label', `${PID_LABEL}=${process.pid}`, ...c.args], { env: c.env, timeoutMs: options.readyTimeoutSeconds * 1000 });
        if (r.code !== 0) {
          podFailed.set(pod.name, `init container ${c.name} exited ${r.code}`);
          return;
        }
      }
      for (const c of pod.containers) {
        await dockerOk(['run', '-d', '--label', `${PID_LABEL}=${process.pid}`, ...c.args], { env: c.env });
        const startup = c.probes.find((p) => p.kind === 'startup');
        const startupProber = startup ? new Prober(startup, c, async () => undefined) : undefined;
        const mine = [
          ...(startupProber ? [startupProber] : []),
          ...c.probes
            .filter((x) => x.kind !== 'startup')
            .map(
              (p) =>
                new Prober(
                  p,
                  c,
                  async (prober) => {
                    livenessRestarts.push(`${c.dockerName}: liveness ${describeProbe(prober.probe)} failed ${prober.probe.failureThreshold} times (${prober.last}); restarted`);
                    await docker(['restart', '-t', '5', c.dockerName]);
                  },
                  startupProber ? () => startupProber.passed : undefined,
                ),
            ),
        ];
        probers.push(...mine);
        for (const p of mine) void p.loop();
      }
      log(`started pod ${pod.name} (${pod.owner}) at ${pod.ip}${pod.aliases.length ? ` as ${pod.aliases.filter((a) => !a.includes('.')).join(', ')}` : ''}`);
    };
    const starting: Promise<void>[] = [];
    const start = (pod: PodPlan) =>
      starting.push(
        startPod(pod).catch((err: unknown) => {
          podFailed.set(pod.name, `could not start: ${(err as Error).message}`);
        }),
      );
    for (const pod of plan.pods.filter((p) => p.after === undefined)) start(pod);

    // kube-proxy's part (Services whose port ≠ targetPort, and LoadBalancers) and the L7 router.
    const published = new Map<string, number>();
    const helperArgs = (name: string, ip: string) => ['-d', '--name', name, '--label', label, '--label', `${PID_LABEL}=${process.pid}`, '--network', networkName, '--ip', ip, '--read-only', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--user', '10001:10001', '--memory', String(128 * 1024 ** 2), '--sysctl', 'net.ipv4.ip_unprivileged_port_start=0', '--entrypoint', 'node'];
    if ((plan.forwards.length > 0 || plan.l7.length > 0) && !helperImage) {
      check(false, 'no image with Node to run the Service forwarders and the L7 stand-in in');
      return 1;
    }
    for (const f of plan.forwards) {
      guard();
      const args = [...helperArgs(f.dockerName, f.ip), ...f.aliases.flatMap((a) => ['--network-alias', a]), ...(f.publish ? f.ports.flatMap((p) => ['-p', `127.0.0.1::${p.port}`]) : []), '-e', 'FORWARDS', helperImage!, '-e', FORWARDER_SCRIPT];
      await dockerOk(['run', ...args], { env: { FORWARDS: JSON.stringify(f.ports.map((p) => ({ port: p.port, targets: p.targets }))) } });
      if (f.publish) {
        const port = (await dockerOk(['port', f.dockerName, `${f.ports[0]!.port}/tcp`])).trim().split('\n')[0]!.split(':').pop()!;
        published.set(f.service, Number(port));
        log(`Service ${f.service} (${f.type}) :${f.ports.map((p) => `${p.port} → ${p.targets[0]!.port}`).join(', ')} published at http://127.0.0.1:${port}`);
      }
    }
    let l7Url: string | undefined;
    if (plan.l7.length > 0) {
      guard();
      const name = `lrh-${runId}-l7`;
      const routes = plan.l7.map((r) => ({ prefix: r.pathPrefix, ...(r.regex ? { regex: r.pathPrefix } : {}), service: r.service, port: r.port }));
      await dockerOk(['run', ...helperArgs(name, plan.l7Ip), '-p', `127.0.0.1::${L7_PORT}`, '-e', 'ROUTES', '-e', 'PORT', helperImage!, '-e', L7_SCRIPT], { env: { ROUTES: JSON.stringify(routes), PORT: String(L7_PORT) } });
      const port = (await dockerOk(['port', name, `${L7_PORT}/tcp`])).trim().split('\n')[0]!.split(':').pop()!;
      l7Url = `http://127.0.0.1:${port}`;
      log(`L7 routes (${[...new Set(plan.l7.map((r) => r.source))].join(', ')}): ${plan.l7.map((r) => `${r.pathPrefix} → ${r.service}:${r.port}`).join(', ')}, served by a stand-in router at ${l7Url}`);
    }

    // Probes run as the kubelet runs them (started with each pod), until every pod is ready.
    const readiness = (c: ContainerPlan) => probers.find((p) => p.container === c && p.probe.kind === 'readiness');
    const readyAt = new Map<string, number>();
    const deadline = Date.now() + options.readyTimeoutSeconds * 1000;
    let states = new Map<string, ContainerState>();
    while (Date.now() < deadline) {
      guard();
      states = await inspect(containers.map((c) => c.dockerName));
      for (const pod of plan.pods) {
        if (podFailed.has(pod.name) || readyAt.has(pod.name)) continue;
        const looping = pod.containers.find((c) => (states.get(c.dockerName)?.restarts ?? 0) >= CRASH_LOOP_RESTARTS);
        if (looping) {
          // CrashLoopBackOff: stop restarting it, and let its last run end so its exit code and log are its own.
          await docker(['update', '--restart', 'no', looping.dockerName]);
          const exit = (await docker(['wait', looping.dockerName], { timeoutMs: 15_000 })).stdout.trim();
          podFailed.set(pod.name, `container ${looping.name} is in a crash loop (${states.get(looping.dockerName)!.restarts} restarts${exit ? `, last exit code ${exit}` : ''})`);
          continue;
        }
        if (!podStart.has(pod.name)) continue; // not started yet (its StatefulSet predecessor is not ready)
        const ready = pod.containers.every((c) => states.get(c.dockerName)?.status === 'running' && (readiness(c)?.passed ?? true));
        if (ready) {
          readyAt.set(pod.name, Date.now());
          for (const next of plan.pods.filter((p) => p.after === pod.name && !started.has(p.name))) start(next);
          const probe = pod.containers.map((c) => readiness(c)?.probe).filter((p) => p !== undefined)[0];
          check(true, `pod ${pod.name} ready in ${seconds(Date.now() - podStart.get(pod.name)!)}${probe ? ` (readiness ${describeProbe(probe)})` : ''}`);
        }
      }
      if (plan.pods.every((p) => readyAt.has(p.name) || podFailed.has(p.name))) break;
      // A pod waiting on a predecessor that failed never starts: say so.
      for (const p of plan.pods.filter((x) => x.after !== undefined && !started.has(x.name) && podFailed.has(x.after!))) podFailed.set(p.name, `not started: ${p.after} before it never became ready`);
      await sleep(500);
    }
    await Promise.all(starting);
    states = await inspect(containers.map((c) => c.dockerName));
    for (const pod of plan.pods.filter((p) => !readyAt.has(p.name))) {
      const why = podFailed.get(pod.name) ?? `not ready after ${options.readyTimeoutSeconds} s`;
      const detail: string[] = [];
      for (const c of [...pod.initContainers, ...pod.containers]) {
        const s = states.get(c.dockerName);
        const r = readiness(c);
        detail.push(`container ${c.name}: ${s ? `${s.status}, ${s.restarts} restarts, exit code ${s.exitCode}` : c.init ? 'init container' : 'not started'}${r ? `; readiness ${describeProbe(r.probe)} → ${r.last} (${r.total} probes)` : ''}`);
        const tail = await logTail(c.dockerName);
        detail.push(`log tail of ${c.name}${tail.length === 0 ? ': (empty)' : ':'}`, ...tail.map((l) => `  ${l.slice(0, 300)}`));
      }
      check(false, `pod ${pod.name} (${pod.owner}): ${why}`, detail);
    }
    guard();
    if (results.some((r) => !r.ok)) return 1;

    // What the manifests promise about every container, checked inside it.
    const runAs: string[] = [];
    for (const c of containers) {
      const r = await docker(['exec', c.dockerName, 'sh', '-c', 'id -u; id -g; if touch /.levee-rehearsal 2>/dev/null; then echo writable; else echo read-only; fi; grep CapEff /proc/self/status']);
      const [uid, gid, root, caps] = r.stdout.trim().split('\n');
      const capEff = caps?.split(/\s+/)[1] ?? '?';
      const okUid = c.uid === undefined || uid === String(c.uid);
      const okRoot = !c.readOnlyRoot || root === 'read-only';
      const okCaps = !c.capDropAll || /^0+$/.test(capEff);
      if (!(r.code === 0 && okUid && okRoot && okCaps)) {
        check(false, `container ${c.dockerName} does not run as its manifest says`, [`uid ${uid} (manifest ${c.uid}), gid ${gid}, root ${root}, CapEff ${capEff}${r.code !== 0 ? `, exec exit ${r.code}: ${r.stderr.trim()}` : ''}`]);
      } else runAs.push(`${uid}:${gid}`);
    }
    if (runAs.length === containers.length) {
      check(true, `every container (${containers.length}) runs as ${[...new Set(runAs)].join(', ')} with ${containers.every((c) => c.readOnlyRoot) ? 'a read-only root' : 'the root its manifest asks for'} and no capabilities (id, a write to /, CapEff, inside each)`);
    }

    // Every pod's metrics port, scraped as a ServiceMonitor/PodMonitor would.
    const scrapeUrls = new Map<string, string[]>();
    const scraped: string[] = [];
    for (const pod of plan.pods) {
      const targets = new Set<string>();
      if (pod.annotations['prometheus.io/scrape'] === 'true' && pod.annotations['prometheus.io/port']) targets.add(`${pod.annotations['prometheus.io/port']}${pod.annotations['prometheus.io/path'] ?? '/metrics'}`);
      for (const c of pod.containers) for (const p of c.ports) if (p.name === 'metrics' || p.name === 'http-metrics') targets.add(`${p.port}/metrics`);
      for (const t of targets) {
        const url = `http://${pod.ip}:${t}`;
        try {
          const r = await httpGet(url);
          if (r.status === 200 && /^# (HELP|TYPE) /m.test(r.body)) {
            scraped.push(`${pod.name}:${t.split('/')[0]}`);
            scrapeUrls.set(pod.name, [...(scrapeUrls.get(pod.name) ?? []), url]);
          } else check(false, `metrics of pod ${pod.name} at ${url} → ${r.status}, not Prometheus text`);
        } catch (err) {
          check(false, `metrics of pod ${pod.name} at ${url}: ${(err as Error).message}`);
        }
      }
    }
    if (scraped.length > 0) check(true, `every metrics port answers /metrics: ${scraped.join(', ')}`);
    // …and no public port serves them (the LoadBalancer and the L7 routes reach only those).
    const leaking: string[] = [];
    const publicPorts: string[] = [];
    for (const pod of plan.pods) {
      for (const p of pod.containers.flatMap((c) => c.ports).filter((p) => p.name === 'http')) {
        const r = await httpGet(`http://${pod.ip}:${p.port}/metrics`).catch(() => undefined);
        publicPorts.push(`${pod.name}:${p.port}`);
        if (r && (r.status === 200 || /^# (HELP|TYPE) /m.test(r.body))) leaking.push(`${pod.name}:${p.port} → ${r.status}`);
      }
    }
    if (publicPorts.length > 0) check(leaking.length === 0, leaking.length === 0 ? `no public port serves /metrics: ${publicPorts.join(', ')}` : `public ports serve /metrics: ${leaking.join(', ')}`);
    const metricsOf = async (pod: PodPlan) => (await Promise.all((scrapeUrls.get(pod.name) ?? []).map((u) => httpGet(u).then((r) => r.body, () => '')))).join('\n');

    // The L4 LoadBalancer(s): the selected pod's readiness path through the published address.
    for (const [service, port] of published) {
      const f = plan.forwards.find((x) => x.service === service)!;
      const pod = plan.pods.find((p) => p.ip === f.ports[0]!.targets[0]!.ip)!;
      const probe = pod.containers.flatMap((c) => c.probes).find((p) => p.kind === 'readiness' && p.action.type === 'http');
      const path = probe && probe.action.type === 'http' ? probe.action.path : '/';
      try {
        const r = await httpGet(`http://127.0.0.1:${port}${path}`);
        check(r.status === 200, `L4 ${f.type} Service ${service} reaches ${pod.name}: GET ${path} → ${r.status}`);
      } catch (err) {
        check(false, `L4 ${f.type} Service ${service}: GET http://127.0.0.1:${port}${path}: ${(err as Error).message}`);
      }
    }

    guard();
    if (options.smoke) {
      if (!l7Url) {
        check(false, 'the manifests have no L7 routes (Ingress or HTTPRoute) to run the smoke test through');
      } else {
        log(`smoke test through the L7 routes at ${l7Url}:`);
        const smoke = await runSmoke({
          url: l7Url,
          log: () => undefined,
          ...(receiver && webhookReceiverUrl
            ? {
                webhook: {
                  url: receiver.url,
                  received: async (jobId: string) => JSON.parse((await httpGet(`${webhookReceiverUrl}/received?job=${jobId}`, 5000)).body.toString()),
                },
              }
            : {}),
        });
        smoke.results.forEach((r, i) => {
          results.push({ ok: r.ok, line: formatCheck(i + 1, r) });
          log(formatCheck(i + 1, r));
        });
        if (smoke.unreachable) check(false, `the L7 stand-in does not answer: ${smoke.unreachable}`);
        // Who did the work: the worker container rendered, the media container served.
        const worker = plan.pods.find((p) => p.owner === 'Deployment/levee-worker');
        const media = plan.pods.find((p) => p.owner === 'Deployment/levee-media');
        if (smoke.jobId && worker && media) {
          const rendered = counterValue(await metricsOf(worker), 'levee_jobs_total', { result: 'completed' });
          check(rendered >= 1, `the worker container rendered the job: levee_jobs_total{result="completed"} = ${rendered} on ${worker.name}`);
          const served = counterValue(await metricsOf(media), 'levee_http_requests_total', { route: /^\/images/, status: /^(200|304)$/ });
          check(served >= 2, `the media container served the PNG: levee_http_requests_total{route=~"/images.*",status=~"200|304"} = ${served} on ${media.name}`);
        }
        // With object storage, the PNG is there (the stand-in answers anonymous reads).
        if (smoke.jobId && store) {
          const [bucket, prefix] = Object.entries(store.prefixes)[0] ?? [];
          const url = `http://${store.ip}:${store.port}/${bucket}/${prefix}${smoke.jobId}.png`;
          const r = await httpGet(url).catch((err: Error) => ({ status: 0, body: err.message }));
          check(r.status === 200, `the worker stored the PNG in the object store: GET ${store.endpoint}/${bucket}/${prefix}${smoke.jobId}.png on the stand-in → ${r.status}`);
        }
      }
    }

    // Nothing restarted behind our back while we looked.
    states = await inspect(containers.map((c) => c.dockerName));
    const restarted = containers.filter((c) => (states.get(c.dockerName)?.restarts ?? 0) > 0 || states.get(c.dockerName)?.status !== 'running');
    check(restarted.length === 0 && livenessRestarts.length === 0, restarted.length === 0 && livenessRestarts.length === 0 ? 'no container restarted and no liveness probe failed' : 'containers restarted or failed liveness', [
      ...restarted.map((c) => `${c.dockerName}: ${states.get(c.dockerName)?.status}, ${states.get(c.dockerName)?.restarts} restarts`),
      ...livenessRestarts,
    ]);
    guard();
    return results.every((r) => r.ok) ? 0 : 1;
  } catch (err) {
    // A `docker` command interrupted by the same Ctrl-C fails too: that is the abort, not an error.
    if (err instanceof Aborted || aborted) return (err instanceof Aborted ? err.signal : aborted) === 'SIGINT' ? 130 : 143;
    throw err;
  } finally {
    const passed = results.filter((r) => r.ok).length;
    if (aborted) log(`interrupted by ${aborted} after ${seconds(Date.now() - started)} (${passed}/${results.length} checks had passed)`);
    else log(`${passed}/${results.length} checks passed in ${seconds(Date.now() - started)}${results.every((r) => r.ok) && results.length > 0 ? '' : ' — FAILED'}`);
    await cleanup();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}
