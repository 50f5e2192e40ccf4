import { createHash } from 'node:crypto';
import { PNG } from 'pngjs';
import type { RenderRequest } from '../../shared/src/job';
import { paletteOf, Rgb } from './styles';

/**
 * The stand-in for an inference model: a procedural picture (domain-warped value noise
 * coloured by the style's palette, with a few soft discs on top) derived only from
 * prompt + style + seed. Everything comes from a seeded PRNG, so the same request gives the
 * same bytes; the work per pixel is fixed, so CPU cost is proportional to width × height.
 * Coordinates are normalized, so the same request at another size is the same scene.
 */
export type RenderInput = Required<Pick<RenderRequest, 'prompt' | 'width' | 'height'>> & Pick<RenderRequest, 'style' | 'seed'>;

/** pngjs options fixed here so the encoding, and therefore the bytes, never drift. */
export const PNG_OPTIONS = {
  colorType: 2 as const, // RGB, no alpha channel in the file
  inputColorType: 6 as const, // RGBA in memory
  inputHasAlpha: true,
  bitDepth: 8 as const,
  deflateLevel: 6,
  deflateStrategy: 3, // Z_RLE: fast, and deterministic like every zlib strategy
  filterType: 2, // "Up" on every row: no adaptive choice; cheap, and suits smooth pictures
};

export function renderPng(input: RenderInput): Buffer {
  const png = new PNG({ width: input.width, height: input.height, ...PNG_OPTIONS });
  paint(input, png.data);
  return PNG.sync.write(png, PNG_OPTIONS);
}

/** Fills `data` (RGBA, width × height × 4 bytes). Exported for the benchmark. */
export function paint(input: RenderInput, data: Buffer): void {
  const { width, height } = input;
  const style = input.style ?? 'default';
  const rand = mulberry32(seedOf(input.prompt, style, input.seed ?? 0));
  const noise = new ValueNoise(rand);
  const palette = paletteOf(style, rand);
  const warp = 0.6 + rand() * 1.2;
  const scale = 2 + rand() * 3;
  const discs = Array.from({ length: 3 + Math.floor(rand() * 5) }, () => ({
    x: rand(),
    y: rand(),
    r2: (0.05 + rand() * 0.2) ** 2,
    color: palette[Math.floor(rand() * palette.length)]!,
  }));
  const inv = 1 / Math.max(width, height);
  let o = 0;
  for (let py = 0; py < height; py++) {
    const y = py * inv;
    for (let px = 0; px < width; px++) {
      const x = px * inv;
      const qx = noise.fbm(x * scale, y * scale);
      const qy = noise.fbm(x * scale + 5.2, y * scale + 1.3);
      const v = noise.fbm(x * scale + warp * 4 * qx, y * scale + warp * 4 * qy);
      let [r, g, b] = ramp(palette, v);
      for (const d of discs) {
        const dx = x - d.x;
        const dy = y - d.y;
        const t = 1 - (dx * dx + dy * dy) / d.r2;
        if (t > 0) {
          const a = 0.55 * t * t;
          r += (d.color[0] - r) * a;
          g += (d.color[1] - g) * a;
          b += (d.color[2] - b) * a;
        }
      }
      data[o] = r;
      data[o + 1] = g;
      data[o + 2] = b;
      data[o + 3] = 255;
      o += 4;
    }
  }
}

export type { Rgb } from './styles';

// The per-pixel code avoids Math.* calls: plain arithmetic is as fast everywhere (and in
// jest's sandbox a Math.floor call costs ~100× more, which made the tests crawl).
function ramp(palette: readonly Rgb[], v: number): [number, number, number] {
  const t = (v < 0 ? 0 : v > 0.999999 ? 0.999999 : v) * (palette.length - 1);
  const i = t | 0;
  const f = t - i;
  const a = palette[i]!;
  const c = palette[i + 1]!;
  return [a[0] + (c[0] - a[0]) * f, a[1] + (c[1] - a[1]) * f, a[2] + (c[2] - a[2]) * f];
}

/** 32-bit seed from the inputs that define the picture (NUL-separated: no ambiguity). */
export function seedOf(prompt: string, style: string, seed: number): number {
  return createHash('sha256').update(`${prompt}\0${style}\0${seed}`).digest().readUInt32LE(0);
}

/** mulberry32: a small, fast, well-distributed 32-bit PRNG. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Math.floor for |v| < 2^31, without a call. */
function floor(v: number): number {
  const i = v | 0;
  return i > v ? i - 1 : i;
}

/** 2-D value noise on a 256-cell lattice, smoothstep-interpolated, summed over 4 octaves. */
class ValueNoise {
  private readonly values = new Float64Array(256);
  private readonly perm = new Uint8Array(512);

  constructor(rand: () => number) {
    for (let i = 0; i < 256; i++) {
      this.values[i] = rand();
      this.perm[i] = i;
    }
    for (let i = 255; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      const t = this.perm[i]!;
      this.perm[i] = this.perm[j]!;
      this.perm[j] = t;
    }
    for (let i = 0; i < 256; i++) this.perm[i + 256] = this.perm[i]!;
  }

  private at(ix: number, iy: number): number {
    return this.values[this.perm[(this.perm[ix & 255]! + iy) & 511]!]!;
  }

  noise(x: number, y: number): number {
    const x0 = floor(x);
    const y0 = floor(y);
    const fx = x - x0;
    const fy = y - y0;
    const sx = fx * fx * (3 - 2 * fx);
    const sy = fy * fy * (3 - 2 * fy);
    const a = this.at(x0, y0);
    const b = this.at(x0 + 1, y0);
    const c = this.at(x0, y0 + 1);
    const d = this.at(x0 + 1, y0 + 1);
    const top = a + (b - a) * sx;
    return top + (c + (d - c) * sx - top) * sy;
  }

  fbm(x: number, y: number): number {
    let sum = 0;
    let amp = 0.5;
    for (let i = 0; i < 4; i++) {
      sum += amp * this.noise(x, y);
      x *= 2.03;
      y *= 2.03;
      amp *= 0.5;
    }
    return sum / 0.9375;
  }
}
