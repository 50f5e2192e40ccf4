import { PNG } from 'pngjs';
import { renderPng } from '../../services/model/src/renderer';

describe('renderPng (the procedural stand-in for a model)', () => {
  const request = { prompt: 'a lighthouse in a storm', width: 96, height: 64, style: 'ocean', seed: 42 };

  it('gives identical bytes for the same input', () => {
    expect(renderPng(request).equals(renderPng({ ...request }))).toBe(true);
  });

  it('gives different bytes for a different seed, prompt or style', () => {
    const base = renderPng(request);
    expect(renderPng({ ...request, seed: 43 }).equals(base)).toBe(false);
    expect(renderPng({ ...request, prompt: 'a lighthouse at dawn' }).equals(base)).toBe(false);
    expect(renderPng({ ...request, style: 'sunset' }).equals(base)).toBe(false);
  });

  it('encodes a PNG of the requested size that is a real picture, not a flat canvas', () => {
    const decoded = PNG.sync.read(renderPng(request));
    expect([decoded.width, decoded.height]).toEqual([96, 64]);
    const colours = new Set<number>();
    for (let i = 0; i < decoded.data.length; i += 4) colours.add(decoded.data.readUInt32BE(i));
    expect(colours.size).toBeGreaterThan(500);
  });

  it('renders without style or seed (both optional)', () => {
    const a = renderPng({ prompt: 'x', width: 64, height: 64 });
    expect(a.equals(renderPng({ prompt: 'x', width: 64, height: 64, seed: 0 }))).toBe(true);
    expect(PNG.sync.read(a).width).toBe(64);
  });
});
