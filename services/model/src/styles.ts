/** A colour of a palette, 0-255 per channel. */
export type Rgb = readonly [number, number, number];

/** The style catalog that GET /v1/styles serves; each style is a colour palette. */
export interface Style {
  readonly id: string;
  readonly name: string;
  readonly description: string;
  readonly palette: readonly Rgb[];
}

export const STYLES: readonly Style[] = [
  { id: 'default', name: 'Default', description: 'Balanced colours derived from the prompt.', palette: [] },
  { id: 'sunset', name: 'Sunset', description: 'Warm purples, reds and golds.', palette: [[32, 12, 60], [140, 30, 80], [230, 90, 50], [250, 200, 90]] },
  { id: 'ocean', name: 'Ocean', description: 'Deep blues to foam white.', palette: [[5, 20, 50], [10, 70, 130], [40, 160, 190], [220, 245, 250]] },
  { id: 'forest', name: 'Forest', description: 'Moss, pine and bark.', palette: [[15, 30, 15], [40, 80, 35], [100, 140, 60], [200, 210, 150]] },
  { id: 'mono', name: 'Monochrome', description: 'Black to white.', palette: [[0, 0, 0], [255, 255, 255]] },
  { id: 'neon', name: 'Neon', description: 'Electric magenta, cyan and lime on black.', palette: [[5, 0, 15], [255, 0, 170], [0, 230, 255], [180, 255, 0]] },
];

const BY_ID = new Map(STYLES.map((s) => [s.id, s]));

/**
 * The palette of a style. Unknown styles (any `^[a-z0-9-]{1,64}$` is accepted, like a model
 * that takes free-form style hints) and "default" get a palette drawn from the PRNG.
 */
export function paletteOf(style: string, rand: () => number): readonly Rgb[] {
  const known = BY_ID.get(style)?.palette;
  if (known && known.length >= 2) return known;
  return Array.from({ length: 4 }, (_, i) => {
    const l = 30 + (i * 200) / 3;
    return [clamp(l + (rand() - 0.5) * 160), clamp(l + (rand() - 0.5) * 160), clamp(l + (rand() - 0.5) * 160)] as const;
  });
}

function clamp(v: number): number {
  return Math.max(0, Math.min(255, Math.round(v)));
}

/** The catalog as served: no palettes (an implementation detail of this stand-in). */
export function catalog(): { styles: { id: string; name: string; description: string }[] } {
  return { styles: STYLES.map(({ id, name, description }) => ({ id, name, description })) };
}
