// The config's server block: its defaults, the ones the Deployment passes through the environment, and what it
// refuses.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { ConfigError, parseConfig, parseConfigText } from '../../../src/config/load.js';

const DEPLOY_ENV = {
  REGROUTE_PORT: '10250',
  REGROUTE_HEALTH_PORT: '8081',
  REGROUTE_METRICS_PORT: '9090',
  REGROUTE_TLS_CERT: '/etc/regroute/tls/tls.crt',
  REGROUTE_TLS_KEY: '/etc/regroute/tls/tls.key',
};

function setEnv(values: Record<string, string>): void {
  for (const [name, value] of Object.entries(values)) process.env[name] = value;
}

describe('server settings', () => {
  afterEach(() => {
    for (const name of Object.keys(DEPLOY_ENV)) delete process.env[name];
  });

  it('defaults to HTTPS on 8443, metrics on 9090, no health port, dev certs, and a 5 s shutdown delay', () => {
    assert.deepEqual(parseConfig({}, 'test').server, {
      port: 8443,
      metricsPort: 9090,
      healthPort: 0,
      host: '0.0.0.0',
      tlsCert: 'certs/tls.crt',
      tlsKey: 'certs/tls.key',
      shutdownDelaySeconds: 5,
    });
  });

  it("takes the ports and certificate paths from the Deployment's environment when the file names none", () => {
    setEnv(DEPLOY_ENV);
    const routesOnly = 'routes:\n  - { prefix: docker.io, registries: [docker.io, mirror.local:5000/hub] }\n';
    assert.deepEqual(parseConfigText(routesOnly, 'config.yaml').server, {
      port: 10250,
      metricsPort: 9090,
      healthPort: 8081,
      host: '0.0.0.0',
      tlsCert: '/etc/regroute/tls/tls.crt',
      tlsKey: '/etc/regroute/tls/tls.key',
      shutdownDelaySeconds: 5,
    });
  });

  it('keeps certificate paths the file names over the environment, and ports it repeats', () => {
    setEnv(DEPLOY_ENV);
    const server = parseConfig({ server: { port: 10250, tlsCert: '/tls/crt' } }, 'test').server;
    assert.equal(server.port, 10250);
    assert.equal(server.tlsCert, '/tls/crt');
    assert.equal(server.tlsKey, '/etc/regroute/tls/tls.key');
  });

  it('refuses a port in the file that contradicts the one the container is reached on', () => {
    setEnv(DEPLOY_ENV);
    for (const [key, env] of [
      ['port', 'REGROUTE_PORT'],
      ['healthPort', 'REGROUTE_HEALTH_PORT'],
      ['metricsPort', 'REGROUTE_METRICS_PORT'],
    ] as const) {
      assert.throws(
        () => parseConfig({ server: { [key]: 8443 } }, 'config.yaml'),
        (error: unknown) =>
          error instanceof ConfigError &&
          error.message.includes(`8443 differs from ${env}=`) &&
          error.message.includes(`server.${key}`),
      );
    }
  });

  it('refuses a port from the environment that is not a number, naming the variable', () => {
    setEnv({ REGROUTE_HEALTH_PORT: 'http' });
    assert.throws(
      () => parseConfig({}, 'config.yaml'),
      (error: unknown) =>
        error instanceof ConfigError &&
        error.message.includes('server.healthPort') &&
        error.message.includes('"http" (from REGROUTE_HEALTH_PORT when the file sets none)'),
    );
  });

  it('refuses a health port that is the HTTPS or the metrics port', () => {
    for (const other of ['port', 'metricsPort']) {
      assert.throws(
        () => parseConfig({ server: { [other]: 8081, healthPort: 8081 } }, 'config.yaml'),
        new RegExp(`must differ from server.${other}[^]*server.healthPort`),
      );
    }
  });

  it('refuses a shutdown delay below 0 or above a minute', () => {
    for (const shutdownDelaySeconds of [-1, 61]) {
      assert.throws(
        () => parseConfig({ server: { shutdownDelaySeconds } }, 'config.yaml'),
        /shutdownDelaySeconds/,
      );
    }
  });
});
