// How many generated cases a property or fuzz test runs: a fixed seed and a default sized for CI, both
// overridable from the environment for a long run.
import type { TestContext } from 'node:test';
import fc from 'fast-check';

/** The seed every property and fuzz test starts from, so that a failure in CI reproduces locally. */
export const SEED = integerFromEnv('REGROUTE_PROPERTY_SEED', 20_261_101);

/** Runs of a property: `REGROUTE_PROPERTY_RUNS` when set, the test's own default otherwise. */
export const propertyRuns = (defaultRuns: number): number =>
  integerFromEnv('REGROUTE_PROPERTY_RUNS', defaultRuns);

/** Cases of a fuzz family: `REGROUTE_FUZZ_CASES` when set, the test's own default otherwise. */
export const fuzzCases = (defaultCases: number): number =>
  integerFromEnv('REGROUTE_FUZZ_CASES', defaultCases);

function integerFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0)
    throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  return value;
}

/**
 * Runs a property from the shared seed and reports how many cases ran in the test's diagnostics. A predicate may
 * return a label (a decision's reason, say): the tally shows the cases did not all take one easy path.
 */
export async function checkProperty<T>(
  t: TestContext,
  arbitrary: fc.Arbitrary<T>,
  predicate: (value: T) => unknown,
  defaultRuns: number,
): Promise<void> {
  const numRuns = propertyRuns(defaultRuns);
  const tally = new Map<string, number>();
  let cases = 0;
  try {
    await fc.assert(
      fc.asyncProperty(arbitrary, async (value) => {
        cases++;
        const label = await predicate(value);
        if (typeof label === 'string') tally.set(label, (tally.get(label) ?? 0) + 1);
      }),
      { seed: SEED, numRuns },
    );
  } catch (error) {
    throw explained(error);
  }
  const labels = [...tally].sort((a, b) => b[1] - a[1]).map(([label, n]) => `${label} ${n}`);
  t.diagnostic(`${cases} cases, seed ${SEED}${labels.length > 0 ? ` — ${labels.join(', ')}` : ''}`);
}

/** The test reporter prints a message only: a property failure gets the failed assertion added to it. */
export function explained(error: unknown): unknown {
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : '';
  if (!cause || !(error instanceof Error) || error.message.includes(cause)) return error;
  return new Error(`${error.message}\nFailed because: ${cause}`, { cause: error });
}
