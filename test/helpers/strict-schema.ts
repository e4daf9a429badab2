// Kubernetes schema validation that also refuses fields the schema does not have: kubernetes-models alone lets a
// misspelt field (`imagePullSecret`, `annotaions`) through, as the apiserver would before pruning it silently.
import assert from 'node:assert/strict';
import { Pod } from 'kubernetes-models/v1';

export interface Validatable {
  validate(): void;
}

/**
 * Field paths the schema does not know. The kubernetes-models validators accept unknown fields, as the apiserver
 * does when it prunes them, so a misspelt field would pass and silently vanish. Every field the validator reads
 * is recorded; an object's key it never read is not in the schema. Below an unknown field nothing more is listed.
 */
export function unknownFields(model: Validatable): string[] {
  const read = new Map<object, Set<PropertyKey>>();
  const recording = (value: unknown): unknown => {
    if (typeof value !== 'object' || value === null) return value;
    const keys = read.get(value) ?? new Set<PropertyKey>();
    read.set(value, keys);
    return new Proxy(value, {
      get(target, key, receiver) {
        keys.add(key);
        return recording(Reflect.get(target, key, receiver));
      },
    });
  };
  Object.getPrototypeOf(model).validate.call(recording(model));
  const unknown: string[] = [];
  const walk = (value: unknown, path: string): void => {
    if (typeof value !== 'object' || value === null) return;
    for (const [key, child] of Object.entries(value)) {
      if (!Array.isArray(value) && !read.get(value)?.has(key)) unknown.push(`${path}/${key}`);
      else walk(child, `${path}/${key}`);
    }
  };
  walk(model, '');
  return unknown;
}

/** Throws with the schema's message, or with the fields outside the Pod schema, unless `pod` is a valid Pod. */
export function assertStrictlyValidPod(pod: unknown): void {
  const model = new Pod(pod as ConstructorParameters<typeof Pod>[0]);
  model.validate();
  assert.deepEqual(unknownFields(model), [], 'fields outside the Pod schema');
}
