// The PromQL evaluator the alert tests use, against results worked out by Prometheus' rules.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Metrics } from '../../../src/audit/metrics.js';
import { evaluate, firing, metricNames, parseExposition, type Sample, type Scrape } from './promql.js';

const scrape = (time: number, text: string): Scrape => parseExposition(text, time);
const values = (samples: Sample[]) =>
  samples.map((s) => [JSON.stringify(s.labels), s.value] as const).sort(([a], [b]) => a.localeCompare(b));
const vector = (expr: string, scrapes: Scrape[]) => {
  const value = evaluate(expr, scrapes);
  assert.equal(value.kind, 'vector');
  return values([...value.samples]);
};

const t0 = scrape(
  1000,
  `# HELP up_total x
# TYPE up_total counter
requests_total{code="200",path="/a"} 10
requests_total{code="500",path="/a"} 1
requests_total{code="200",path="/b"} 4
up{registry="a.example"} 1
up{registry="b.example"} 0
`,
);
const t1 = scrape(
  1060,
  `requests_total{code="200",path="/a"} 70
requests_total{code="500",path="/a"} 4
requests_total{code="200",path="/b"} 1
requests_total{code="404",path="/b"} 2
up{registry="a.example"} 1
up{registry="b.example"} 0
`,
);

describe('parseExposition', () => {
  it('reads names, escaped label values, +Inf and what prom-client serves', async () => {
    const parsed = parseExposition('m{a="x\\"y\\\\z",le="+Inf"} +Inf\nn 3.5\n', 1);
    assert.deepEqual(parsed.samples, [
      { labels: { __name__: 'm', a: 'x"y\\z', le: '+Inf' }, value: Infinity },
      { labels: { __name__: 'n' }, value: 3.5 },
    ]);
    const text = await new Metrics().registry.metrics();
    const samples = parseExposition(text, 1).samples;
    assert.ok(samples.some((s) => s.labels.__name__ === 'regroute_image_decisions_total'));
    assert.ok(samples.some((s) => s.labels.__name__ === 'process_resident_memory_bytes'));
  });

  it('refuses a line that is not a sample', () => {
    assert.throws(() => parseExposition('not a sample line at all\n', 1), /not an exposition line/);
  });
});

describe('evaluate', () => {
  it('selects by name and by =, !=, =~ and !~ label matchers, the regex anchored', () => {
    assert.deepEqual(vector('up{registry="b.example"}', [t0]), [
      ['{"__name__":"up","registry":"b.example"}', 0],
    ]);
    assert.equal(vector('requests_total{code!="200"}', [t0]).length, 1);
    assert.equal(vector('requests_total{code=~"2.."}', [t0]).length, 2);
    assert.equal(vector('requests_total{code=~"0"}', [t0]).length, 0, 'anchored: 200 does not match 0');
    assert.equal(vector('requests_total{code!~"5.*",path="/a"}', [t0]).length, 1);
  });

  it('takes rate() and increase() over the scrapes in range, following a counter reset', () => {
    assert.deepEqual(vector('increase(requests_total[5m])', [t0, t1]), [
      ['{"code":"200","path":"/a"}', 60],
      ['{"code":"200","path":"/b"}', 1], // reset from 4 to 1: 1 counted
      ['{"code":"500","path":"/a"}', 3],
    ]);
    assert.deepEqual(vector('rate(requests_total{path="/a"}[5m])', [t0, t1]), [
      ['{"code":"200","path":"/a"}', 1],
      ['{"code":"500","path":"/a"}', 0.05],
    ]);
  });

  it('gives no rate for a series with one sample in range, as Prometheus does', () => {
    assert.deepEqual(
      vector('increase(requests_total{code="404"}[5m])', [t0, t1]),
      [],
      'appeared in the last scrape only',
    );
    assert.deepEqual(
      vector('increase(requests_total[30s])', [t0, t1]),
      [],
      'only the last scrape is in range',
    );
  });

  it('aggregates with sum, max, min and count, by or without labels', () => {
    assert.deepEqual(vector('sum by (path) (requests_total)', [t1]), [
      ['{"path":"/a"}', 74],
      ['{"path":"/b"}', 3],
    ]);
    assert.deepEqual(
      vector('sum without (code) (requests_total)', [t1]),
      vector('sum by (path) (requests_total)', [t1]),
    );
    assert.deepEqual(vector('max(up)', [t1]), [['{}', 1]]);
    assert.deepEqual(vector('min by (registry) (up)', [t1]), [
      ['{"registry":"a.example"}', 1],
      ['{"registry":"b.example"}', 0],
    ]);
    assert.deepEqual(vector('count(up == 0)', [t1]), [['{}', 1]]);
    assert.deepEqual(vector('sum(nothing_here)', [t1]), [], 'the sum of nothing is no sample');
  });

  it('filters with comparisons, keeping the left value, and computes with scalars and matching vectors', () => {
    assert.deepEqual(vector('max by (registry) (up) == 0', [t1]), [['{"registry":"b.example"}', 0]]);
    assert.deepEqual(vector('requests_total > 3', [t0]), [
      ['{"__name__":"requests_total","code":"200","path":"/a"}', 10],
      ['{"__name__":"requests_total","code":"200","path":"/b"}', 4],
    ]);
    assert.deepEqual(vector('up - time() < 7 * 86400', [t1]).length, 2);
    assert.deepEqual(vector('up{registry="a.example"} - time()', [t1]), [
      ['{"registry":"a.example"}', 1 - 1060],
    ]);
    assert.deepEqual(
      vector('sum(rate(requests_total{code=~"5.."}[5m])) / sum(rate(requests_total[5m])) > 0.04', [t0, t1]),
      [['{}', 3 / 64]],
    );
    assert.deepEqual(vector('count(up == 2) or vector(0)', [t1]), [['{}', 0]]);
  });

  it('computes histogram_quantile as Prometheus does: linear within the bucket, the last finite bound past it', () => {
    const histogram = scrape(
      1,
      [
        'd_bucket{le="0.1"} 50',
        'd_bucket{le="0.5"} 90',
        'd_bucket{le="1"} 100',
        'd_bucket{le="+Inf"} 104',
        'd_sum 30',
        'd_count 104',
      ].join('\n'),
    );
    const quantile = (q: number) => vector(`histogram_quantile(${q}, sum by (le) (d_bucket))`, [histogram]);
    assert.deepEqual(quantile(0.25), [['{}', 0.1 * (26 / 50)]]);
    assert.deepEqual(quantile(0.5), [['{}', 0.1 + 0.4 * ((52 - 50) / 40)]]);
    assert.deepEqual(quantile(0.99), [['{}', 1]], 'in the +Inf bucket: the highest finite bound');
  });

  it('refuses what it does not implement instead of guessing', () => {
    for (const [expr, message] of [
      ['requests_total offset 5m', /unsupported PromQL node OffsetExpr/],
      ['up + on(registry) up', /unsupported binary expression modifiers/],
      ['up > bool 0', /unsupported binary expression modifiers/],
      ['topk(1, up)', /unsupported aggregation/],
      ['absent(up)', /unsupported function absent/],
      ['1 > 0', /needs bool/],
      ['sum(up', /not PromQL/],
    ] as const) {
      assert.throws(() => evaluate(expr, [t1]), message, expr);
    }
  });

  it('names the metrics an expression selects', () => {
    assert.deepEqual(
      metricNames('sum(rate(a_total{x="1"}[5m])) / sum(rate(b_total[5m])) or vector(0) and c'),
      ['a_total', 'b_total', 'c'],
    );
  });

  it('answers an alert expression with the samples that would fire', () => {
    assert.deepEqual(
      firing('max by (registry) (up) == 0', [t0, t1]).map((s) => s.labels),
      [{ registry: 'b.example' }],
    );
    assert.throws(() => firing('1 + 1', [t1]), /instant vector/);
  });
});
