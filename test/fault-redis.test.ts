// Redis down under several instances, with the client people use: tus-js-client (Uppy's), default
// options, through a round-robin balancer. Redis is the test's own redis-server, killed mid-upload
// and started again (empty) after longer than the client's own retries last (4 within 9 s). The
// uploads must go on where they were: one creation each, never an answer that makes the client start
// over, the right md5 and one record each, /readyz naming Redis meanwhile, no key left in Redis.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { startBalancer, startOverAnswers } from './helpers/balancer.ts';
import { startCluster, uploadsUnderWay } from './helpers/cluster.ts';
import { ownRedis } from './helpers/engines.ts';
import { md5, patternBytes } from './helpers/files.ts';
import { until } from './helpers/instances.ts';
import { recordsWhenPresent } from './helpers/server.ts';
import { probeEveryRoute, setUpProbes } from './helpers/route-probes.ts';
import { tus } from './helpers/tus.ts';

const MiB = 1024 * 1024;
/** Longer than tus-js-client's own retries last with its default delays (0, 1, 3, 5 s). */
const OUTAGE_MS = 12_000;

async function keysIn(url: string): Promise<string[]> {
  const r = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    return await r.keys('*');
  } finally {
    r.disconnect();
  }
}

test('Redis killed mid-upload for longer than the client retries, three instances: tus-js-client never starts over, \
one creation and one record per upload with the right md5; /readyz names redis; no key left', async (t) => {
  const redis = await ownRedis(t);
  const { storeDir, service, instances } = await startCluster(t, 3, { redisUrl: redis.url });
  const lb = await startBalancer(
    t,
    instances.map((i) => i.url),
    { bytesPerSecond: MiB },
  );
  const probes = await setUpProbes(`${instances[1]!.url}/files/`);

  const files = [0, 1, 2, 3, 4, 5].map((i) => ({
    name: `r${i}.bin`,
    bytes: patternBytes((3 + (i % 3)) * MiB + i * 1000, 100 + i),
  }));
  const uploads = await uploadsUnderWay(lb, storeDir, files, MiB);
  const created = () => lb.exchanges.filter((x) => x.method === 'POST' && x.status === 201);

  const down = Date.now();
  await redis.stop();
  const ready = await until(
    () =>
      fetch(`${instances[0]!.url}/readyz`).then(async (r) => ({
        status: r.status,
        body: (await r.json()) as { checks: Record<string, { ok: boolean; reason?: string }> },
      })),
    (r) => r.status === 503,
  );
  assert.equal(ready.status, 503);
  assert.equal(ready.body.checks.redis?.ok, false);
  assert.match(ready.body.checks.redis!.reason!, /REDIS_URL/);
  // Every tus route, asked during the outage: answered once it can be, never with "start over".
  const routes = probeEveryRoute(probes);
  await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (Date.now() - down))));
  await redis.start();
  const up = Date.now();

  const outcomes = await Promise.all(uploads);
  const recovered = Date.now() - up;
  const probed = await routes;
  const during = lb.exchanges.filter((x) => x.at >= down && x.at <= up);
  t.diagnostic(
    `outage ${up - down} ms; answers meanwhile: ${JSON.stringify(countBy(during))}; all uploads done ${recovered} ` +
      `ms after Redis returned; routes asked during it: ${JSON.stringify(countBy(probed))}`,
  );
  assert.deepEqual(startOverAnswers(lb.exchanges), [], 'no answer made a client start over or give up');
  assert.deepEqual(startOverAnswers(probed.map((x) => ({ ...x, at: 0, backend: '' }))), [], JSON.stringify(probed));
  assert.ok(
    probed.every((x) => x.status >= 200 && x.status < 300),
    `every route served once Redis was back: ${JSON.stringify(probed)}`,
  );
  assert.equal(created().length, files.length, 'one creation per upload');
  assert.ok(
    during.some((x) => x.method === 'HEAD' && x.status === 200),
    'HEADs answered the offset during the outage',
  );
  const records = await recordsWhenPresent(service.url, files.length + 1, 10_000);
  assert.equal(records.length, files.length + 1, "one record per upload (and the probes' finished one)");
  for (const [i, f] of files.entries()) {
    const id = outcomes[i]!.url.split('/').pop();
    assert.equal(records.find((r) => r.upload_id === id)?.md5, md5(f.bytes), f.name);
  }
  assert.equal(
    (
      await until(
        () => fetch(`${instances[0]!.url}/readyz`),
        (r) => r.ok,
      )
    ).status,
    200,
    'ready again',
  );
  // Nothing per upload outlives the upload: locks released, versions and claims removed (the probes'
  // unfinished upload has its version until it is deleted).
  assert.equal((await tus('DELETE', probes.unfinished)).status, 204);
  assert.deepEqual(
    await until(
      () => keysIn(redis.url),
      (k) => k.length === 0,
      5000,
    ),
    [],
  );
});

function countBy(xs: ReadonlyArray<{ method: string; status: number }>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[`${x.method} ${x.status}`] = (out[`${x.method} ${x.status}`] ?? 0) + 1;
  return out;
}
