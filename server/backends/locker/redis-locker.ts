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
//   The version starts at a random number, so a version forgotten (a finished upload) or lost (Redis
//   restarted empty) never comes back equal to one an instance's digest cache remembers;
// - unreachable: a request that needs the lock waits for Redis to come back, up to LOCK_WAIT_MS, then
//   answers 503 ERR_LOCK_UNAVAILABLE (clients retry it); a read (HEAD, GET) does not wait: it reads
//   without the lock (upload-lock.ts withReadLock);
// - claims (claims.ts): taken once or not at all, kept alive by the same watchdog.
import crypto from 'node:crypto';
// Loaded when REDIS_URL is set (connect): ioredis and what it brings are some 20 MB of an idle
// server's memory that a deployment without Redis never uses.
import type { Redis } from 'ioredis';
import type { Lock, RequestRelease } from '@tus/utils';
import { ERRORS, TuspassError } from '../../../core/errors.ts';
import type { Log } from '../../../core/logger.ts';
import { errorText } from '../../../core/logger.ts';
import type { Claim, Claims } from './claims.ts';
import { LOCK_WAIT_MS, type LockOptions, type UploadLocker } from './upload-lock.ts';

/** What a writer calls around its writes; implemented by RedisLocker. */
export interface WriteFence {
  /** Proves the lock of `id` is held here; the version of the upload's bytes now. */
  begin(id: string): Promise<number>;
  /**
   * For an upload the lock's holder has just made: no write of another can be in it, so there is
   * nothing to ask — a new version, which its first advance sets (one round trip fewer than begin).
   */
  start(id: string): number;
  /** Before writing up to `offset`: still the holder and still at `version`? Returns the next version. */
  advance(id: string, version: number, offset: number): Promise<number>;
  /** The upload is finished or gone: its version is no longer kept (never throws). */
  forget(id: string): Promise<void>;
}

const RELEASE =
  `if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('del', KEYS[1]) redis.call('publish', ARGV[2], ARGV[3]) ` +
  'return 1 end return 0';
const EXTEND =
  `if redis.call('get', KEYS[1]) == ARGV[1] then return ` + `redis.call('pexpire', KEYS[1], ARGV[2]) end return 0`;
const BEGIN = `if redis.call('get', KEYS[1]) ~= ARGV[1] then return -1 end
local v = redis.call('hget', KEYS[2], 'version')
if v then return tonumber(v) end
redis.call('hset', KEYS[2], 'version', ARGV[2])
redis.call('pexpire', KEYS[2], ARGV[3])
return tonumber(ARGV[2])`;
const ADVANCE = `if redis.call('get', KEYS[1]) ~= ARGV[1] then return -1 end
local v = tonumber(redis.call('hget', KEYS[2], 'version') or '0')
if ARGV[5] == '1' then v = tonumber(ARGV[2]) end
if v ~= tonumber(ARGV[2]) then return -2 end
v = v + 1
redis.call('hset', KEYS[2], 'version', v, 'offset', ARGV[3])
redis.call('pexpire', KEYS[2], ARGV[4])
return v`;

/**
 * A random first version, so that a live state kept from an earlier upload under the same id (a
 * hook-chosen one) never matches the new upload's. Lua numbers are doubles: a start below 2^40
 * leaves room for 2^13 times as many writes, exactly.
 */
const firstVersion = () => crypto.randomInt(1, 2 ** 40);

/** The shared info of an upload outlives a week without writes only as long as the upload itself might. */
const INFO_TTL_MS = 30 * 86_400_000;
/** A waiter asks the holder again this often (a request published while the holder was between locks is lost). */
const ASK_AGAIN_MS = 1000;

interface Held {
  /** What the lock is, for the log: `upload <id>` or `claim <name>`. */
  label: string;
  /** The upload whose writes it guards; none for a claim. */
  upload?: string;
  token: string;
  onRelease: RequestRelease;
  watchdog: NodeJS.Timeout;
  lost: boolean;
  /** The version start() gave, until the first advance has set it in Redis. */
  starting?: number;
}

type Scripts = Record<
  'tuspassRelease' | 'tuspassExtend' | 'tuspassBegin' | 'tuspassAdvance',
  (...args: (string | number)[]) => Promise<number>
>;

/** A start that could not connect: `refused` when Redis answered no (a password, an ACL: the setting is wrong), else it
 * did not answer. */
export class RedisConnectError extends Error {
  constructor(
    message: string,
    readonly refused: boolean,
  ) {
    super(message);
  }
}

/** Redis's own answers that mean "not now" rather than "not you". */
const BUSY_REPLY = /^(LOADING|BUSY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN)\b/;
const isRefusal = (e: Error) => e.name === 'ReplyError' && !BUSY_REPLY.test(e.message);

export interface RedisLockerOptions {
  /** Key and channel prefix (several tuspass deployments, or tests, on one Redis). */
  prefix?: string;
  ttlMs: number;
  log?: Log;
}

export class RedisLocker implements UploadLocker, WriteFence, Claims {
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

  /**
   * Connects (both connections up, or this throws RedisConnectError): a wrong REDIS_URL is found at
   * start, not at the first upload. One try: server/backends/engine-wait.ts tries again while Redis does not answer.
   */
  static async connect(url: string, options: RedisLockerOptions): Promise<RedisLocker> {
    const { Redis } = await import('ioredis');
    const commandTimeout = Math.max(500, Math.floor(options.ttlMs / 3));
    // No offline queue and one retry: while Redis is away a lock or a fence fails at once (503)
    // instead of waiting in a queue — a write never goes ahead without its lock.
    // Commands sent in the same tick by concurrent requests go out in one write (auto-pipelining):
    // fewer system calls on both sides for the same round trips.
    const redis = new Redis(url, {
      lazyConnect: true,
      enableAutoPipelining: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout,
      retryStrategy: (n) => Math.min(n * 200, 2000),
    });
    const sub = new Redis(url, { lazyConnect: true, retryStrategy: (n) => Math.min(n * 200, 2000) });
    // ioredis reports connection errors as events (connect() itself only says "Connection is
    // closed."); without listeners they would be unhandled.
    let failure: Error | undefined;
    const whileConnecting = (e: Error) => (failure ??= e);
    for (const connection of [redis, sub]) connection.on('error', whileConnecting);
    try {
      await redis.connect();
      await sub.connect();
    } catch (e) {
      redis.disconnect();
      sub.disconnect();
      const cause = failure ?? (e as Error);
      throw new RedisConnectError(`REDIS_URL: cannot connect: ${cause.message}`, isRefusal(cause));
    }
    let lastError = '';
    for (const connection of [redis, sub]) {
      connection.off('error', whileConnecting);
      connection.on('error', (e: Error) => {
        if (e.message === lastError) return;
        lastError = e.message;
        options.log?.(`redis: ${e.message}`, { level: 'warn' });
      });
      connection.on('ready', () => (lastError = ''));
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

  newLock(id: string, options: LockOptions = {}): Lock {
    let token: string | undefined;
    return {
      lock: async (signal, onRelease) => {
        token = await this.acquire(id, signal, onRelease, options.readOnly ?? false);
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

  private async acquire(
    id: string,
    signal: AbortSignal,
    onRelease: RequestRelease,
    readOnly: boolean,
  ): Promise<string> {
    const token = crypto.randomBytes(16).toString('hex');
    // A caller's signal may be one that only a client going away aborts: bounded here too.
    const until = Date.now() + LOCK_WAIT_MS;
    let asked = 0;
    /** Why Redis did not answer the last try, while it does not. */
    let unreachable: string | undefined;
    for (;;) {
      if (signal.aborted || Date.now() >= until) {
        // tusd answers an upload it cannot lock 423 Locked (ERR_UPLOAD_LOCKED); Redis still away: 503.
        throw unreachable === undefined
          ? new TuspassError(ERRORS.ERR_UPLOAD_LOCKED)
          : new TuspassError(ERRORS.ERR_LOCK_UNAVAILABLE, undefined, unreachable);
      }
      let taken: boolean;
      try {
        taken = (await this.redis.set(this.lockKey(id), token, 'PX', this.ttlMs, 'NX')) === 'OK';
      } catch (e) {
        if (readOnly) throw new TuspassError(ERRORS.ERR_LOCK_UNAVAILABLE, undefined, errorText(e));
        // Waiting for Redis (a restart, a failover) rides out an outage far longer than a client's own
        // retries would (tus-js-client's default: 4 retries within 9 s).
        unreachable = errorText(e);
        await this.reachableOrAfter(signal, Math.max(0, Math.min(500, until - Date.now())));
        continue;
      }
      unreachable = undefined;
      if (taken) break;
      if (Date.now() - asked >= ASK_AGAIN_MS) {
        asked = Date.now();
        this.redis.publish(this.releaseChannel, id).catch(() => undefined);
      }
      await this.unlockedOrAfter(id, signal, 250);
    }
    this.hold(id, { label: `upload ${id}`, upload: id }, token, onRelease);
    return token;
  }

  /** Takes `name` if nobody holds it (claims.ts): no waiting, no release request to the holder. */
  async claim(name: string): Promise<Claim | undefined> {
    const token = crypto.randomBytes(16).toString('hex');
    let taken: boolean;
    try {
      taken = (await this.redis.set(this.lockKey(name), token, 'PX', this.ttlMs, 'NX')) === 'OK';
    } catch (e) {
      throw new TuspassError(ERRORS.ERR_LOCK_UNAVAILABLE, undefined, errorText(e));
    }
    if (!taken) return undefined;
    // A claim is not given up on request: a waiter (an upload lock named like it) waits for its release.
    this.hold(name, { label: `claim ${name}` }, token, () => {});
    return { release: () => this.release(name, token) };
  }

  /** Held from now on: renewed every ttl/3 until released or lost. */
  private hold(id: string, what: Pick<Held, 'label' | 'upload'>, token: string, onRelease: RequestRelease): void {
    const held: Held = {
      ...what,
      token,
      onRelease,
      lost: false,
      watchdog: setInterval(() => void this.extend(id, held), Math.max(100, Math.floor(this.ttlMs / 3))),
    };
    held.watchdog.unref();
    this.held.set(id, held);
  }

  /** Resolves once Redis is connected again, after `ms`, or when the signal aborts. */
  private reachableOrAfter(signal: AbortSignal, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.redis.off('ready', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done);
      this.redis.once('ready', done);
    });
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
      this.log(`redis: the lock of ${held.label} could not be renewed: ${errorText(e)}`, { level: 'warn' });
    }
    if (ok || held.lost) return;
    // Lost, or not sure to be held any more: stop writing (the fence refuses the next buffer) and let go.
    held.lost = true;
    clearInterval(held.watchdog);
    this.log(`${held.label}: lock lost${held.upload ? ', writing stopped' : ''}`, {
      event: 'lock.lost',
      upload_id: held.upload,
      level: 'warn',
    });
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
      this.log(
        `redis: the lock of ${held?.label ?? id} could not be released (it expires by itself): ${errorText(e)}`,
        { level: 'warn' },
      );
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
    return this.fenced(id, () =>
      this.scripts.tuspassBegin(this.lockKey(id), this.infoKey(id), token, firstVersion(), INFO_TTL_MS),
    );
  }

  start(id: string): number {
    const held = this.holder(id);
    held.starting = firstVersion();
    return held.starting;
  }

  async advance(id: string, version: number, offset: number): Promise<number> {
    const held = this.holder(id);
    // The first write of an upload made under this lock: a version kept in Redis can only be an earlier
    // upload's under the same id (one whose version could not be forgotten), and is replaced.
    const starting = held.starting === version ? '1' : '0';
    const next = await this.fenced(id, () =>
      this.scripts.tuspassAdvance(
        this.lockKey(id),
        this.infoKey(id),
        held.token,
        version,
        offset,
        INFO_TTL_MS,
        starting,
      ),
    );
    held.starting = undefined;
    return next;
  }

  async forget(id: string): Promise<void> {
    try {
      await this.redis.del(this.infoKey(id));
    } catch (e) {
      this.log(`redis: the version of upload ${id} could not be removed (it expires by itself): ${errorText(e)}`, {
        level: 'warn',
      });
    }
  }

  /** Whether Redis answers now (readiness). */
  async ping(): Promise<boolean> {
    return this.redis.ping().then(
      () => true,
      () => false,
    );
  }

  async close(): Promise<void> {
    for (const [id, held] of this.held) await this.release(id, held.token);
    this.redis.disconnect();
    this.sub.disconnect();
  }
}
