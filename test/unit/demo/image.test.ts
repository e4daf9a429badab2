import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { makeImage, OCI_MANIFEST, sha256, tarOneFile } from '../../../src/demo/image.js';

describe('the demo image', () => {
  it('is named by the sha256 of its manifest bytes, and lists its config and layer by digest and size', () => {
    const image = makeImage('hi');
    assert.equal(image.digest, sha256(image.manifest));
    const manifest = JSON.parse(image.manifest.toString('utf8'));
    assert.equal(manifest.mediaType, OCI_MANIFEST);
    assert.equal(manifest.schemaVersion, 2);
    const [config, layer] = image.blobs;
    assert.ok(config && layer);
    assert.deepEqual(manifest.config, {
      mediaType: config.mediaType,
      digest: config.digest,
      size: config.bytes.length,
    });
    assert.deepEqual(manifest.layers, [
      { mediaType: layer.mediaType, digest: layer.digest, size: layer.bytes.length },
    ]);
    for (const blob of image.blobs) assert.equal(blob.digest, sha256(blob.bytes));
  });

  it('has the same digest for the same text, run after run, and another for other text', () => {
    assert.equal(makeImage('hi').digest, makeImage('hi').digest);
    assert.notEqual(makeImage('hi').digest, makeImage('ho').digest);
  });

  it('has one gzipped layer holding hello.txt, whose uncompressed digest is the config diff_id', () => {
    const [config, layer] = makeImage('hi').blobs;
    assert.ok(config && layer);
    const tar = gunzipSync(layer.bytes);
    assert.equal(tar.subarray(0, 9).toString('ascii'), 'hello.txt');
    assert.equal(tar.subarray(512, 515).toString('utf8'), 'hi\n');
    assert.deepEqual(JSON.parse(config.bytes.toString('utf8')).rootfs, {
      type: 'layers',
      diff_ids: [sha256(tar)],
    });
  });
});

describe('tarOneFile', () => {
  it('writes a ustar header whose checksum covers the header with the checksum field as spaces', () => {
    const tar = tarOneFile('a.txt', Buffer.from('abc'));
    assert.equal(tar.length, 512 + 512 + 1024);
    const header = Buffer.from(tar.subarray(0, 512));
    const recorded = Number.parseInt(header.subarray(148, 154).toString('ascii'), 8);
    header.fill(' ', 148, 156);
    let sum = 0;
    for (const byte of header) sum += byte;
    assert.equal(recorded, sum);
    assert.equal(header.subarray(257, 262).toString('ascii'), 'ustar');
    assert.equal(Number.parseInt(header.subarray(124, 135).toString('ascii'), 8), 3);
  });
});
