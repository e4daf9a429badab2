// Certificate authority and serving certificates for the webhook (dev and deploy) and for test registries.
import { randomBytes } from 'node:crypto';
import forge from 'node-forge';

export interface KeyPair {
  certPem: string;
  keyPem: string;
}

export interface ServingCertOptions {
  /** Subject alternative names of type DNS; the first one is also the common name. */
  dnsNames: string[];
  ipAddresses?: string[];
  validityDays?: number;
}

const DAY_MS = 24 * 60 * 60 * 1000;

// forge uses Node's native RSA key generation when it is available, so this takes milliseconds, not seconds.
function generateKeys(): forge.pki.rsa.KeyPair {
  return forge.pki.rsa.generateKeyPair({ bits: 2048, e: 0x10001 });
}

function newCertificate(publicKey: forge.pki.PublicKey, validityDays: number): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  // A positive serial: the high bit of the first byte is cleared so DER does not read it as negative.
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  cert.serialNumber = serial.toString('hex');
  // Backdated by an hour so that clock skew between machines does not make a fresh cert "not yet valid".
  cert.validity.notBefore = new Date(Date.now() - 60 * 60 * 1000);
  cert.validity.notAfter = new Date(Date.now() + validityDays * DAY_MS);
  return cert;
}

function toPair(cert: forge.pki.Certificate, keys: forge.pki.rsa.KeyPair): KeyPair {
  return { certPem: forge.pki.certificateToPem(cert), keyPem: forge.pki.privateKeyToPem(keys.privateKey) };
}

export function createCA(commonName: string, validityDays = 3650): KeyPair {
  const keys = generateKeys();
  const cert = newCertificate(keys.publicKey, validityDays);
  const subject = [{ name: 'commonName', value: commonName }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return toPair(cert, keys);
}

export function createServingCert(ca: KeyPair, options: ServingCertOptions): KeyPair {
  const [commonName] = options.dnsNames;
  if (commonName === undefined) throw new Error('a serving certificate needs at least one DNS name');
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const caKey = forge.pki.privateKeyFromPem(ca.keyPem);
  const keys = generateKeys();
  const cert = newCertificate(keys.publicKey, options.validityDays ?? 365);
  cert.setSubject([{ name: 'commonName', value: commonName }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [
        ...options.dnsNames.map((value) => ({ type: 2, value })),
        ...(options.ipAddresses ?? []).map((ip) => ({ type: 7, ip })),
      ],
    },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(caKey as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
  return toPair(cert, keys);
}

/** DNS names a Service is reached by from the apiserver, most specific last. */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return [
    service,
    `${service}.${namespace}`,
    `${service}.${namespace}.svc`,
    `${service}.${namespace}.svc.cluster.local`,
  ];
}
