// Upload locks shared by several upload servers through Redis (REDIS_URL): the cross-process version
// of @tus/server's MemoryLocker, so any instance behind a load balancer can serve any request of any
// upload, without sticky sessions.
//
// - acquire: SET <lock> <token> NX PX <ttl>; release and extend are compare-and-delete and
//   compare-and-extend scripts, so a holder never removes or renews a lock that is no longer its own;
// - watchdog: while held, the lease is renewed every ttl/3. A renewal that fails (the lock is gone,
//   Redis does not answer) tells the holder to let go at once (its onRelease), and its fence refuses
//   every further write;
// - handover: a request that finds the upload held publishes a release request; the instance holding
//   it calls the holder's onRelease (a PATCH ends, keeping its bytes and saving its digest state,
//   then unlocks), and the unlock is published so the waiter takes the lock at once;
// - fencing (WriteFence): before each buffer reaches the disk, the writer proves it still holds the
//   lock and that nobody wrote since its last write: a version kept in the upload's shared info in
//   Redis is compared and set, with the offset written so far. A holder that paused past its lease
//   (a stopped process, a long GC) finds the token changed and writes nothing more.
//   The window left is the time between one check and its write syscall (microseconds, not a lease).
import crypto from 'node:crypto';
import { Redis } from 'ioredis';
import type { Lock, Locker, RequestRelease } from '@tus/utils';
import { ERRORS, TuspassError } from '../../core/errors.ts';
import type { Log } from '../../core/logger.ts';
import { errorText } from '../../core/logger.ts';

/** What a writer calls around its writes; implemented by RedisLocker. */
export interface WriteFence {
  /** Proves the lock of `id` is held here; the version of the upload's bytes now. */
  begin(id: string): Promise<number>;
  /** Before writing up to `offset`: still the holder and still at `version`? Returns the next version. */
  advance(id: string, version: number, offset: number): Promise<number>;
}

const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('del', KEYS[1]) redis.call('publish', ARGV[2], ARGV[3]) return 1 end return 0`;
const EXTEND = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0`;
const BEGIN = `if redis.call('get', KEYS[1]) ~= ARGV[1] then return -1 end return tonumber(redis.call('hget', KEYS[2], 'version') or '0')`;
const ADVANCE = `if redis.call('get', KEYS[1]) ~= ARGV[1] then return -1 end
local v = tonumber(redis.call('hget', KEYS[2], 'version') or '0')
if v ~= tonumber(ARGV[2]) then return -2 end
v = v + 1
redis.call('hset', KEYS[2], 'version', v, 'offset', ARGV[3])
redis.call('pexpire', KEYS[2], ARGV[4])
return v`;

/** The shared info of an upload outlives a week without writes only as long as the upload itself might. */
const INFO_TTL_MS = 30 * 86_400_000;
/** A waiter asks the holder again this often (a request published while the holder was between locks is lost). */
const ASK_AGAIN_MS = 1000;

interface Held {
  token: string;
  onRelease: RequestRelease;
  watchdog: NodeJS.Timeout;
  lost: boolean;
}

type Scripts = Record<'tuspassRelease' | 'tuspassExtend' | 'tuspassBegin' | 'tuspassAdvance', (...args: (string | number)[]) => Promise<number>>;

export interface RedisLockerOptions {
  /** Key and channel prefix (several tuspass deployments, or tests, on one Redis). */
  prefix?: string;
  ttlMs: number;
  log?: Log;
}

export class RedisLocker implements Locker, WriteFence {
  private readonly held = new Map<string, Held>();
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly prefix: string;
  private readonly ttlMs: number;
  private readonly log: Log;

  private constructor(
    private readonly redis: Redis,
    private readonly sub: Redis,
    options: RedisLockerOptions,
  ) {
    this.prefix = options.prefix ?? 'tuspass:';
    this.ttlMs = options.ttlMs;
    this.log = options.log ?? (() => {});
  }

  /** Connects (both connections up, or this throws): a wrong REDIS_URL is found at start, not at the first upload. */
  static async connect(url: string, options: RedisLockerOptions): Promise<RedisLocker> {
    const commandTimeout = Math.max(500, Math.floor(options.ttlMs / 3));
    // No offline queue and one retry: while Redis is away a lock or a fence fails at once (503)
    // instead of waiting in a queue — a write never goes ahead without its lock.
    const redis = new Redis(url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout, retryStrategy: (n) => Math.min(n * 200, 2000) });
    const sub = new Redis(url, { lazyConnect: true, retryStrategy: (n) => Math.min(n * 200, 2000) });
    // ioredis reports connection errors as events; without listeners they would be unhandled.
    let lastError = '';
    for (const connection of [redis, sub]) {
      connection.on('error', (e: Error) => {
        if (e.message === lastError) return;
        lastError = e.message;
        options.log?.(`redis: ${e.message}`, { level: 'warn' });
      });
      connection.on('ready', () => (lastError = ''));
    }
    try {
      await redis.connect();
      await sub.connect();
    } catch (e) {
      redis.disconnect();
      sub.disconnect();
      throw new Error(`REDIS_URL: cannot connect: ${(e as Error).message}`);
    }
    redis.defineCommand('tuspassRelease', { numberOfKeys: 1, lua: RELEASE });
    redis.defineCommand('tuspassExtend', { numberOfKeys: 1, lua: EXTEND });
    redis.defineCommand('tuspassBegin', { numberOfKeys: 2, lua: BEGIN });
    redis.defineCommand('tuspassAdvance', { numberOfKeys: 2, lua: ADVANCE });
    const locker = new RedisLocker(redis, sub, options);
    await sub.subscribe(locker.releaseChannel, locker.unlockedChannel);
    sub.on('message', (channel: string, id: string) => locker.onMessage(channel, id));
    return locker;
  }

  private get releaseChannel(): string {
    return `${this.prefix}release`;
  }

  private get unlockedChannel(): string {
    return `${this.prefix}unlocked`;
  }

  private lockKey(id: string): string {
    return `${this.prefix}lock:${id}`;
  }

  private infoKey(id: string): string {
    return `${this.prefix}upload:${id}`;
  }

  private get scripts(): Scripts {
    return this.redis as unknown as Scripts;
  }

  newLock(id: string): Lock {
    let token: string | undefined;
    return {
      lock: async (signal, onRelease) => {
        token = await this.acquire(id, signal, onRelease);
      },
      unlock: async () => {
        if (token !== undefined) await this.release(id, token);
        token = undefined;
      },
    };
  }

  private onMessage(channel: string, id: string): void {
    if (channel === this.releaseChannel) {
      const held = this.held.get(id);
      if (held) void Promise.resolve(held.onRelease()).catch(() => undefined);
    } else if (channel === this.unlockedChannel) {
      for (const wake of this.waiters.get(id) ?? []) wake();
    }
  }

  private async acquire(id: string, signal: AbortSignal, onRelease: RequestRelease): Promise<string> {
    const token = crypto.randomBytes(16).toString('hex');
    let asked = 0;
    for (;;) {
      // tusd answers an upload it cannot lock 423 Locked (ERR_UPLOAD_LOCKED).
      if (signal.aborted) throw new TuspassError(ERRORS.ERR_UPLOAD_LOCKED);
      let taken: boolean;
      try {
        taken = (await this.redis.set(this.lockKey(id), token, 'PX', this.ttlMs, 'NX')) === 'OK';
      } catch (e) {
        throw new TuspassError(ERRORS.ERR_LOCK_UNAVAILABLE, undefined, errorText(e));
      }
      if (taken) break;
      if (Date.now() - asked >= ASK_AGAIN_MS) {
        asked = Date.now();
        this.redis.publish(this.releaseChannel, id).catch(() => undefined);
      }
      await this.unlockedOrAfter(id, signal, 250);
    }
    const held: Held = { token, onRelease, lost: false, watchdog: setInterval(() => void this.extend(id, held), Math.max(100, Math.floor(this.ttlMs / 3))) };
    held.watchdog.unref();
    this.held.set(id, held);
    return token;
  }

  /** Resolves when the lock of `id` is published free, after `ms`, or when the signal aborts. */
  private unlockedOrAfter(id: string, signal: AbortSignal, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const set = this.waiters.get(id) ?? new Set();
      this.waiters.set(id, set);
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        set.delete(done);
        if (set.size === 0 && this.waiters.get(id) === set) this.waiters.delete(id);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done);
      set.add(done);
    });
  }

  private async extend(id: string, held: Held): Promise<void> {
    let ok = false;
    try {
      ok = (await this.scripts.tuspassExtend(this.lockKey(id), held.token, this.ttlMs)) === 1;
    } catch (e) {
      this.log(`redis: the lock of upload ${id} could not be renewed: ${errorText(e)}`, { level: 'warn' });
    }
    if (ok || held.lost) return;
    // Lost, or not sure to be held any more: stop writing (the fence refuses the next buffer) and let go.
    held.lost = true;
    clearInterval(held.watchdog);
    this.log(`upload ${id}: lock lost, writing stopped`, { event: 'lock.lost', upload_id: id, level: 'warn' });
    void Promise.resolve(held.onRelease()).catch(() => undefined);
  }

  private async release(id: string, token: string): Promise<void> {
    const held = this.held.get(id);
    if (held?.token === token) {
      clearInterval(held.watchdog);
      this.held.delete(id);
    }
    try {
      await this.scripts.tuspassRelease(this.lockKey(id), token, this.unlockedChannel, id);
    } catch (e) {
      // The lease ends by itself within REDIS_LOCK_TTL; the request that held it is answered all the same.
      this.log(`redis: the lock of upload ${id} could not be released (it expires by itself): ${errorText(e)}`, { level: 'warn' });
    }
  }

  private holder(id: string): Held {
    const held = this.held.get(id);
    if (!held || held.lost) throw new TuspassError(ERRORS.ERR_LOCK_LOST, `upload ${id}`);
    return held;
  }

  private async fenced(id: string, run: () => Promise<number>): Promise<number> {
    let answer: number;
    try {
      answer = await run();
    } catch (e) {
      throw new TuspassError(ERRORS.ERR_LOCK_UNAVAILABLE, undefined, errorText(e));
    }
    if (answer === -1) throw new TuspassError(ERRORS.ERR_LOCK_LOST, `upload ${id}`);
    if (answer === -2) throw new TuspassError(ERRORS.ERR_LOCK_LOST, `upload ${id} was written by another request`);
    return answer;
  }

  async begin(id: string): Promise<number> {
    const { token } = this.holder(id);
    return this.fenced(id, () => this.scripts.tuspassBegin(this.lockKey(id), this.infoKey(id), token));
  }

  async advance(id: string, version: number, offset: number): Promise<number> {
    const { token } = this.holder(id);
    return this.fenced(id, () => this.scripts.tuspassAdvance(this.lockKey(id), this.infoKey(id), token, version, offset, INFO_TTL_MS));
  }

  /** Whether Redis answers now (readiness). */
  async ping(): Promise<boolean> {
    return this.redis.ping().then(() => true, () => false);
  }

  async close(): Promise<void> {
    for (const [id, held] of this.held) await this.release(id, held.token);
    this.redis.disconnect();
    this.sub.disconnect();
  }
}
