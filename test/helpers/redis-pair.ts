// Several upload servers on one store with the Redis locker (REDIS_URL), on real Redis (127.0.0.1:6379,
// or TEST_REDIS_URL): each test has its own key prefix, removed after it.
import crypto from 'node:crypto';
import type { TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { startTestServer, type TestServer } from './server.ts';
import { tmpDir } from './tmp.ts';

export const REDIS = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A key prefix of the test's own, its keys removed when the test ends. */
export function prefixFor(t: TestContext, url = REDIS): string {
  const prefix = `tuspass-test-${crypto.randomBytes(6).toString('hex')}:`;
  t.after(async () => {
    const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await r.connect();
      const keys = await r.keys(`${prefix}*`);
      if (keys.length) await r.del(...keys);
    } catch {
      // The test's own Redis is gone already: nothing left to clean.
    } finally {
      r.disconnect();
    }
  });
  return prefix;
}

/** Two instances on one store and one Redis prefix: A keeps the catalog, B posts its forms to A. */
export async function redisPair(
  t: TestContext,
  url = REDIS,
  ttlMs = 3000,
): Promise<{ a: TestServer; b: TestServer; storeDir: string; prefix: string }> {
  const storeDir = tmpDir(t);
  const prefix = prefixFor(t, url);
  const a = await startTestServer(
    t,
    { storeDir, redisUrl: url, redisLockTtlMs: ttlMs, minFreeSpace: 0 },
    { redisPrefix: prefix },
  );
  const b = await startTestServer(
    t,
    { storeDir, redisUrl: url, redisLockTtlMs: ttlMs, minFreeSpace: 0, completionUrl: a.completionUrl },
    { redisPrefix: prefix, completion: false },
  );
  return { a, b, storeDir, prefix };
}
