// `regroute certs`: a CA and a serving certificate for the webhook Service, for development and for deploy.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CA_BUNDLE_PATCH_FILE, caBundlePatch, certSetPaths, writeCertSet } from '../certs/files.js';
import { EXIT, type Io } from './io.js';

export async function certsCommand(args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      out: { type: 'string', default: 'certs' },
      service: { type: 'string', default: 'regroute' },
      namespace: { type: 'string', default: 'regroute-system' },
      dns: { type: 'string', multiple: true, default: [] },
      kustomize: { type: 'boolean', default: false },
      force: { type: 'boolean', default: false },
    },
  });
  const paths = certSetPaths(values.out);
  // A CA already there may be trusted by a cluster (its caBundle): replacing it silently would break admission.
  if (!values.force && existsSync(paths.caCert)) {
    io.err(
      `${paths.caCert} exists: a new CA would not match the caBundle it was installed with; use --force to replace it`,
    );
    return EXIT.usage;
  }
  const { caCertPem } = await writeCertSet(paths, {
    service: values.service,
    namespace: values.namespace,
    extraDnsNames: values.dns,
  });
  io.out(`wrote ${paths.caCert}, ${paths.caKey}, ${paths.tlsCert}, ${paths.tlsKey}`);
  if (values.kustomize) {
    const patch = join(values.out, CA_BUNDLE_PATCH_FILE);
    await writeFile(patch, caBundlePatch(caCertPem));
    io.out(`wrote ${patch}: the caBundle patch for the MutatingWebhookConfiguration`);
  } else {
    io.out(`caBundle for the MutatingWebhookConfiguration: base64 -w0 < ${paths.caCert}`);
  }
  return EXIT.ok;
}
