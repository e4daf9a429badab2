// Specification of how API failures are described: status and reason, never a message or body.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { failureOf, isTransient } from '../../../src/kube/api-failure.js';

describe('API failures', () => {
  it('keeps the Status reason and drops the message, which may quote the object sent', () => {
    const error = Object.assign(new Error('HTTP-Code: 422 …'), {
      code: 422,
      body: JSON.stringify({ kind: 'Status', reason: 'Invalid', message: 'data[x]: Invalid value: "…"' }),
    });
    assert.deepEqual(failureOf(error), { status: 422, reason: 'Invalid' });
  });

  it('names a refused watch by its HTTP status', () => {
    const error = Object.assign(new Error('Internal Server Error'), { statusCode: 500 });
    assert.deepEqual(failureOf(error), { status: 500, reason: 'HTTP 500' });
  });

  it('names a failure without an answer by its network error code, or else by its name', () => {
    const refused = Object.assign(new Error('request to http://127.0.0.1:1/ failed'), {
      code: 'ECONNREFUSED',
    });
    const aborted = Object.assign(new Error('The operation was aborted.'), { name: 'AbortError' });
    assert.deepEqual(failureOf(refused), { reason: 'ECONNREFUSED' });
    assert.deepEqual(failureOf(aborted), { reason: 'AbortError' });
  });

  it('counts no answer, 429 and 5xx as transient, other answers as final', () => {
    const transient = [undefined, 429, 500, 503].map((status) => isTransient({ status, reason: '' }));
    const final = [400, 403, 404, 409, 410, 422].map((status) => isTransient({ status, reason: '' }));
    assert.deepEqual(transient, [true, true, true, true]);
    assert.deepEqual(final, [false, false, false, false, false, false]);
  });
});
