// `regroute certs`: a CA and a serving certificate for the webhook Service, for development and for deploy.
import { parseArgs } from 'node:util';
import { certSetPaths, writeCertSet } from '../certs/files.js';
import { EXIT, type Io } from './io.js';

export const certsUsage = `regroute certs [--out DIR] [--service NAME] [--namespace NS] [--dns NAME]...
  Writes ca.crt, ca.key, tls.crt and tls.key to DIR (default: certs). The serving certificate covers the
  Service's DNS names (NAME, NAME.NS, NAME.NS.svc, NAME.NS.svc.cluster.local), localhost and loopback.`;

export async function certsCommand(args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      out: { type: 'string', default: 'certs' },
      service: { type: 'string', default: 'regroute' },
      namespace: { type: 'string', default: 'regroute-system' },
      dns: { type: 'string', multiple: true, default: [] },
    },
  });
  const paths = certSetPaths(values.out);
  await writeCertSet(paths, {
    service: values.service,
    namespace: values.namespace,
    extraDnsNames: values.dns,
  });
  io.out(`wrote ${paths.caCert}, ${paths.caKey}, ${paths.tlsCert}, ${paths.tlsKey}`);
  io.out(`caBundle for the MutatingWebhookConfiguration: base64 -w0 < ${paths.caCert}`);
  return EXIT.ok;
}
