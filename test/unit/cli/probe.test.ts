// Which images `regroute probe` checks the content of: healthCheck images, a mirror's as the image it is a copy of.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { probedImages } from '../../../src/cli/probe.js';
import { Config } from '../../../src/config/schema.js';

describe('probedImages', () => {
  it("takes a mirror's healthCheck back to the image of the route it mirrors, Docker Hub's library included", () => {
    const config = Config.parse({
      registries: {
        'mirror.local:5000': { healthCheck: { repository: 'hub/library/nginx', reference: '1.27' } },
        'backup.local': {
          healthCheck: { repository: 'library/nginx', reference: `sha256:${'a'.repeat(64)}` },
        },
        // Not a copy of anything: a runtime pulls docker.io/nginx as library/nginx, at the mirror too.
        'spare.local': { healthCheck: { repository: 'nginx', reference: 'latest' } },
      },
      routes: [
        {
          prefix: 'docker.io',
          registries: ['docker.io', 'mirror.local:5000/hub', 'backup.local', 'spare.local'],
        },
      ],
    });
    assert.deepEqual(probedImages(config), [
      'docker.io/library/nginx:1.27',
      `docker.io/library/nginx@sha256:${'a'.repeat(64)}`,
    ]);
  });

  it("checks a source's own healthCheck image, and passes over wildcard routes and images a longer prefix takes", () => {
    const config = Config.parse({
      registries: {
        'registry.local:5000': { healthCheck: { repository: 'team/app', reference: 'v1' } },
        'mirror.local:5000': { healthCheck: { repository: 'ecr/app', reference: 'v1' } },
        'other.local': { healthCheck: { repository: 'team/special/x', reference: 'v1' } },
      },
      routes: [
        { prefix: 'registry.local:5000/team', registries: ['registry.local:5000/team', 'other.local/team'] },
        { prefix: 'registry.local:5000/team/special', registries: ['registry.local:5000/team/special'] },
        { prefix: '*.amazonaws.com', registries: ['mirror.local:5000/ecr'] },
      ],
    });
    assert.deepEqual(probedImages(config, ['quay.io/x/y:1']), [
      'registry.local:5000/team/app:v1',
      'quay.io/x/y:1',
    ]);
  });
});
