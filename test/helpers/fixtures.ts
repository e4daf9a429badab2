// Loading the copied public fixtures (test/fixtures) by name.
import { readdirSync, readFileSync } from 'node:fs';

const fixturesDir = new URL('../fixtures/', import.meta.url);

export function fixture<T = unknown>(path: string): T {
  return JSON.parse(readFileSync(new URL(path, fixturesDir), 'utf8')) as T;
}

export function fixtureNames(folder: string): string[] {
  return readdirSync(new URL(`${folder}/`, fixturesDir))
    .filter((name) => name.endsWith('.json'))
    .sort();
}

/** Every AdmissionReview request fixture, parsed fresh for each call so tests never share mutable state. */
export function admissionReviews(): { name: string; review: Record<string, unknown> }[] {
  return fixtureNames('admission').map((name) => ({ name, review: fixture(`admission/${name}`) }));
}
