// Preloaded (node --import) into a webhook process started from the deploy manifests: every host name resolves to
// 127.0.0.1, where the cluster's registries are not. Their probes fail at once, and no lookup or connection leaves
// the machine.
import dns from 'node:dns';

const lookup = dns.lookup;
dns.lookup = (_hostname, options, callback) => lookup.call(dns, '127.0.0.1', options, callback);
