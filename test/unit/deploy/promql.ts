// A small PromQL evaluator for the alert and dashboard expressions of deploy/chart, over scrapes of a running webhook.
// No PromQL engine is published for Node; Prometheus' own grammar is (@prometheus-io/lezer-promql), so expressions
// are parsed by it and evaluated here for exactly the shapes the chart uses: selectors with label matchers, rate()
// and increase() over the scrapes in their range, sum/max/min/count by or without labels, histogram_quantile(),
// time(), vector(), arithmetic and comparison with scalars and between vectors (one-to-one, on all labels), and
// `or`. Anything else is refused with its node name, never guessed at.
//
// Semantics kept from Prometheus: a range needs two samples of a series for rate() and increase() (a series that
// first appears in the last scrape has no rate yet); counter resets are followed; a comparison filters (no `bool`).
// Left out: extrapolation to the edges of the range (increase() is the increase seen between the first and last
// sample; comparisons with 0 and ratios of rates over the same samples are unaffected), staleness, offsets, `for:`.

import type { SyntaxNode } from '@lezer/common';
import { parser } from '@prometheus-io/lezer-promql';

export type Labels = Readonly<Record<string, string>>;

export interface Sample {
  readonly labels: Labels;
  readonly value: number;
}

/** One scrape of /metrics: every sample, and when it was taken (seconds). */
export interface Scrape {
  readonly time: number;
  readonly samples: readonly Sample[];
}

export type Value =
  | { readonly kind: 'scalar'; readonly value: number }
  | { readonly kind: 'vector'; readonly samples: readonly Sample[] }
  | { readonly kind: 'matrix'; readonly series: readonly { labels: Labels; points: [number, number][] }[] };

const NAME = '__name__';

/** Parses the Prometheus text exposition format (what prom-client serves) into samples. */
export function parseExposition(text: string, time: number): Scrape {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
    if (!match) throw new Error(`not an exposition line: ${line}`);
    const [, name = '', body = '', raw = ''] = match;
    const labels: Record<string, string> = { [NAME]: name };
    const label = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?/gy;
    for (let m = label.exec(body); m !== null; m = label.exec(body)) {
      labels[m[1] ?? ''] = (m[2] ?? '').replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      if (label.lastIndex === body.length) break;
    }
    if (body !== '' && label.lastIndex !== body.length) throw new Error(`bad labels: ${line}`);
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
    samples.push({ labels, value });
  }
  return { time, samples };
}

/** The names of the metrics an expression selects, each once. */
export function metricNames(expr: string): string[] {
  const names = new Set<string>();
  const tree = parse(expr);
  tree.cursor().iterate((node) => {
    if (node.name === 'VectorSelector') {
      const identifier = node.node.getChild('Identifier');
      if (identifier) names.add(expr.slice(identifier.from, identifier.to));
    }
  });
  return [...names];
}

function parse(expr: string) {
  const tree = parser.parse(expr);
  tree.cursor().iterate((node) => {
    if (node.type.isError) throw new Error(`not PromQL at ${node.from}: ${expr}`);
  });
  return tree;
}

const signature = (labels: Labels, drop: readonly string[] = [NAME]): string =>
  JSON.stringify(
    Object.entries(labels)
      .filter(([key]) => !drop.includes(key))
      .sort(([a], [b]) => a.localeCompare(b)),
  );

const withoutName = (labels: Labels): Labels =>
  Object.fromEntries(Object.entries(labels).filter(([key]) => key !== NAME));

function durationSeconds(text: string): number {
  const units: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 };
  let total = 0;
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)/gy;
  for (let m = part.exec(text); m !== null; m = part.exec(text))
    total += Number(m[1]) * (units[m[2] ?? ''] ?? 0);
  if (part.lastIndex !== 0 && part.lastIndex !== text.length) throw new Error(`bad duration ${text}`);
  if (total === 0 && !/^0/.test(text)) throw new Error(`bad duration ${text}`);
  return total;
}

const unquote = (literal: string): string =>
  JSON.parse(literal.startsWith("'") ? `"${literal.slice(1, -1)}"` : literal);

/** Evaluates `expr` at the time of the last scrape, over every scrape given (oldest first). */
export function evaluate(expr: string, scrapes: readonly Scrape[]): Value {
  const last = scrapes.at(-1);
  if (!last) throw new Error('no scrape to evaluate against');
  const at = last.time;
  const text = (node: SyntaxNode) => expr.slice(node.from, node.to);
  const children = (node: SyntaxNode): SyntaxNode[] => {
    const list: SyntaxNode[] = [];
    for (let child = node.firstChild; child; child = child.nextSibling) list.push(child);
    return list;
  };

  const matchersOf = (selector: SyntaxNode): ((labels: Labels) => boolean)[] => {
    const identifier = selector.getChild('Identifier');
    const tests: ((labels: Labels) => boolean)[] = [];
    if (identifier) tests.push((labels) => labels[NAME] === text(identifier));
    for (const matcher of selector.getChild('LabelMatchers')?.getChildren('UnquotedLabelMatcher') ?? []) {
      const name = text(matcher.getChild('LabelName') as SyntaxNode);
      const op = matcher.getChild('MatchOp')?.firstChild?.name;
      const value = unquote(text(matcher.getChild('StringLiteral') as SyntaxNode));
      const regex = new RegExp(`^(?:${value})$`);
      const actual = (labels: Labels) => labels[name] ?? '';
      if (op === 'EqlSingle') tests.push((labels) => actual(labels) === value);
      else if (op === 'Neq') tests.push((labels) => actual(labels) !== value);
      else if (op === 'EqlRegex') tests.push((labels) => regex.test(actual(labels)));
      else if (op === 'NeqRegex') tests.push((labels) => !regex.test(actual(labels)));
      else throw new Error(`unsupported match operator in ${text(matcher)}`);
    }
    if (selector.getChild('LabelMatchers')?.getChild('QuotedLabelMatcher'))
      throw new Error(`unsupported quoted label matcher in ${text(selector)}`);
    return tests;
  };

  const select = (selector: SyntaxNode, scrape: Scrape): Sample[] => {
    const tests = matchersOf(selector);
    return scrape.samples.filter((s) => tests.every((test) => test(s.labels)));
  };

  const vectorOf = (value: Value, where: string): readonly Sample[] => {
    if (value.kind !== 'vector')
      throw new Error(`${where}: an instant vector is needed, not a ${value.kind}`);
    return value.samples;
  };
  const scalarOf = (value: Value, where: string): number => {
    if (value.kind !== 'scalar') throw new Error(`${where}: a scalar is needed, not a ${value.kind}`);
    return value.value;
  };

  /** The increase of each series over its samples in the range, counter resets followed; undefined under 2 samples. */
  const increases = (value: Value, where: string) => {
    if (value.kind !== 'matrix') throw new Error(`${where}: a range vector is needed`);
    return value.series.flatMap(({ labels, points }) => {
      if (points.length < 2) return [];
      let increase = 0;
      for (let i = 1; i < points.length; i++) {
        const [, before = 0] = points[i - 1] ?? [];
        const [, now = 0] = points[i] ?? [];
        increase += now >= before ? now - before : now;
      }
      const span = (points.at(-1)?.[0] ?? 0) - (points[0]?.[0] ?? 0);
      return [{ labels: withoutName(labels), increase, span }];
    });
  };

  const arithmetic: Record<string, (a: number, b: number) => number> = {
    Add: (a, b) => a + b,
    Sub: (a, b) => a - b,
    Mul: (a, b) => a * b,
    Div: (a, b) => a / b,
  };
  const comparison: Record<string, (a: number, b: number) => boolean> = {
    Eql: (a, b) => a === b,
    Neq: (a, b) => a !== b,
    Gtr: (a, b) => a > b,
    Lss: (a, b) => a < b,
    Gte: (a, b) => a >= b,
    Lte: (a, b) => a <= b,
  };

  const binary = (node: SyntaxNode): Value => {
    const parts = children(node);
    const [leftNode, opNode, rightNode] = [parts[0], parts[1], parts.at(-1)];
    if (parts.length !== 3 || !leftNode || !opNode || !rightNode)
      throw new Error(`unsupported binary expression modifiers in ${text(node)}`);
    const op = opNode.name;
    const left = evaluateNode(leftNode);
    const right = evaluateNode(rightNode);
    if (op === 'Or') {
      const kept = vectorOf(left, text(node));
      const seen = new Set(kept.map((s) => signature(s.labels, [])));
      return {
        kind: 'vector',
        samples: [...kept, ...vectorOf(right, text(node)).filter((s) => !seen.has(signature(s.labels, [])))],
      };
    }
    const apply = arithmetic[op];
    const compare = comparison[op];
    if (!apply && !compare) throw new Error(`unsupported operator ${text(opNode)}`);
    if (left.kind === 'scalar' && right.kind === 'scalar') {
      if (!apply) throw new Error(`a comparison of scalars needs bool: ${text(node)}`);
      return { kind: 'scalar', value: apply(left.value, right.value) };
    }
    // Each sample with its partner: the scalar, or the sample of the other vector with the same labels.
    const pairs: { labels: Labels; a: number; b: number; keep: number }[] = [];
    if (left.kind === 'vector' && right.kind === 'scalar') {
      for (const s of left.samples)
        pairs.push({ labels: s.labels, a: s.value, b: right.value, keep: s.value });
    } else if (left.kind === 'scalar' && right.kind === 'vector') {
      for (const s of right.samples)
        pairs.push({ labels: s.labels, a: left.value, b: s.value, keep: s.value });
    } else {
      const others = new Map(vectorOf(right, text(node)).map((s) => [signature(s.labels), s]));
      for (const s of vectorOf(left, text(node))) {
        const other = others.get(signature(s.labels));
        if (other) pairs.push({ labels: s.labels, a: s.value, b: other.value, keep: s.value });
      }
    }
    if (apply) {
      return {
        kind: 'vector',
        samples: pairs.map((p) => ({ labels: withoutName(p.labels), value: apply(p.a, p.b) })),
      };
    }
    return {
      kind: 'vector',
      samples: pairs.filter((p) => compare?.(p.a, p.b)).map((p) => ({ labels: p.labels, value: p.keep })),
    };
  };

  const aggregate = (node: SyntaxNode): Value => {
    const op = node.getChild('AggregateOp')?.firstChild?.name;
    const modifier = node.getChild('AggregateModifier');
    const grouping = (modifier?.getChild('GroupingLabels')?.getChildren('LabelName') ?? []).map(text);
    const without = modifier?.getChild('Without') !== null && modifier !== null;
    const body = children(node.getChild('FunctionCallBody') as SyntaxNode).filter(
      (c) => !['(', ')'].includes(c.name),
    );
    if (body.length !== 1 || !body[0]) throw new Error(`unsupported aggregation parameters in ${text(node)}`);
    const samples = vectorOf(evaluateNode(body[0]), text(node));
    const groups = new Map<string, { labels: Labels; values: number[] }>();
    for (const s of samples) {
      const labels = Object.fromEntries(
        Object.entries(s.labels).filter(
          ([key]) => key !== NAME && (without ? !grouping.includes(key) : grouping.includes(key)),
        ),
      );
      const key = signature(labels);
      const group = groups.get(key) ?? { labels, values: [] };
      group.values.push(s.value);
      groups.set(key, group);
    }
    const reduce: Record<string, (values: number[]) => number> = {
      Sum: (v) => v.reduce((a, b) => a + b, 0),
      Max: (v) => Math.max(...v),
      Min: (v) => Math.min(...v),
      Count: (v) => v.length,
    };
    const reducer = reduce[op ?? ''];
    if (!reducer) throw new Error(`unsupported aggregation ${text(node)}`);
    return {
      kind: 'vector',
      samples: [...groups.values()].map((g) => ({ labels: g.labels, value: reducer(g.values) })),
    };
  };

  /** Prometheus' histogram_quantile over classic buckets: linear within the bucket that holds the rank. */
  const histogramQuantile = (q: number, samples: readonly Sample[]): Sample[] => {
    const histograms = new Map<string, { labels: Labels; buckets: [number, number][] }>();
    for (const s of samples) {
      const le = s.labels.le;
      if (le === undefined) continue;
      const labels = Object.fromEntries(Object.entries(s.labels).filter(([k]) => k !== 'le' && k !== NAME));
      const key = signature(labels);
      const histogram = histograms.get(key) ?? { labels, buckets: [] };
      histogram.buckets.push([le === '+Inf' ? Infinity : Number(le), s.value]);
      histograms.set(key, histogram);
    }
    return [...histograms.values()].flatMap(({ labels, buckets }) => {
      buckets.sort(([a], [b]) => a - b);
      const total = buckets.at(-1);
      if (!total || total[0] !== Infinity || buckets.length < 2) return [];
      if (total[1] === 0) return [{ labels, value: Number.NaN }];
      const rank = q * total[1];
      const index = buckets.findIndex(([, count]) => count >= rank);
      const [upper = 0, count = 0] = buckets[index] ?? [];
      if (upper === Infinity) return [{ labels, value: buckets.at(-2)?.[0] ?? 0 }];
      const [lower, below] = index === 0 ? [0, 0] : (buckets[index - 1] ?? [0, 0]);
      if (index === 0 && upper <= 0) return [{ labels, value: upper }];
      return [{ labels, value: lower + (upper - lower) * ((rank - below) / (count - below)) }];
    });
  };

  const call = (node: SyntaxNode): Value => {
    const name = text(node.getChild('FunctionIdentifier') as SyntaxNode);
    const args = children(node.getChild('FunctionCallBody') as SyntaxNode)
      .filter((c) => !['(', ')', ','].includes(c.name))
      .map((c) => evaluateNode(c));
    const where = text(node);
    switch (name) {
      case 'time':
        return { kind: 'scalar', value: at };
      case 'vector':
        return { kind: 'vector', samples: [{ labels: {}, value: scalarOf(args[0] as Value, where) }] };
      case 'increase':
        return {
          kind: 'vector',
          samples: increases(args[0] as Value, where).map((s) => ({ labels: s.labels, value: s.increase })),
        };
      case 'rate':
        return {
          kind: 'vector',
          samples: increases(args[0] as Value, where).map((s) => ({
            labels: s.labels,
            value: s.increase / s.span,
          })),
        };
      case 'histogram_quantile':
        return {
          kind: 'vector',
          samples: histogramQuantile(scalarOf(args[0] as Value, where), vectorOf(args[1] as Value, where)),
        };
      default:
        throw new Error(`unsupported function ${name}`);
    }
  };

  function evaluateNode(node: SyntaxNode): Value {
    switch (node.name) {
      case 'PromQL':
      case 'ParenExpr': {
        const inner = children(node).filter((c) => !['(', ')'].includes(c.name));
        if (inner.length !== 1 || !inner[0]) throw new Error(`unsupported ${text(node)}`);
        return evaluateNode(inner[0]);
      }
      case 'NumberDurationLiteral':
        return { kind: 'scalar', value: Number(text(node)) };
      case 'VectorSelector':
        return { kind: 'vector', samples: select(node, last as Scrape) };
      case 'MatrixSelector': {
        const selector = node.getChild('VectorSelector') as SyntaxNode;
        const range = durationSeconds(text(node.getChild('DurationExpr') as SyntaxNode));
        const series = new Map<string, { labels: Labels; points: [number, number][] }>();
        for (const scrape of scrapes.filter((s) => s.time > at - range && s.time <= at)) {
          for (const s of select(selector, scrape)) {
            const key = signature(s.labels, []);
            const entry = series.get(key) ?? { labels: s.labels, points: [] };
            entry.points.push([scrape.time, s.value]);
            series.set(key, entry);
          }
        }
        return { kind: 'matrix', series: [...series.values()] };
      }
      case 'FunctionCall':
        return call(node);
      case 'AggregateExpr':
        return aggregate(node);
      case 'BinaryExpr':
        return binary(node);
      default:
        throw new Error(`unsupported PromQL node ${node.name}: ${text(node)}`);
    }
  }

  return evaluateNode(parse(expr).topNode);
}

/** The samples an alert expression returns: the alerts that would be pending (fired once `for:` has passed). */
export function firing(expr: string, scrapes: readonly Scrape[]): Sample[] {
  const value = evaluate(expr, scrapes);
  if (value.kind !== 'vector')
    throw new Error(`an alert expression returns an instant vector, not a ${value.kind}`);
  return [...value.samples];
}
