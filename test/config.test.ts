// One validated configuration: every problem named at once, flags over environment, sane defaults.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { ConfigError, load } from '../server/config/config.ts';

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
    load(
      {
        PORT: 'abc',
        DIGESTS: 'md5,sha3',
        PASS_FIELDS: '([',
        COMPLETION_URL: 'ftp://x',
        CLEANUP_STATUSES: '400-999',
        COMPLETION_SECRET: 'short',
      },
      ['--retry-min'],
    );
  } catch (e) {
    error = e as ConfigError;
  }
  assert.ok(error instanceof ConfigError);
  const text = error.problems.join('\n');
  for (const name of [
    'PORT',
    'DIGESTS',
    'PASS_FIELDS',
    'COMPLETION_URL',
    'CLEANUP_STATUSES',
    'COMPLETION_SECRET',
    '--retry-min',
  ]) {
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

test('the protective defaults, and sizes and durations in the forms operators write', () => {
  const { config } = load({});
  assert.equal(config.expireAfterMs, 7 * 86_400_000);
  assert.equal(config.minFreeSpace, 2 ** 30);
  assert.equal(config.networkTimeoutMs, 60_000);
  assert.equal(config.maxConcatParts, 100);
  assert.equal(config.queueMax, 10_000);
  const set = load({ MAX_SIZE: '10GiB', MIN_FREE_SPACE: '4MiB', EXPIRE_AFTER: '12h', NETWORK_TIMEOUT: '500ms' }).config;
  assert.equal(set.maxSize, 10 * 2 ** 30);
  assert.equal(set.minFreeSpace, 4 * 2 ** 20);
  assert.equal(set.expireAfterMs, 12 * 3_600_000);
  assert.equal(set.networkTimeoutMs, 500);
  assert.equal(load({ MAX_SIZE: '1500' }).config.maxSize, 1500, 'a bare number is bytes');
  assert.equal(load({ EXPIRE_AFTER: '0' }).config.expireAfterMs, 0, '0 turns expiry off');
  assert.equal(load({ MIN_FREE_SPACE: '500MB' }).config.minFreeSpace, 500e6, 'MB is decimal, MiB binary');
  const problems = (() => {
    try {
      load({
        MAX_SIZE: '10 parsecs',
        MIN_FREE_SPACE: '99999999999TiB',
        NETWORK_TIMEOUT: '0',
        EXPIRE_AFTER: 'soon',
        MAX_CONCAT_PARTS: '0',
      });
    } catch (e) {
      return (e as ConfigError).problems;
    }
    return [];
  })();
  assert.equal(problems.length, 5, problems.join('\n'));
  for (const name of ['MAX_SIZE', 'MIN_FREE_SPACE', 'NETWORK_TIMEOUT', 'EXPIRE_AFTER', 'MAX_CONCAT_PARTS'])
    assert.ok(
      problems.some((p) => p.startsWith(name)),
      name,
    );
});

test('docs: every setting is in the configuration tables \
(docs/configuration.md), and every variable there is a setting', async () => {
  const { SETTINGS } = await import('../server/config/config.ts');
  const fs = await import('node:fs');
  const readme = fs.readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8');
  const rows = readme.split('\n').filter((line) => /^\| `--/.test(line));
  const documented = new Set(
    rows.flatMap((row) => [...row.split('|')[2]!.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1]!)),
  );
  const flags = new Set(rows.flatMap((row) => [...row.split('|')[1]!.matchAll(/`(--[a-z0-9-]+)`/g)].map((m) => m[1]!)));
  for (const s of SETTINGS) {
    assert.ok(documented.has(s.env), `${s.env} is in the configuration table`);
    assert.ok(flags.has(s.flag), `${s.flag} is in the configuration table`);
  }
  const firstColumns = rows.map((row) => row.split('|')[1]!.trim());
  assert.deepEqual(
    firstColumns.filter((c, i) => firstColumns.indexOf(c) !== i),
    [],
    'each setting has one row',
  );
  const envs = new Set(SETTINGS.map((s) => s.env));
  for (const name of documented)
    assert.ok(envs.has(name), `docs/configuration.md lists ${name}, which is not a setting`);
});

test("docs: the configuration table's default column says \
the default SETTINGS gives (written once, there)", async () => {
  const { SETTINGS } = await import('../server/config/config.ts');
  const fs = await import('node:fs');
  const readme = fs.readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8');
  // Cells split on unescaped pipes; `\|` inside a cell is a pipe of its value.
  const rows = readme
    .split('\n')
    .filter((line) => /^\| `--/.test(line))
    .map((row) => row.split(/(?<!\\)\|/).map((cell) => cell.trim().replaceAll('\\|', '|')));
  let checked = 0;
  for (const s of SETTINGS) {
    // Derived or worded defaults (DATA_DIR/uploads, "same origin only") are prose in both places.
    if (s.default === undefined || s.defaultDoc !== undefined) continue;
    const row = rows.find((cells) => cells[1] === `\`${s.flag}\``);
    assert.ok(row, `${s.flag} has a row of its own`);
    if (s.default === '') assert.match(row[3]!, /^none\b/, `${s.env}: documented default is none`);
    else
      assert.ok(row[3]!.includes(`\`${s.default}\``), `${s.env}: documented default ${row[3]} shows \`${s.default}\``);
    checked++;
  }
  assert.ok(checked > 30, `${checked} defaults checked`);
});

test('every default parses as the value it stands for, and each setting feeds one Config field', async () => {
  const { SETTINGS } = await import('../server/config/config.ts');
  for (const s of SETTINGS)
    if (s.default !== undefined && s.parse) assert.doesNotThrow(() => s.parse!(s.default!), s.env);
  const { config } = load({});
  assert.deepEqual(new Set(Object.keys(config)), new Set(SETTINGS.map((s) => s.key)));
  assert.equal(SETTINGS.length, new Set(SETTINGS.map((s) => s.key)).size);
});

test('S3: nothing without S3_BUCKET; keys go in pairs; part size within what S3 allows', () => {
  const plain = load({}).config;
  assert.equal(plain.s3Bucket, undefined);
  assert.equal(plain.s3PartSize, 8 * 2 ** 20);
  assert.equal(plain.s3PartsInFlight, 4);
  const set = load({
    S3_BUCKET: 'up-loads.1',
    S3_ENDPOINT: 'http://127.0.0.1:9000',
    S3_ACCESS_KEY_ID: 'a',
    S3_SECRET_ACCESS_KEY: 'b',
    S3_FORCE_PATH_STYLE: 'true',
    S3_PREFIX: 'tus/',
    S3_PART_SIZE: '16MiB',
  }).config;
  assert.equal(set.s3Bucket, 'up-loads.1');
  assert.equal(set.s3ForcePathStyle, true);
  assert.equal(set.s3Prefix, 'tus/');
  assert.equal(set.s3PartSize, 16 * 2 ** 20);
  assert.throws(() => load({ S3_BUCKET: 'b1x', S3_ACCESS_KEY_ID: 'a' }), /S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY/);
  assert.throws(() => load({ S3_ENDPOINT: 'http://127.0.0.1:9000' }), /only with S3_BUCKET/);
  assert.throws(() => load({ S3_BUCKET: 'Not_A_Bucket' }), /S3_BUCKET/);
  assert.throws(() => load({ S3_BUCKET: 'b1x', S3_PART_SIZE: '1MiB' }), /S3_PART_SIZE/);
  assert.throws(() => load({ S3_BUCKET: 'b1x', S3_PREFIX: '/abs' }), /S3_PREFIX/);
});

test('S3: OWNER_MAX_OWED is a size there (no disk, no share of its free space): a share is refused by name, unset \
is no limit', () => {
  assert.deepEqual(load({}).config.ownerMaxOwed, { share: 0.5 });
  assert.deepEqual(load({ S3_BUCKET: 'b1x' }).config.ownerMaxOwed, { bytes: 0 });
  assert.deepEqual(load({ S3_BUCKET: 'b1x', OWNER_MAX_OWED: '10GiB' }).config.ownerMaxOwed, { bytes: 10 * 2 ** 30 });
  assert.deepEqual(load({ S3_BUCKET: 'b1x', OWNER_MAX_OWED: '100%' }).config.ownerMaxOwed, { share: 1 });
  for (const share of ['50%', '99.5%'])
    assert.throws(
      () => load({ S3_BUCKET: 'b1x', OWNER_MAX_OWED: share }),
      /OWNER_MAX_OWED: a share of the free space means nothing with S3_BUCKET/,
    );
  assert.throws(() => load({ S3_BUCKET: 'b1x' }, ['--owner-max-owed', '20%']), /OWNER_MAX_OWED/);
});

test('S3_TIMEOUT: 60s unless set, 1s-1h; anything else is a start-up error naming it', () => {
  assert.equal(load({}).config.s3TimeoutMs, 60_000);
  assert.equal(load({ S3_BUCKET: 'b1x', S3_TIMEOUT: '5s' }).config.s3TimeoutMs, 5_000);
  assert.equal(load({ S3_BUCKET: 'b1x' }, ['--s3-timeout', '1h']).config.s3TimeoutMs, 3_600_000);
  for (const bad of ['0', '999ms', '2h', '-1s', 'never'])
    assert.throws(() => load({ S3_BUCKET: 'b1x', S3_TIMEOUT: bad }), /S3_TIMEOUT: /, bad);
});

test('S3_FORM_URL_TTL: a duration S3 allows (0 or 1s-7d), only with S3_BUCKET', () => {
  assert.equal(load({}).config.s3FormUrlTtlMs, 0);
  assert.equal(load({ S3_BUCKET: 'b1x', S3_FORM_URL_TTL: '1h' }).config.s3FormUrlTtlMs, 3_600_000);
  assert.equal(load({ S3_FORM_URL_TTL: '0' }).config.s3FormUrlTtlMs, 0);
  for (const bad of ['500ms', '8d', 'soon'])
    assert.throws(() => load({ S3_BUCKET: 'b1x', S3_FORM_URL_TTL: bad }), /S3_FORM_URL_TTL: /);
  assert.throws(() => load({ S3_FORM_URL_TTL: '1h' }), /S3_FORM_URL_TTL: .*set S3_BUCKET/);
});
