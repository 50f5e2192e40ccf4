/** Probes executed as a kubelet executes them: HTTP and TCP from the node, exec inside the container. */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { docker } from '../docker/docker';
import type { Probe } from './plan';

export interface ProbeOutcome {
  readonly ok: boolean;
  /** What a `kubectl describe pod` event would say. */
  readonly detail: string;
}

export function describeProbe(p: Probe): string {
  switch (p.action.type) {
    case 'http':
      return `GET ${p.action.scheme.toLowerCase()}://${p.action.host}:${p.action.port}${p.action.path}`;
    case 'tcp':
      return `TCP ${p.action.host}:${p.action.port}`;
    case 'exec': {
      const text = JSON.stringify(p.action.command);
      return `exec ${text.length > 80 ? `${text.slice(0, 77)}…` : text}`;
    }
  }
}

export async function runProbe(p: Probe, dockerName: string): Promise<ProbeOutcome> {
  const timeoutMs = p.timeoutSeconds * 1000;
  const a = p.action;
  if (a.type === 'http') {
    return new Promise((resolve) => {
      const get = a.scheme === 'HTTPS' ? https.get : http.get;
      const req = get({ host: a.host, port: a.port, path: a.path, headers: { 'user-agent': 'kube-probe/1.28', ...a.headers }, timeout: timeoutMs, rejectUnauthorized: false }, (res) => {
        res.resume();
        const code = res.statusCode ?? 0;
        resolve({ ok: code >= 200 && code < 400, detail: `HTTP ${code}` });
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${p.timeoutSeconds} s`)));
      req.on('error', (err: NodeJS.ErrnoException) => resolve({ ok: false, detail: err.code ?? err.message }));
    });
  }
  if (a.type === 'tcp') {
    return new Promise((resolve) => {
      const socket = net.connect({ host: a.host, port: a.port, timeout: timeoutMs });
      socket.once('connect', () => (socket.destroy(), resolve({ ok: true, detail: 'connected' })));
      socket.once('timeout', () => (socket.destroy(), resolve({ ok: false, detail: `no connection within ${p.timeoutSeconds} s` })));
      socket.once('error', (err: NodeJS.ErrnoException) => resolve({ ok: false, detail: err.code ?? err.message }));
    });
  }
  const r = await docker(['exec', dockerName, ...a.command], { timeoutMs });
  const output = (r.stdout + r.stderr).trim().split('\n').slice(-2).join(' | ');
  if (r.code === 124) return { ok: false, detail: `no result within ${p.timeoutSeconds} s` };
  return { ok: r.code === 0, detail: r.code === 0 ? 'exit 0' : `exit ${r.code}${output ? `: ${output}` : ''}` };
}
