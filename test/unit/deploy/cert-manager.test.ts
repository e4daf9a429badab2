// deploy/overlays/cert-manager: the base plus a CA chain, the serving certificate, and CA injection into the webhook.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Certificate, Issuer } from '@kubernetes-models/cert-manager/cert-manager.io/v1';
import { MutatingWebhookConfiguration } from 'kubernetes-models/admissionregistration.k8s.io/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Service } from 'kubernetes-models/v1';
import { serviceDnsNames } from '../../../src/certs/generate.js';
import { byId, idOf, renderKustomization, renderWithKubectl } from '../../helpers/kustomize.js';
import { all, assertValid, deployDir, one } from './manifests.js';

const overlayDir = join(deployDir, 'overlays', 'cert-manager');
const objects = renderKustomization(overlayDir);
const base = renderKustomization(join(deployDir, 'base'));

const certificates = all(objects, Certificate);
const serving = certificates.find((c) => !c.spec?.isCA);
const issuers = all(objects, Issuer);
const issuerOf = (certificate: Certificate | undefined) => {
  const ref = certificate?.spec?.issuerRef;
  assert.equal(ref?.kind, 'Issuer');
  return issuers.find((i) => i.metadata?.name === ref?.name);
};
const webhookConfiguration = one(objects, MutatingWebhookConfiguration, 'regroute');
const hours = (duration: string | undefined): number => Number(/^(\d+)h$/.exec(duration ?? '')?.[1]);

describe('deploy/overlays/cert-manager', () => {
  it('renders the same objects as kubectl kustomize', () => {
    assert.deepEqual(byId(objects), byId(renderWithKubectl(overlayDir)));
  });

  it('holds only objects that validate against their schema, cert-manager ones included', () => {
    for (const object of objects) assertValid(object);
  });

  it('adds cert-manager objects and the CA injection annotation to the base, and changes nothing else', () => {
    const added = objects.filter((o) => !base.some((b) => idOf(b) === idOf(o)));
    assert.deepEqual([...new Set(added.map((o) => o.apiVersion))], ['cert-manager.io/v1']);
    for (const before of base) {
      const after = structuredClone(objects.find((o) => idOf(o) === idOf(before)));
      const annotations = after?.metadata.annotations;
      delete annotations?.['cert-manager.io/inject-ca-from'];
      if (after && annotations && Object.keys(annotations).length === 0) delete after.metadata.annotations;
      assert.deepEqual(after, before, idOf(before));
    }
  });

  it('issues the serving certificate for every DNS name of the webhook Service', () => {
    const service = one(objects, Service, 'regroute');
    const target = webhookConfiguration.webhooks?.[0]?.clientConfig.service;
    assert.equal(target?.name, service.metadata?.name);
    assert.deepEqual(
      serving?.spec?.dnsNames,
      serviceDnsNames(service.metadata?.name ?? '', service.metadata?.namespace ?? ''),
    );
    assert.ok(serving?.spec?.usages?.includes('server auth'));
  });

  it('writes the serving certificate into the Secret the Deployment mounts', () => {
    const deployment = one(objects, Deployment, 'regroute');
    const mounted = deployment.spec?.template.spec?.volumes?.map((v) => v.secret?.secretName).filter(Boolean);
    assert.deepEqual(mounted, [serving?.spec?.secretName]);
  });

  it('signs the serving certificate with a CA issuer whose CA certificate cert-manager self-signs', () => {
    const caIssuer = issuerOf(serving);
    assert.ok(caIssuer?.spec?.ca, 'the serving certificate comes from a CA issuer');
    const ca = certificates.find((c) => c.spec?.secretName === caIssuer.spec?.ca?.secretName);
    assert.equal(ca?.spec?.isCA, true);
    assert.deepEqual(issuerOf(ca)?.spec?.selfSigned, {});
    for (const object of [...certificates, ...issuers])
      assert.equal(object.metadata?.namespace, 'regroute-system');
  });

  it('renews the serving certificate well before it expires, under a CA that outlives many renewals', () => {
    const ca = certificates.find((c) => c.spec?.isCA);
    assert.ok(hours(serving?.spec?.renewBefore) < hours(serving?.spec?.duration));
    assert.ok(hours(ca?.spec?.duration) >= 10 * hours(serving?.spec?.duration));
  });

  it('asks cainjector to put the CA of the serving certificate into the webhook', () => {
    assert.equal(
      webhookConfiguration.metadata?.annotations?.['cert-manager.io/inject-ca-from'],
      `${serving?.metadata?.namespace}/${serving?.metadata?.name}`,
    );
  });
});
