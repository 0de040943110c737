// The Redis locker keeps each upload's record (offset, fencing version) for weeks; a bench run's keys
// live under a prefix of its own and are deleted when its servers have stopped.
import { Redis } from 'ioredis';

export async function deleteRedisPrefix(
  prefix: string,
  url = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
): Promise<number> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  let deleted = 0;
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) deleted += await redis.del(...keys);
    } while (cursor !== '0');
  } catch {
    // Leftover keys expire on their own; a cleanup failure is no bench failure.
  } finally {
    redis.disconnect();
  }
  return deleted;
}
