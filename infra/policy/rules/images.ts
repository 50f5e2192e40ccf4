/**
 * Policy rule on container images: each one pinned to a tag other than latest, or to a digest.
 */
import { Rule, containersOf, podTemplates, v } from '../manifests';
import type { Violation } from '../types';

const pinnedImages: Rule = {
  id: 'pinned-image',
  description: 'every image is pinned to a tag other than latest, or to a digest',
  check: (manifests) => {
    const out: Violation[] = [];
    for (const { owner, spec } of podTemplates(manifests)) {
      for (const c of containersOf(spec)) {
        const image = String(c.image ?? '');
        const digest = /@sha256:[a-f0-9]{64}$/.test(image);
        const tag = /:([A-Za-z0-9_][A-Za-z0-9_.-]*)$/.exec(image.replace(/@.*$/, ''))?.[1];
        const lastSegment = image.replace(/@.*$/, '').split('/').pop() ?? '';
        const hasTag = tag !== undefined && lastSegment.includes(':');
        if (!digest && (!hasTag || tag === 'latest')) out.push(v('pinned-image', owner, `container "${c.name}": image "${image}" is not pinned (tag missing or "latest")`));
      }
    }
    return out;
  },
};

export const IMAGE_RULES: readonly Rule[] = [pinnedImages];
