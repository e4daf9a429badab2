// parseReference and its normalized forms against normalize_test.go, TestParseNamed and the kubelet's parser.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  effectiveTag,
  familiarName,
  familiarString,
  formatReference,
  type ParsedReference,
  parseAnyReference,
  parseCanonical,
  parseDockerRef,
  parseReference,
  type Reference,
  withDigest,
  withName,
  withTag,
} from '../../../src/reference/index.js';
import { CODE_OF_GO_ERROR, normalize, outcomeOf, referenceParse, show } from './corpora.js';

// Sources: distribution/reference normalize_test.go and reference_test.go @ 0965666a; kubernetes
// pkg/util/parsers/parsers_test.go @ 008b3652 (test/fixtures/reference/README.md).

function accepted(parsed: ParsedReference): Reference {
  assert.ok(parsed.ok, parsed.ok ? '' : parsed.error.message);
  return parsed.reference;
}

describe('parseReference (normalize_test.go TestValidateReferenceName, TestValidateRemoteName)', () => {
  for (const { input, valid, sourceTest } of normalize.parseNormalizedNamed) {
    const source = sourceTest.replace('normalize_test.go ', '');
    test(`${valid ? 'accepts' : 'refuses'} ${show(input)} (${source})`, () => {
      assert.equal(parseReference(input).ok, valid);
    });
  }
});

describe('normalized and familiar names (normalize_test.go TestParseRepositoryInfo)', () => {
  for (const row of normalize.repositoryInfo) {
    for (const input of new Set(row.inputs)) {
      test(`reads ${show(input)} as ${row.fullName}, familiar ${row.familiarName}`, () => {
        const reference = accepted(parseReference(input));
        assert.deepEqual(
          {
            full: formatReference(reference),
            familiar: familiarName(reference),
            registry: reference.registry,
            repository: reference.repository,
          },
          { full: row.fullName, familiar: row.familiarName, registry: row.domain, repository: row.path },
        );
      });
    }
  }
});

describe('parseAnyReference (normalize_test.go TestParseAnyReference)', () => {
  for (const c of normalize.parseAnyReference) {
    const kind = c.kind === 'digestOnly' ? 'a bare digest' : 'a name';
    test(`reads ${show(c.input)} as ${kind} ${show(c.string)}`, () => {
      const parsed = parseAnyReference(c.input);
      assert.ok(parsed.ok, parsed.ok ? '' : parsed.error.message);
      assert.equal(parsed.kind, c.kind === 'digestOnly' ? 'digest' : 'named');
      assert.equal(parsed.kind === 'digest' ? parsed.digest : formatReference(parsed.reference), c.string);
    });
  }
});

describe('registry and repository (normalize_test.go TestNormalizedSplitHostname)', () => {
  for (const c of normalize.normalizedSplitHostname) {
    test(`finds registry ${c.domain} and repository ${c.path} in ${show(c.input)}`, () => {
      const { registry, repository } = accepted(parseReference(c.input));
      assert.deepEqual({ registry, repository }, { registry: c.domain, repository: c.path });
    });
  }
});

describe('tag and digest together (normalize_test.go TestParseReferenceWithTagAndDigest)', () => {
  for (const c of normalize.tagAndDigest) {
    test(`keeps both tag and digest of ${show(c.input)}`, () => {
      const reference = accepted(parseReference(c.input));
      assert.equal(reference.tag !== null, c.tagged);
      assert.equal(reference.digest !== null, c.digested);
      assert.equal(formatReference(reference), c.string);
      assert.equal(familiarString(reference), c.familiarString);
    });
  }
});

describe('invalid components (normalize_test.go TestInvalidReferenceComponents)', () => {
  for (const c of normalize.invalidComponents) {
    const title = `refuses ${c.operation} of ${show(c.input ?? c.tag ?? c.digest ?? c.pattern ?? '')}`;
    // FamiliarMatch is Go's path.Match over the familiar string; regroute routes by prefix and has no globs.
    if (c.operation === 'FamiliarMatch') continue;
    test(title, () => {
      if (c.operation === 'ParseNormalizedNamed')
        return assert.equal(parseReference(c.input ?? '').ok, false);
      const name = withName(c.name ?? '');
      assert.ok(name.ok);
      const composed =
        c.operation === 'WithTag'
          ? withTag(name.reference, c.tag ?? '')
          : withDigest(name.reference, c.digest ?? '');
      assert.equal(outcomeOf(composed), c.operation === 'WithTag' ? 'tag-invalid' : 'digest-invalid-format');
    });
  }
});

describe('parseDockerRef (normalize_test.go TestParseDockerRef)', () => {
  for (const c of normalize.parseDockerRef) {
    test(`${c.name}: reads ${show(c.input)} as ${show(c.expected)}`, () => {
      assert.equal(formatReference(accepted(parseDockerRef(c.input))), c.expected);
    });
  }
});

describe("the kubelet's image name (parsers_test.go TestParseImageName)", () => {
  for (const c of normalize.kubeletParseImageName) {
    if ('errorContains' in c) {
      test(`refuses ${show(c.input)}, saying ${show(c.errorContains)}`, () => {
        const parsed = parseReference(c.input);
        assert.equal(parsed.ok, false);
        if (!parsed.ok) assert.ok(parsed.error.message.includes(c.errorContains), parsed.error.message);
      });
      continue;
    }
    test(`pulls ${show(c.input)} as ${c.repo}, tag ${show(c.tag)}, digest ${show(c.digest)}`, () => {
      const reference = accepted(parseReference(c.input));
      assert.deepEqual(
        {
          repo: `${reference.registry}/${reference.repository}`,
          tag: effectiveTag(reference) ?? '',
          digest: reference.digest ?? '',
        },
        { repo: c.repo, tag: c.tag, digest: c.digest },
      );
    });
  }
});

describe('parseCanonical (reference_test.go TestParseNamed)', () => {
  for (const c of referenceParse.cases.filter((c) => c.function === 'ParseNamed')) {
    if (!c.valid) {
      test(`refuses ${show(c.input)} with ${c.error}`, () => {
        assert.equal(outcomeOf(parseCanonical(c.input)), c.error && CODE_OF_GO_ERROR[c.error]);
      });
      continue;
    }
    test(`accepts the canonical ${show(c.input)}`, () => {
      const { registry, repository } = accepted(parseCanonical(c.input));
      assert.deepEqual({ registry, repository }, { registry: c.domain, repository: c.path });
    });
  }
});

describe('parseReference beyond the tables', () => {
  test('pulls :latest only when neither tag nor digest is given', () => {
    const tagOf = (image: string) => effectiveTag(accepted(parseReference(image)));
    assert.equal(tagOf('nginx'), 'latest');
    assert.equal(tagOf('nginx:1.27'), '1.27');
    assert.equal(tagOf(`nginx@sha256:${'a'.repeat(64)}`), null);
    assert.equal(tagOf(`nginx:1.27@sha256:${'a'.repeat(64)}`), '1.27');
  });

  test('shortens docker.io references the way people write them', () => {
    const familiar = (image: string) => familiarString(accepted(parseReference(image)));
    assert.equal(familiar('docker.io/library/nginx:1.27'), 'nginx:1.27');
    assert.equal(familiar('index.docker.io/bitnami/redis'), 'bitnami/redis');
    assert.equal(familiar('docker.io/library/a/b'), 'library/a/b');
    assert.equal(familiar(`quay.io/x/y@sha256:${'b'.repeat(64)}`), `quay.io/x/y@sha256:${'b'.repeat(64)}`);
  });

  test('accepts sha512 digests, which OCI registers', () => {
    const reference = accepted(parseReference(`busybox@sha512:${'c'.repeat(128)}`));
    assert.equal(reference.digest, `sha512:${'c'.repeat(128)}`);
  });

  test('keeps as registry a first component with "." that the domain grammar refuses (Go: no domain)', () => {
    // Go accepts 'foo_bar.com/app' with Domain() "" and Path() 'foo_bar.com/app'; containerd then pulls
    // from the host 'foo_bar.com'. Same accepted strings, same String(); only the split differs.
    const reference = accepted(parseReference('foo_bar.com/app:v1'));
    assert.deepEqual(reference, { registry: 'foo_bar.com', repository: 'app', tag: 'v1', digest: null });
    assert.equal(formatReference(reference), 'foo_bar.com/app:v1');
  });

  test('keeps docker.io/ where the familiar form would name another registry, as Go does not', () => {
    for (const image of ['docker.io/localhost/app', 'docker.io/a.b/app:v1']) {
      const reference = accepted(parseReference(image));
      assert.equal(familiarString(reference), image);
      assert.deepEqual(parseReference(familiarString(reference)), { ok: true, reference });
    }
  });

  test('keeps library/ before a 64-hex name, which alone would read as an image ID, as Go does not', () => {
    const hex = 'd'.repeat(64);
    assert.equal(outcomeOf(parseReference(hex)), 'name-is-identifier');
    const reference = accepted(parseReference(`docker.io/library/${hex}`));
    assert.equal(familiarString(reference), `library/${hex}`);
    assert.equal(familiarName(reference), hex);
    assert.equal(familiarString(accepted(parseReference(`${hex}:v1`))), `${hex}:v1`);
  });

  test('reports an upper-case repository with the input quoted as given', () => {
    const parsed = parseReference('ROOT');
    assert.deepEqual(parsed, {
      ok: false,
      error: { code: 'name-contains-uppercase', message: 'repository name must be lowercase: "ROOT"' },
    });
  });

  test('cuts a very long input short in the error message', () => {
    const parsed = parseReference(`${'x'.repeat(10_000)}!`);
    assert.equal(outcomeOf(parsed), 'reference-invalid-format');
    if (!parsed.ok) assert.ok(parsed.error.message.length < 400, parsed.error.message);
    if (!parsed.ok) assert.match(parsed.error.message, /\(10001 characters\)$/);
  });

  test('answers a non-string image, as decoded JSON may hold, with an error value', () => {
    for (const image of [undefined, null, 42, {}, Object.create(null), Symbol('x')]) {
      assert.equal(outcomeOf(parseReference(image as unknown as string)), 'reference-invalid-format');
    }
  });
});
