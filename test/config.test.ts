// One validated configuration: every problem named at once, flags over environment, sane defaults.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { ConfigError, load } from '../server/config.ts';

test('defaults: port 1080, ./data, md5 only, the nginx-like pass-through fields', () => {
  const { config } = load({});
  assert.equal(config.port, 1080);
  assert.equal(config.host, '127.0.0.1');
  assert.equal(config.dataDir, path.resolve('data'));
  assert.equal(config.storeDir, path.resolve('data/uploads'));
  assert.equal(config.catalogPath, path.resolve('data/catalog.sqlite'));
  assert.deepEqual(config.digests, []);
  assert.ok(config.passFields.test('description') && !config.passFields.test('filename'));
  assert.ok(config.cleanupStatuses.has(400) && config.cleanupStatuses.has(500) && config.cleanupStatuses.has(599));
  assert.ok(!config.cleanupStatuses.has(502) && !config.cleanupStatuses.has(503) && !config.cleanupStatuses.has(504));
  assert.equal(config.completionUrl, undefined);
  assert.ok(Object.isFrozen(config));
});

test('flags win over the environment; --flag=value and --flag value both work', () => {
  const { config, rest } = load({ PORT: '2000', DATA_DIR: '/tmp/a' }, ['--port=3000', '--data-dir', '/tmp/b', 'extra']);
  assert.equal(config.port, 3000);
  assert.equal(config.dataDir, '/tmp/b');
  assert.deepEqual(rest, ['extra']);
});

test('every bad setting is named at once', () => {
  let error: ConfigError | undefined;
  try {
    load({ PORT: 'abc', DIGESTS: 'md5,sha3', PASS_FIELDS: '([', COMPLETION_URL: 'ftp://x', CLEANUP_STATUSES: '400-999', COMPLETION_SECRET: 'short' }, ['--retry-min']);
  } catch (e) {
    error = e as ConfigError;
  }
  assert.ok(error instanceof ConfigError);
  const text = error.problems.join('\n');
  for (const name of ['PORT', 'DIGESTS', 'PASS_FIELDS', 'COMPLETION_URL', 'CLEANUP_STATUSES', 'COMPLETION_SECRET', '--retry-min']) {
    assert.match(text, new RegExp(name.replace(/[-]/g, '\\-')), `${name} named`);
  }
  assert.equal(error.problems.length, 7);
});

test('ranges and lists parse', () => {
  const { config } = load({ DIGESTS: 'SHA1, crc32,sha1', CLEANUP_STATUSES: '409,500-501' });
  assert.deepEqual(config.digests, ['sha1', 'crc32']);
  assert.ok(config.cleanupStatuses.has(409) && config.cleanupStatuses.has(501) && !config.cleanupStatuses.has(410));
  assert.throws(() => load({ RETRY_MIN_MS: '5000', RETRY_MAX_MS: '10' }), /RETRY_MIN_MS/);
});
