// The harness certificate authority: one CA per harness, its PEM on disk for clients and Go registries.
import { X509Certificate } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createCA, createServingCert, type KeyPair } from '../../src/certs/generate.js';

/** Names every harness server answers to; registries listen on 127.0.0.1 only. */
export const LOOPBACK_DNS_NAMES = ['localhost'];
export const LOOPBACK_IPS = ['127.0.0.1', '::1'];

/** A name no harness server is reached by: the bad-tls fault serves a certificate for it. */
export const WRONG_DNS_NAME = 'wrong-name.regroute.invalid';

export interface HarnessCA {
  certPem: string;
  keyPem: string;
  /** PEM file of the CA certificate: `ca` for node clients, SSL_CERT_FILE for Go registries. */
  caFile: string;
  /** A directory holding only `ca.crt`: the form containers/image (skopeo, CRI-O, podman) takes via --cert-dir. */
  certDir: string;
  /** One serving certificate for 127.0.0.1, ::1 and localhost, shared by every harness server. */
  serving: KeyPair & { certFile: string; keyFile: string };
  /** Issued on first use: RSA key generation is the slowest part of starting a harness. */
  wrongName(): KeyPair;
  /** Certificate whose key signs registry tokens; the registries' rootcertbundle is `caFile`. */
  tokenSigner(): KeyPair & { x5c: string[] };
}

export async function createHarnessCA(dir: string): Promise<HarnessCA> {
  const ca = createCA('regroute test harness CA');
  const serving = createServingCert(ca, { dnsNames: LOOPBACK_DNS_NAMES, ipAddresses: LOOPBACK_IPS });
  const caFile = join(dir, 'ca.pem');
  const certFile = join(dir, 'serving.pem');
  const keyFile = join(dir, 'serving-key.pem');
  const certDir = join(dir, 'cert-dir');
  await mkdir(certDir);
  await Promise.all([
    writeFile(caFile, ca.certPem),
    writeFile(join(certDir, 'ca.crt'), ca.certPem),
    writeFile(certFile, serving.certPem),
    writeFile(keyFile, serving.keyPem, { mode: 0o600 }),
  ]);
  let wrongName: KeyPair | undefined;
  let tokenSigner: (KeyPair & { x5c: string[] }) | undefined;
  return {
    ...ca,
    caFile,
    certDir,
    serving: { ...serving, certFile, keyFile },
    wrongName() {
      wrongName ??= createServingCert(ca, { dnsNames: [WRONG_DNS_NAME] });
      return wrongName;
    },
    tokenSigner() {
      if (tokenSigner === undefined) {
        const pair = createServingCert(ca, { dnsNames: ['regroute-harness-token-signer'] });
        // x5c carries standard base64 DER (RFC 7515 §4.1.6), not base64url.
        const der = new X509Certificate(pair.certPem).raw.toString('base64');
        tokenSigner = { ...pair, x5c: [der] };
      }
      return tokenSigner;
    },
  };
}
