// Starting while an engine is away: a wrong setting exits 78 at once (nothing to wait for); Redis or
// PostgreSQL not answering yet is tried again with back-off, each try logged, until it answers or
// STARTUP_TIMEOUT passes (exit 69). Real processes (`tuspass upload-server`, `completion-server`) and
// the test's own redis-server and PostgreSQL cluster, started late or never.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ownPostgres, ownRedis } from './helpers/engines.ts';
import { freePort } from './helpers/ports.ts';
import { answering, spawnTuspass, until } from './helpers/instances.ts';
import { tmpDir } from './helpers/tmp.ts';

const SECRET = 'test-secret-0123456789';
const WAITING = /does not answer yet/;

test('PostgreSQL and Redis not answering at start: each try \
logged; started late, the instance comes up and is ready', async (t) => {
  const redis = await ownRedis(t, { start: false });
  const db = await ownPostgres(t, { start: false });
  const p = await spawnTuspass(t, 'upload-server', {
    REDIS_URL: redis.url,
    DATABASE_URL: db.url,
    DATA_DIR: tmpDir(t),
    STORE_DIR: tmpDir(t),
    COMPLETION_URL: 'http://127.0.0.1:9/complete/',
    COMPLETION_SECRET: SECRET,
    STARTUP_TIMEOUT: '5m',
  });
  const tries = (engine: string) =>
    p
      .output()
      .split('\n')
      .filter((l) => l.includes(`startup: ${engine} (`) && WAITING.test(l)).length;
  assert.ok(
    (await until(
      () => tries('PostgreSQL'),
      (n) => n >= 2,
      60_000,
    )) >= 2,
    p.output(),
  );
  await db.start();
  assert.ok(
    (await until(
      () => tries('Redis'),
      (n) => n >= 2,
      60_000,
    )) >= 2,
    p.output(),
  );
  await redis.start();
  await answering(p);
  assert.match(p.output(), /startup: PostgreSQL answers \(try \d+\)/);
  assert.match(p.output(), /startup: Redis answers \(try \d+\)/);
  const ready = (await (await fetch(`${p.url}/readyz`)).json()) as { checks: Record<string, { ok: boolean }> };
  assert.equal(ready.checks.redis?.ok, true);
  assert.equal(ready.checks.postgres?.ok, true);
  p.child.kill('SIGTERM');
  assert.equal(await p.exited, 0);
});

test('an engine that never answers: tried until STARTUP_TIMEOUT, each try logged, then exit 69 naming it; a wrong \
setting of the same engine: exit 78 at once, no try', async (t) => {
  const nothing = await freePort();
  const unanswered: Array<{ command: string; env: Record<string, string>; setting: string; engine: string }> = [
    {
      command: 'upload-server',
      env: { REDIS_URL: `redis://127.0.0.1:${nothing}` },
      setting: 'REDIS_URL',
      engine: 'Redis',
    },
    {
      command: 'completion-server',
      env: { DATABASE_URL: `postgres://postgres@127.0.0.1:${nothing}/postgres` },
      setting: 'DATABASE_URL',
      engine: 'PostgreSQL',
    },
  ];
  for (const run of unanswered) {
    const p = await spawnTuspass(t, run.command, {
      ...run.env,
      DATA_DIR: tmpDir(t),
      COMPLETION_SECRET: SECRET,
      STARTUP_TIMEOUT: '2s',
    });
    assert.equal(await p.exited, 69, `${run.command}: ${p.output()}`);
    assert.match(p.output(), new RegExp(`${run.setting}: ${run.engine} did not answer within STARTUP_TIMEOUT`));
    assert.ok(
      p
        .output()
        .split('\n')
        .filter((l) => WAITING.test(l)).length >= 2,
      `each try logged: ${p.output()}`,
    );
    assert.doesNotMatch(p.output(), /\n\s+at /, 'no stack');
  }
  // Answering, but refusing: Redis the password, PostgreSQL the database. Nothing to wait for.
  const redis = await ownRedis(t, { password: 'right-password' });
  const db = await ownPostgres(t);
  const missing = db.url.replace(/\/postgres$/, '/no_such_database');
  const wrong: Array<{ command: string; env: Record<string, string>; setting: string }> = [
    {
      command: 'upload-server',
      env: { REDIS_URL: redis.url.replace('redis://', 'redis://:wrong-password@') },
      setting: 'REDIS_URL',
    },
    { command: 'upload-server', env: { DATABASE_URL: missing }, setting: 'DATABASE_URL' },
    { command: 'completion-server', env: { DATABASE_URL: missing }, setting: 'DATABASE_URL' },
  ];
  for (const run of wrong) {
    const p = await spawnTuspass(t, run.command, {
      ...run.env,
      DATA_DIR: tmpDir(t),
      COMPLETION_SECRET: SECRET,
      STARTUP_TIMEOUT: '60s',
    });
    assert.equal(await p.exited, 78, `${run.command} ${run.setting}: ${p.output()}`);
    assert.match(p.output(), new RegExp(run.setting));
    assert.doesNotMatch(p.output(), WAITING, 'no try again for a wrong setting');
  }
});
