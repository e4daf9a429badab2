// Serving certificate rotation: the cert and key files are re-read on change and swapped into the running server.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import type { Logger } from 'pino';
import type { Metrics } from '../audit/metrics.js';
import { fingerprint, type ReloadResult, readFileOrError } from './poll.js';

export interface KeyPair {
  readonly cert: Buffer;
  readonly key: Buffer;
}

export interface CertificateInfo {
  readonly serial: string;
  readonly fingerprint256: string;
  readonly notAfter: Date;
}

export type KeyPairCheck = { ok: true; certificate: CertificateInfo } | { ok: false; error: string };

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * Whether the files hold a certificate and the key that goes with it. The server would otherwise find out at the
 * next handshake, and every new connection would fail. `createSecureContext` alone accepts empty files (a Secret
 * being created), hence the explicit parse and pairing check; it still runs, for whatever else OpenSSL refuses.
 * Error texts are OpenSSL's and Node's: they name the problem, never the key.
 */
export function checkKeyPair(pair: KeyPair): KeyPairCheck {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(pair.cert);
  } catch (error) {
    return { ok: false, error: `certificate: ${messageOf(error)}` };
  }
  try {
    if (!certificate.checkPrivateKey(createPrivateKey(pair.key)))
      return { ok: false, error: 'the key does not belong to the certificate' };
    createSecureContext({ cert: pair.cert, key: pair.key });
  } catch (error) {
    return { ok: false, error: `key: ${messageOf(error)}` };
  }
  return {
    ok: true,
    certificate: {
      serial: certificate.serialNumber,
      fingerprint256: certificate.fingerprint256,
      notAfter: new Date(certificate.validTo),
    },
  };
}

export async function readKeyPair(
  certFile: string,
  keyFile: string,
): Promise<{ ok: true; pair: KeyPair } | { ok: false; error: string }> {
  const [cert, key] = await Promise.all([readFileOrError(certFile), readFileOrError(keyFile)]);
  if (!cert.ok) return { ok: false, error: `cannot read ${certFile}: ${cert.error}` };
  if (!key.ok) return { ok: false, error: `cannot read ${keyFile}: ${key.error}` };
  return { ok: true, pair: { cert: cert.bytes, key: key.bytes } };
}

const pairFingerprint = (pair: KeyPair) => `${fingerprint(pair.cert)}/${fingerprint(pair.key)}`;

export interface TlsReloaderOptions {
  readonly certFile: string;
  readonly keyFile: string;
  /** The pair the server started with. */
  readonly initial: KeyPair;
  /**
   * Installs a checked pair. On a running server this is `server.setSecureContext`: new handshakes get the new pair;
   * connections already open, with requests in flight or kept alive, are not touched.
   */
  readonly apply: (pair: KeyPair) => void;
  readonly log: Logger;
  readonly metrics?: Metrics;
}

/**
 * Keeps the served pair in step with the files. A refused pair is reported once, not on every check: the files are
 * compared with what was last tried, so nothing happens until they change again. A cert written before its key
 * (a copy by hand, not kubelet's atomic swap) is refused once, then taken when the key follows.
 */
export class TlsReloader {
  #tried: string;

  constructor(private readonly options: TlsReloaderOptions) {
    this.#tried = pairFingerprint(options.initial);
    const initial = checkKeyPair(options.initial);
    options.metrics?.recordFilesValid('tls', true);
    if (initial.ok) options.metrics?.recordServingCertificate(initial.certificate.notAfter);
  }

  async check(): Promise<ReloadResult> {
    const { certFile, keyFile, log, metrics } = this.options;
    const read = await readKeyPair(certFile, keyFile);
    const tried = read.ok ? pairFingerprint(read.pair) : `unreadable ${read.error}`;
    if (tried === this.#tried) return 'unchanged';
    this.#tried = tried;
    if (!read.ok) return this.#refuse(read.error);
    const checked = checkKeyPair(read.pair);
    if (!checked.ok) return this.#refuse(checked.error);
    try {
      this.options.apply(read.pair);
    } catch (error) {
      return this.#refuse(messageOf(error));
    }
    const { certificate } = checked;
    log.info(
      { cert: certFile, serial: certificate.serial, notAfter: certificate.notAfter.toISOString() },
      'serving certificate reloaded',
    );
    metrics?.recordReload('tls', true);
    metrics?.recordFilesValid('tls', true);
    metrics?.recordServingCertificate(certificate.notAfter);
    return 'applied';
  }

  #refuse(error: string): ReloadResult {
    const { certFile, keyFile, log, metrics } = this.options;
    log.error(
      { cert: certFile, key: keyFile, error },
      'serving certificate not reloaded; the last good pair stays',
    );
    metrics?.recordReload('tls', false);
    metrics?.recordFilesValid('tls', false);
    return 'rejected';
  }
}
