// Certificate sets on disk for `regroute certs` (plus its kustomize caBundle patch) and `serve`'s dev certs.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createCA, createServingCert, serviceDnsNames } from './generate.js';

export interface CertSetOptions {
  readonly service: string;
  readonly namespace: string;
  /** More DNS names for the serving certificate, e.g. a host name used in development. */
  readonly extraDnsNames?: readonly string[];
}

export interface CertSetPaths {
  readonly caCert: string;
  readonly caKey: string;
  readonly tlsCert: string;
  readonly tlsKey: string;
}

export const certSetPaths = (dir: string): CertSetPaths => ({
  caCert: join(dir, 'ca.crt'),
  caKey: join(dir, 'ca.key'),
  tlsCert: join(dir, 'tls.crt'),
  tlsKey: join(dir, 'tls.key'),
});

/** What a written set hands back: the CA certificate, which is what clients of the webhook must trust. */
export interface WrittenCertSet {
  readonly caCertPem: string;
}

/** A CA and a serving certificate for the Service (and localhost, so a developer can call it directly). */
export async function writeCertSet(paths: CertSetPaths, options: CertSetOptions): Promise<WrittenCertSet> {
  const ca = createCA(`${options.service}.${options.namespace} webhook CA`);
  const serving = createServingCert(ca, {
    dnsNames: [
      ...serviceDnsNames(options.service, options.namespace),
      'localhost',
      ...(options.extraDnsNames ?? []),
    ],
    ipAddresses: ['127.0.0.1', '::1'],
  });
  await mkdir(dirname(paths.tlsCert), { recursive: true });
  await mkdir(dirname(paths.caCert), { recursive: true });
  // Keys are readable by their owner only.
  await writeFile(paths.caKey, ca.keyPem, { mode: 0o600 });
  await writeFile(paths.caCert, ca.certPem);
  await writeFile(paths.tlsKey, serving.keyPem, { mode: 0o600 });
  await writeFile(paths.tlsCert, serving.certPem);
  return { caCertPem: ca.certPem };
}

/** The file `regroute certs --kustomize` writes beside the certificates; deploy/overlays/self-signed patches with it. */
export const CA_BUNDLE_PATCH_FILE = 'webhook-ca-patch.yaml';

/**
 * A kustomize JSON 6902 patch that sets the caBundle of a MutatingWebhookConfiguration's first webhook to the CA:
 * kustomize cannot base64 a file into a field, so the patch carries the value itself.
 */
export function caBundlePatch(caCertPem: string): string {
  return [
    '# Written by `regroute certs --kustomize`: the CA the apiserver trusts when it calls the webhook.',
    '- op: add',
    '  path: /webhooks/0/clientConfig/caBundle',
    `  value: ${Buffer.from(caCertPem).toString('base64')}`,
    '',
  ].join('\n');
}

/** Makes dev certs beside the configured serving cert when it is missing; returns whether it made them. */
export async function ensureDevCerts(tlsCert: string, tlsKey: string): Promise<boolean> {
  if (existsSync(tlsCert) && existsSync(tlsKey)) return false;
  const dir = dirname(tlsCert);
  await writeCertSet(
    { caCert: join(dir, 'ca.crt'), caKey: join(dir, 'ca.key'), tlsCert, tlsKey },
    { service: 'regroute', namespace: 'regroute-system' },
  );
  return true;
}
