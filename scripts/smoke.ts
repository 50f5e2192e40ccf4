/**
 * `npm run smoke -- --url <base URL> [--images-url <base URL>] [--render-timeout <s>]`:
 * the smoke test against any running deployment (`npm run dev`, the rehearsal, a preview
 * environment). One line per check; exit code 0 only when every check passes.
 */
import { parseArgs } from 'node:util';
import { runSmoke } from './smoke/checks';

const USAGE = 'usage: npm run smoke -- --url <base URL> [--images-url <base URL>] [--render-timeout <seconds>]';

async function main(): Promise<number> {
  let values: { url?: string; 'images-url'?: string; 'render-timeout'?: string };
  try {
    ({ values } = parseArgs({ options: { url: { type: 'string' }, 'images-url': { type: 'string' }, 'render-timeout': { type: 'string' } } }));
  } catch (err) {
    console.error(`smoke: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const url = values.url;
  const renderTimeout = Number(values['render-timeout'] ?? 90);
  if (!url || !/^https?:\/\/[^/]/.test(url) || !(renderTimeout > 0)) {
    console.error(`smoke: ${!url ? '--url is required' : !/^https?:\/\//.test(url) ? `--url ${url} is not an http(s) URL` : `--render-timeout ${values['render-timeout']} is not a positive number`}\n${USAGE}`);
    return 2;
  }
  const imagesUrl = values['images-url'] ?? url;
  console.log(`smoke: ${url}${imagesUrl !== url ? ` (images: ${imagesUrl})` : ''}`);
  const t0 = Date.now();
  const result = await runSmoke({ url, imagesUrl, renderTimeoutMs: renderTimeout * 1000, log: (line) => console.log(line) });
  if (result.unreachable !== undefined) {
    console.error(`smoke: ${url} does not answer (${result.unreachable})`);
    return 1;
  }
  const passed = result.results.filter((r) => r.ok).length;
  console.log(`smoke: ${passed}/${result.results.length} checks passed in ${((Date.now() - t0) / 1000).toFixed(1)} s${result.passed ? '' : ' — FAILED'}`);
  return result.passed ? 0 : 1;
}

void main().then((code) => (process.exitCode = code));
