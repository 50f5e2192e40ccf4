/**
 * Where rendered PNGs live and how they are handed out: the s3 settings only with s3, one way to
 * the credentials, and the resolved {@link S3Store}.
 */
import type { SettingName, SettingValues } from './settings';
import { S3_ONLY_SETTINGS } from './settings';
import { show } from './problems';
import type { S3Store } from './types';

/** The image store: the s3 settings only with s3; one way to the credentials. */
export function imageStoreProblems(
  v: SettingValues,
  raw: Partial<Record<SettingName, string>>,
  given: (name: SettingName) => boolean,
): string[] {
  const problems: string[] = [];
  if (v.imageStore === 'redis') {
    for (const name of S3_ONLY_SETTINGS.filter((n) => given(n) && raw[n] !== '')) {
      problems.push(`${show(name, raw[name])} contradicts ${show('imageStore', raw.imageStore)}; allowed: ${name} only with imageStore = "s3"`);
    }
    if (v.imageDelivery === 'redirect') problems.push(`${show('imageDelivery', raw.imageDelivery)} contradicts ${show('imageStore', raw.imageStore)}; allowed: redirect (a presigned URL of the object) only with imageStore = "s3"`);
  } else if (v.imageS3RoleArn !== '' && v.imageS3CredentialsSecret !== '') {
    problems.push(`${show('imageS3CredentialsSecret', raw.imageS3CredentialsSecret)} contradicts ${show('imageS3RoleArn', raw.imageS3RoleArn)}: keys in the environment win over the role, silently; allowed: one of them`);
  }
  if (given('imageUrlTtlSeconds') && v.imageDelivery !== 'redirect') {
    problems.push(`${show('imageUrlTtlSeconds', raw.imageUrlTtlSeconds)} contradicts ${show('imageDelivery', raw.imageDelivery)}; allowed: imageUrlTtlSeconds only with imageDelivery = "redirect"`);
  }
  return problems;
}

/** The resolved object store; the egress port is the endpoint's (443 for https and AWS, 80 for http). */
export function s3Store(v: SettingValues): S3Store {
  const endpoint = v.imageS3Endpoint !== '' ? new URL(v.imageS3Endpoint) : undefined;
  const port = endpoint?.port ? Number(endpoint.port) : endpoint?.protocol === 'http:' ? 80 : 443;
  return {
    kind: 's3',
    bucket: v.imageBucket,
    prefix: v.imageS3Prefix,
    ...(endpoint ? { endpoint: v.imageS3Endpoint } : {}),
    ...(v.imageS3Region !== '' ? { region: v.imageS3Region } : {}),
    forcePathStyle: v.imageS3ForcePathStyle,
    ...(v.imageS3CredentialsSecret !== '' ? { credentialsSecret: v.imageS3CredentialsSecret } : {}),
    serviceAccountAnnotations: {
      ...(v.imageS3RoleArn !== '' ? { 'eks.amazonaws.com/role-arn': v.imageS3RoleArn } : {}),
      ...(v.imageGcpServiceAccount !== '' ? { 'iam.gke.io/gcp-service-account': v.imageGcpServiceAccount } : {}),
    },
    egress: { cidrs: v.imageS3Cidrs.split(','), port },
  };
}
