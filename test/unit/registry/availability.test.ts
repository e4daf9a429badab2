// Specification of the mapping from registry answers and request failures to the closed Availability set.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { errors } from 'undici';
import { AVAILABILITIES, availabilityOf, parseRetryAfter } from '../../../src/registry/availability.js';

const coded = (code: string, message = code): Error => Object.assign(new Error(message), { code });

describe('availabilityOf', () => {
  it('maps HTTP statuses', () => {
    const table: [number, string][] = [
      [200, 'available'],
      [204, 'available'],
      [404, 'not-found'],
      [401, 'auth'],
      [403, 'auth'],
      [429, 'rate-limited'],
      [408, 'timeout'],
      [500, 'server-error'],
      [502, 'server-error'],
      [503, 'server-error'],
      [504, 'server-error'],
      [400, 'server-error'],
      [405, 'server-error'],
      [302, 'server-error'],
    ];
    for (const [status, expected] of table) assert.equal(availabilityOf(status), expected, String(status));
  });

  it('maps connection failures to unreachable', () => {
    for (const code of [
      'ECONNREFUSED',
      'ECONNRESET',
      'ENOTFOUND',
      'EAI_AGAIN',
      'EHOSTUNREACH',
      'UND_ERR_SOCKET',
    ]) {
      assert.equal(availabilityOf(coded(code)), 'unreachable', code);
    }
    assert.equal(availabilityOf(new errors.SocketError('other side closed')), 'unreachable');
  });

  it('maps aborts and undici timeouts to timeout', () => {
    assert.equal(availabilityOf(new DOMException('The operation was aborted', 'AbortError')), 'timeout');
    assert.equal(availabilityOf(new DOMException('signal timed out', 'TimeoutError')), 'timeout');
    assert.equal(availabilityOf(new errors.ConnectTimeoutError()), 'timeout');
    assert.equal(availabilityOf(new errors.HeadersTimeoutError()), 'timeout');
    assert.equal(availabilityOf(new errors.BodyTimeoutError()), 'timeout');
    assert.equal(availabilityOf(new errors.RequestAbortedError()), 'timeout');
    assert.equal(availabilityOf(coded('ETIMEDOUT')), 'timeout');
  });

  it('maps certificate and handshake failures to tls', () => {
    for (const code of [
      'ERR_TLS_CERT_ALTNAME_INVALID',
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      'SELF_SIGNED_CERT_IN_CHAIN',
      'DEPTH_ZERO_SELF_SIGNED_CERT',
      'CERT_HAS_EXPIRED',
      'ERR_SSL_WRONG_VERSION_NUMBER',
      'EPROTO',
    ]) {
      assert.equal(availabilityOf(coded(code)), 'tls', code);
    }
  });

  it('looks through causes and aggregated errors', () => {
    assert.equal(
      availabilityOf(new TypeError('fetch failed', { cause: coded('ECONNREFUSED') })),
      'unreachable',
    );
    assert.equal(availabilityOf(new AggregateError([coded('CERT_HAS_EXPIRED')])), 'tls');
  });

  it('calls anything unknown unreachable and only ever answers within the closed set', () => {
    for (const value of [new Error('boom'), 'text', undefined, null, 42.5, 999]) {
      assert.ok(AVAILABILITIES.includes(availabilityOf(value)));
    }
    assert.equal(availabilityOf(new Error('boom')), 'unreachable');
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2024-05-01T12:00:00Z');

  it('reads delay-seconds', () => {
    assert.equal(parseRetryAfter('120', now), 120_000);
    assert.equal(parseRetryAfter(' 0 ', now), 0);
  });

  it('reads an HTTP-date relative to the injected clock', () => {
    assert.equal(parseRetryAfter('Wed, 01 May 2024 12:00:30 GMT', now), 30_000);
    assert.equal(parseRetryAfter('Wednesday, 01-May-24 12:01:00 GMT', now), 60_000);
  });

  it('clamps a date in the past to zero', () => {
    assert.equal(parseRetryAfter('Wed, 01 May 2024 11:00:00 GMT', now), 0);
  });

  it('ignores what is neither', () => {
    assert.equal(parseRetryAfter(undefined, now), undefined);
    assert.equal(parseRetryAfter('soon', now), undefined);
    assert.equal(parseRetryAfter('-5', now), undefined);
    assert.equal(parseRetryAfter('1.5', now), undefined);
    assert.equal(parseRetryAfter('2024-05-01T12:00:30Z', now), undefined);
  });
});
