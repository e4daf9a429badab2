// The fail-open alert deploy/README.md documents, as written there: a valid rule whose expression, evaluated over
// scrapes of the apiserver's metrics, fires on pods admitted without regroute and on nothing else.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { parse as parseYaml } from 'yaml';
import { deployDir } from './manifests.js';
import { firing, metricNames, parseExposition } from './promql.js';

const readme = await readFile(join(deployDir, 'README.md'), 'utf8');
const block = /```yaml\n(# fail-open alert[^\n]*\n[\s\S]*?)```/.exec(readme)?.[1];
const rules = parseYaml(block ?? '') as { alert: string; expr: string; labels: Record<string, string> }[];

/** The apiserver's fail-open counter at a moment, one series per webhook name and admission type. */
const apiserver = (time: number, counts: Record<string, number>) =>
  parseExposition(
    Object.entries(counts)
      .map(
        ([name, count]) =>
          `apiserver_admission_webhook_fail_open_count{name="${name}",type="admit"} ${count}`,
      )
      .join('\n'),
    time,
  );

describe("deploy/README.md's fail-open alert", () => {
  const rule = rules[0];

  it('is one rule that a PrometheusRule accepts', () => {
    assert.ok(block, 'a yaml block starting "# fail-open alert"');
    assert.equal(rules.length, 1);
    const object = new PrometheusRule({
      metadata: { name: 'regroute-fail-open', namespace: 'monitoring' },
      spec: { groups: [{ name: 'regroute-fail-open', rules: rules as never }] },
    });
    object.validate();
    assert.equal(rule?.alert, 'RegrouteWebhookFailOpen');
    assert.ok(rule?.labels.severity);
  });

  it("reads the apiserver's counter for regroute's webhook, by the name in base/webhook.yaml", async () => {
    assert.deepEqual(metricNames(rule?.expr ?? ''), ['apiserver_admission_webhook_fail_open_count']);
    const webhook = await readFile(join(deployDir, 'base', 'webhook.yaml'), 'utf8');
    const name = /name: (\S+\.regroute\.io)/.exec(webhook)?.[1];
    assert.ok(rule?.expr.includes(`name="${name}"`), `${rule?.expr} selects ${name}`);
  });

  it('fires when the apiserver admitted pods without regroute, with how many', () => {
    const fired = firing(rule?.expr ?? '', [
      apiserver(0, { 'pods.regroute.io': 2 }),
      apiserver(60, { 'pods.regroute.io': 5 }),
    ]);
    assert.deepEqual(fired, [{ labels: { name: 'pods.regroute.io' }, value: 3 }]);
  });

  it("fires neither for another webhook's failures nor for a count that did not grow", () => {
    const scrapes = [
      apiserver(0, { 'pods.regroute.io': 4, 'validate.example.com': 1 }),
      apiserver(60, { 'pods.regroute.io': 4, 'validate.example.com': 9 }),
    ];
    assert.deepEqual(firing(rule?.expr ?? '', scrapes), []);
  });
});
