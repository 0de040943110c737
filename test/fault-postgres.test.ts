// PostgreSQL down as uploads finish, under three instances and tus-js-client through a round-robin
// balancer; PostgreSQL is the test's own cluster, stopped the hard way and started again. Every final
// PATCH must succeed (2xx, Tuspass-Completion: pending) with its form spooled on the instance's own
// disk; one instance is then killed before PostgreSQL returns, and the others must announce its
// uploads without anything being restarted. Restarted at last, it moves its spool into PostgreSQL:
// still one record per upload.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { startBalancer, startOverAnswers } from './helpers/balancer.ts';
import { startCluster, uploadsUnderWay } from './helpers/cluster.ts';
import { ownPostgres, ownRedis } from './helpers/engines.ts';
import { md5, patternBytes } from './helpers/files.ts';
import { startTuspassProcess, until } from './helpers/instances.ts';
import { query } from './helpers/pg.ts';
import { probeEveryRoute, setUpProbes } from './helpers/route-probes.ts';

const MiB = 1024 * 1024;

const spooled = (dataDir: string) =>
  fs.readdirSync(path.join(dataDir, 'spool')).filter((name) => name.endsWith('.json')).length;

test('PostgreSQL down as uploads finish: final PATCHes 2xx pending; the instance that answered some is killed and the \
others announce its uploads once PostgreSQL is back; restarted, its spool adds nothing: one record \
each', async (t) => {
  const db = await ownPostgres(t);
  const redis = await ownRedis(t);
  const { storeDir, env, dataDirs, instances } = await startCluster(
    t,
    3,
    { redisUrl: redis.url, databaseUrl: db.url },
    { COMPLETION_SWEEP: '1s', RETRY_MIN_MS: '200', RETRY_MAX_MS: '1000' },
  );
  const lb = await startBalancer(
    t,
    instances.map((i) => i.url),
    { bytesPerSecond: MiB },
  );
  const probes = await setUpProbes(`${instances[1]!.url}/files/`);

  const files = [0, 1, 2, 3, 4, 5].map((i) => ({
    name: `p${i}.bin`,
    bytes: patternBytes((3 + (i % 3)) * MiB + i * 1000, 200 + i),
  }));
  const uploads = await uploadsUnderWay(lb, storeDir, files, MiB / 2);

  const down = Date.now();
  await db.stop();
  // Every tus route, asked during the outage: none needs PostgreSQL to answer.
  const probed = await probeEveryRoute(probes);
  assert.deepEqual(startOverAnswers(probed.map((x) => ({ ...x, at: 0, backend: '' }))), [], JSON.stringify(probed));
  assert.ok(
    probed.every((x) => x.status >= 200 && x.status < 300),
    `every route served: ${JSON.stringify(probed)}`,
  );
  const outcomes = await Promise.all(uploads);
  const finished = Date.now();
  for (const [i, o] of outcomes.entries()) {
    assert.ok(o.status === 200 || o.status === 204, `${files[i]!.name}: final PATCH ${o.status}`);
    assert.equal(o.completion, 'pending', `${files[i]!.name}: its form waits`);
  }
  const ready = await until(
    () =>
      fetch(`${instances[0]!.url}/readyz`).then(async (r) => ({
        status: r.status,
        body: (await r.json()) as { checks: Record<string, { ok: boolean; reason?: string }> },
      })),
    (r) => r.status === 503 && r.body.checks.postgres?.ok === false,
  );
  assert.equal(ready.body.checks.postgres?.ok, false, JSON.stringify(ready.body));
  assert.match(ready.body.checks.postgres!.reason!, /DATABASE_URL/);
  assert.equal(ready.body.checks.redis?.ok, true);
  assert.equal(ready.body.checks.store?.ok, true);

  // The instance that answered the most final PATCHes dies with their forms in its spool.
  const finals = lb.exchanges.filter((x) => x.method === 'PATCH' && x.completion === 'pending');
  const victim = instances.findIndex((i) => i.url === mostCommon(finals.map((x) => x.backend)));
  const itsUploads = finals.filter((x) => x.backend === instances[victim]!.url).map((x) => x.path.split('/').pop()!);
  assert.ok(itsUploads.length > 0);
  assert.ok(spooled(dataDirs[victim]!) >= itsUploads.length, 'its forms wait in its spool, on its own disk');
  instances[victim]!.child.kill('SIGKILL');
  assert.equal(await instances[victim]!.exited, 'SIGKILL');

  const back = Date.now();
  await db.start();
  const ids = outcomes.map((o) => o.url.split('/').pop()!);
  const uploaded = () =>
    query<{ upload_id: string; md5: string }>(db.url, 'SELECT upload_id, md5 FROM uploads WHERE upload_id = ANY($1)', [
      ids,
    ]);
  const records = await until(uploaded, (rows) => rows.length >= files.length, 60_000);
  const recovered = Date.now() - back;
  t.diagnostic(
    `PostgreSQL down ${back - down} ms (uploads done ${finished - down} ms in); ${itsUploads.length} of ` +
      `${files.length} uploads on the killed instance; every record in ${recovered} ms after PostgreSQL returned`,
  );
  assert.deepEqual(records.map((r) => r.upload_id).sort(), [...ids].sort(), 'one record per upload');
  for (const [i, f] of files.entries())
    assert.equal(records.find((r) => r.upload_id === ids[i])?.md5, md5(f.bytes), f.name);
  const survivors = instances
    .filter((_, i) => i !== victim)
    .map((i) => i.output())
    .join('\n');
  for (const id of itsUploads)
    assert.match(survivors, new RegExp(`upload ${id} was finished and never announced`), `a survivor took over ${id}`);
  assert.deepEqual(startOverAnswers(lb.exchanges), [], 'no answer made a client start over or give up');

  // Back with its DATA_DIR: the spool goes into PostgreSQL, the forms are delivered again and dropped as repeats.
  const restarted = await startTuspassProcess(
    t,
    'upload-server',
    { ...env, DATA_DIR: dataDirs[victim]! },
    instances[victim]!.port,
  );
  assert.equal(
    await until(
      () => spooled(dataDirs[victim]!),
      (n) => n === 0,
    ),
    0,
    'the spool moved into PostgreSQL',
  );
  assert.deepEqual(
    await until(
      () => query(db.url, 'SELECT id FROM notices'),
      (rows) => rows.length === 0,
    ),
    [],
    'every notice delivered',
  );
  assert.equal((await uploaded()).length, files.length, 'still one record per upload');
  assert.equal(
    (await query(db.url, 'SELECT upload_id FROM completions_handled WHERE upload_id = ANY($1)', [ids])).length,
    files.length,
  );
  // Gone before the cluster's directories are removed.
  restarted.child.kill('SIGKILL');
  await restarted.exited;
});

function mostCommon(xs: string[]): string {
  const counts = new Map<string, number>();
  for (const x of xs) counts.set(x, (counts.get(x) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1])[0]![0];
}
