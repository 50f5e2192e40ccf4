/**
 * Policy rules on where pods may send traffic outside the cluster: never to the cloud metadata
 * address, and the object store reachable by the pods that use it.
 */
import ipaddr from 'ipaddr.js';
import { Json, Rule, podTemplates, ref, sameNamespace, selects } from '../manifests';
import type { Violation } from '../types';

/** The instance metadata endpoints (IPv4 of AWS, GCP and Azure; AWS's IPv6): credentials live there. */
const METADATA = ['169.254.169.254', 'fd00:ec2::254'].map((a) => ipaddr.parse(a));

/** True when `cidr` contains `address` (same family only). */
function contains(cidr: string, address: ipaddr.IPv4 | ipaddr.IPv6): boolean {
  try {
    const [range, bits] = ipaddr.parseCIDR(cidr);
    return range.kind() === address.kind() && address.match(range, bits);
  } catch {
    return false;
  }
}

const metadataEgress: Rule = {
  id: 'no-metadata-egress',
  description: 'no NetworkPolicy lets pods reach the cloud metadata address (169.254.169.254, fd00:ec2::254) through a wide ipBlock',
  check: (manifests) => {
    const out: Violation[] = [];
    for (const p of manifests.filter((m) => m.kind === 'NetworkPolicy')) {
      for (const rule of p.spec?.egress ?? []) {
        // No `to`: every destination, the metadata address included.
        if (!rule.to || rule.to.length === 0) out.push({ rule: 'no-metadata-egress', object: ref(p), message: 'an egress rule without `to` allows every destination, the metadata address included' });
        for (const to of rule.to ?? []) {
          const block = to.ipBlock;
          if (!block?.cidr) continue;
          for (const address of METADATA) {
            if (contains(block.cidr, address) && !(block.except ?? []).some((e: string) => contains(e, address))) {
              out.push({ rule: 'no-metadata-egress', object: ref(p), message: `egress to ${block.cidr} includes the metadata address ${address.toString()} (add it to except)` });
            }
          }
        }
      }
    }
    return out;
  },
};

const envValue = (c: Json, name: string): string | undefined => (c.env ?? []).find((e: Json) => e.name === name)?.value;

/** The port a store client connects to: the endpoint's, else 443 (AWS). */
function storePort(endpoint: string | undefined): number {
  if (!endpoint) return 443;
  const url = new URL(endpoint);
  return url.port ? Number(url.port) : url.protocol === 'http:' ? 80 : 443;
}

const imageStoreEgress: Rule = {
  id: 'image-store-egress',
  description: 'a pod that calls the object store (IMAGE_STORE=s3, unless it only names the objects: SERVE_MEDIA=false) has a bucket and an egress policy to the store port (its keys, like every secret, only from Secrets: no-literal-secrets)',
  check: (manifests) => {
    const out: Violation[] = [];
    const policies = manifests.filter((m) => m.kind === 'NetworkPolicy');
    for (const { owner: w, labels, spec } of podTemplates(manifests)) {
      for (const c of spec.containers ?? []) {
        if (envValue(c, 'IMAGE_STORE') !== 's3') continue;
        if (!envValue(c, 'IMAGE_S3_BUCKET')) out.push({ rule: 'image-store-egress', object: ref(w), message: `container "${c.name}": IMAGE_STORE=s3 without IMAGE_S3_BUCKET` });
        if (envValue(c, 'SERVE_MEDIA') === 'false') continue; // the gateway: names objects, never calls the store
        const port = storePort(envValue(c, 'IMAGE_S3_ENDPOINT'));
        const allowed = policies.some(
          (p) =>
            sameNamespace(p, w) &&
            selects(p.spec?.podSelector, labels) &&
            (p.spec?.egress ?? []).some((r: Json) => (r.to ?? []).some((t: Json) => t.ipBlock) && (r.ports ?? []).some((x: Json) => x.port === port)),
        );
        if (!allowed) out.push({ rule: 'image-store-egress', object: ref(w), message: `container "${c.name}" uses the object store, but no NetworkPolicy lets its pods reach an ipBlock on port ${port}` });
      }
    }
    return out;
  },
};

export const EGRESS_RULES: readonly Rule[] = [metadataEgress, imageStoreEgress];
