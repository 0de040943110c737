// Composes and starts the upload server — with the completion service in the same process for
// `tuspass start`, or alone for `tuspass upload-server`. A factory that tests call directly.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { describeHandlers, loadHookHandlers } from '../../hooks/load-handlers.ts';
import { NoticeQueue } from '../../hooks/queue.ts';
import { PgNoticeQueue } from '../../hooks/pg-queue.ts';
import { NoticeSpool } from '../../hooks/notice-spool.ts';
import type { Notices } from '../../hooks/notices.ts';
import { HookRunner } from '../../hooks/runner.ts';
import { ERRORS, TuspassError } from '../../core/errors.ts';
import type { HookHandler } from '../../hooks/types.ts';
import { builtinHooks } from './builtin-hooks.ts';
import { createCompletionApp, type CompletionAppOptions } from '../completion/app.ts';
import { formRecorder, localCompletion } from '../completion/receive.ts';
import type { PostTarget } from '../complete-form/post.ts';
import { CompletionDeliverer } from '../complete-form/deliver.ts';
import { openCatalog } from '../backends/catalog/sqlite-catalog.ts';
import { PgCatalog } from '../backends/catalog/pg-catalog.ts';
import { openDatabase } from '../backends/pg/database.ts';
import { completionUrlOf, ConfigError, type Config } from '../config/config.ts';
import { waitForEngine } from '../backends/engine-wait.ts';
import { completionProbe, postgresProbe, redisProbe } from '../ops/readiness.ts';
import { completionSecret } from '../config/secret.ts';
import { createLog, errorText } from '../../core/logger.ts';
import { requireAuthBeyondLoopback } from '../auth/loopback.ts';
import { withLock } from '../backends/locker/upload-lock.ts';
import { listenOn } from './listen.ts';
import { countConnections } from '../ops/metrics.ts';
import { tlsServerOptions } from '../config/tls.ts';
import { ensureDirMode, fileModesOf } from '../../core/file-modes.ts';
import { makeDirectory } from '../../core/make-directory.ts';
import { createHttpServer, stopServer } from '../http/network-timeout.ts';
import { setUpOps } from './ops-server.ts';
import { creationGate } from '../upload/tus/admission.ts';
import { apiProxy } from '../upload/api-proxy.ts';
import { createUploadApp } from '../upload/app.ts';
import { MultipartCompletion } from '../upload/nginx/completion.ts';
import { multipartRoutes } from '../upload/nginx/routes.ts';
import { MultipartHooks } from '../upload/nginx/multipart-hooks.ts';
import { ResumableSessions } from '../upload/nginx/resumable-sessions.ts';
import { SessionStates } from '../upload/nginx/session-state.ts';
import { DigestFileStore } from '../backends/store/digest-store.ts';
import { S3UploadStore } from '../backends/store/s3/s3-store.ts';
import { s3ClientOf } from '../backends/store/s3/s3-client.ts';
import type { UploadStore } from '../backends/store/upload-store.ts';
import { PgCompletionJournal } from '../backends/journal/pg-journal.ts';
import { startExpirySweep } from '../pipeline/expiry.ts';
import { prepareHashThread } from '../hashing/hash-thread.ts';
import { MemoryLocker } from '../backends/locker/memory-locker.ts';
import { UploadEvents } from '../pipeline/upload-events.ts';
import { UploadAccess } from '../pipeline/upload-access.ts';
import { RedisConnectError, RedisLocker } from '../backends/locker/redis-locker.ts';
import { announce, startCompletionSweep } from '../pipeline/completion-sweep.ts';

export interface StartOptions {
  /** Serve the completion service (/complete/, /api/uploads) from the same process and port. Default true. */
  completion?: boolean;
  /** Extra hook handlers, run after the configured ones and before the built-in complete-form. */
  hooks?: HookHandler[];
  log?: (line: string) => void;
  /** Prefix of the Redis keys and channels (REDIS_URL); default `tuspass:`. Several deployments or tests on one
   * Redis. */
  redisPrefix?: string;
  /** How often the expiry sweep runs (default a quarter of the shorter of EXPIRE_AFTER and EXPIRE_UNSTARTED_AFTER, 1 s
   * to 1 h); a test that sweeps by hand sets it long. */
  expirySweepMs?: number;
}

export interface RunningTuspass {
  /** Base URL, e.g. http://127.0.0.1:1080 (tus endpoint at `${url}/files/`). */
  url: string;
  /** Where completion forms go. */
  completionUrl: string;
  /** The METRICS_PORT listener's base URL (/metrics, /healthz, /readyz), when configured. */
  metricsUrl?: string;
  store: DigestFileStore;
  /** The store the uploads go to: the S3 store with S3_BUCKET, `store` otherwise. */
  uploads: UploadStore;
  queue: Notices;
  hooks: HookRunner;
  /**
   * Stops. With `graceMs` (SHUTDOWN_TIMEOUT) gracefully: no new connections, requests in flight get
   * that long, then uploads still sending are cut with their bytes kept (network-timeout.ts
   * stopServer). Without it at once (tests).
   */
  close(graceMs?: number): Promise<void>;
}

/** How long deliveries of queued notices under way may take at a graceful stop; the rest are retried at the next
 * start. */
const QUEUE_CLOSE_MS = 300;

/** What OPTIONS advertises: every tus 1.0.0 extension, expiration only when uploads do expire. */
function tusExtensions(config: Config): string[] {
  const all = ['creation', 'creation-with-upload', 'creation-defer-length', 'termination', 'checksum', 'concatenation'];
  return config.expireAfterMs > 0 || config.expireUnstartedAfterMs > 0 ? [...all, 'expiration'] : all;
}

/** How often the expiry sweep runs: a quarter of the shorter expiry period, 1 s to 1 h. */
function sweepEvery(config: Config): number {
  const periods = [config.expireAfterMs, config.expireUnstartedAfterMs].filter((p) => p > 0);
  return Math.max(1000, Math.min(Math.min(...periods) / 4, 3_600_000));
}

/** Creates a directory (and parents) and proves it writable, or names the setting that is wrong. */
function writableDir(dir: string, setting: string): void {
  try {
    makeDirectory(dir);
    // pid and a random part: containers sharing a store all run as pid 1, and must not remove each other's probe.
    const probe = path.join(dir, `.write-probe-${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
    fs.writeFileSync(probe, '');
    fs.rmSync(probe);
  } catch (e) {
    throw new ConfigError([
      `${setting}: ${dir} is not a writable directory (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    ]);
  }
}

export async function startTuspass(config: Config, options: StartOptions = {}): Promise<RunningTuspass> {
  // pino to stderr, or text lines to the given function (tests, embedding): core/logger.ts.
  const log = createLog({ format: config.logFormat, level: config.logLevel, sink: options.log });
  const withCompletion = options.completion ?? true;
  // Anonymous only on loopback unless ALLOW_ANONYMOUS: a ConfigError (exit 78) before anything opens.
  requireAuthBeyondLoopback(config);
  writableDir(config.dataDir, 'DATA_DIR');
  writableDir(config.storeDir, 'STORE_DIR');
  // DATA_DIR holds the secret, queued payloads, the journal and the catalog: the owner's (or the
  // group's with SHARED_GROUP_READ), also when an earlier version made it 0755.
  const modes = fileModesOf(config);
  ensureDirMode(config.dataDir, modes.dir, 'DATA_DIR', log);
  if (!path.relative(config.dataDir, config.storeDir).startsWith('..'))
    ensureDirMode(config.storeDir, modes.dir, 'STORE_DIR', log);
  const secret = completionSecret(config);
  // TLS_CERT/TLS_KEY read and checked before anything opens (a bad file names its setting).
  const tls = tlsServerOptions(config);
  const scheme = tls ? 'https' : 'http';

  // Redis and PostgreSQL not answering yet are waited for, up to STARTUP_TIMEOUT from here (exit 69).
  const wait = { until: Date.now() + config.startupTimeoutMs, log };
  // DATABASE_URL: one pool for what the instances share (server/backends/pg/).
  const db = config.databaseUrl ? await openDatabase(config.databaseUrl, { wait }) : undefined;
  const store = new DigestFileStore({
    directory: config.storeDir,
    algorithms: ['md5', ...config.digests],
    expirationPeriodInMilliseconds: config.expireAfterMs,
    unstartedExpirationMs: config.expireUnstartedAfterMs,
    extensions: tusExtensions(config),
    // Several instances on one store (REDIS_URL) share the journal beside the uploads.
    // With DATABASE_URL the journal is a table every instance shares (pg-journal.ts).
    journalPath: config.redisUrl ? undefined : path.join(config.dataDir, 'completions-handled'),
    journal: db ? new PgCompletionJournal(db) : undefined,
    minFreeSpace: config.minFreeSpace,
    ownerLimits: { maxOpen: config.ownerMaxOpen, maxOwed: config.ownerMaxOwed },
    fileModes: modes,
    log,
  });
  // S3_BUCKET: the tus routes and the IETF draft's write to the bucket (backends/store/s3/); the file
  // store above stays for what lives beside it (the journal) and holds no upload.
  const s3 = config.s3Bucket
    ? new S3UploadStore({
        s3: await s3ClientOf(config),
        bucket: config.s3Bucket,
        prefix: config.s3Prefix,
        algorithms: ['md5', ...config.digests],
        partSize: config.s3PartSize,
        equalParts: config.s3EqualParts,
        partsInFlight: config.s3PartsInFlight,
        downloadRedirectMs: config.s3DownloadRedirectMs,
        formUrlMs: config.s3FormUrlTtlMs,
        expirationPeriodInMilliseconds: config.expireAfterMs,
        unstartedExpirationMs: config.expireUnstartedAfterMs,
        extensions: tusExtensions(config),
        ownerLimits: { maxOpen: config.ownerMaxOpen, maxOwed: config.ownerMaxOwed },
        log,
      })
    : undefined;
  const uploads: UploadStore = s3 ?? store;
  // The URL is known only once we listen when the completion service is our own (port 0 in tests).
  const catalog = !withCompletion ? undefined : db ? new PgCatalog(db) : openCatalog(config.catalogPath, modes.file);
  // With DATABASE_URL the notices are rows any instance delivers (hooks/pg-queue.ts): one that dies
  // leaves none behind. While PostgreSQL is away they wait in this instance's spool (DATA_DIR/spool).
  const queue: Notices = db
    ? new PgNoticeQueue({
        pool: db,
        minMs: config.retryMinMs,
        maxMs: config.retryMaxMs,
        max: config.queueMax,
        spool: new NoticeSpool(path.join(config.dataDir, 'spool'), log, modes),
        log,
      })
    : new NoticeQueue({
        dir: path.join(config.dataDir, 'queue'),
        minMs: config.retryMinMs,
        maxMs: config.retryMaxMs,
        max: config.queueMax,
        fileModes: modes,
        log,
      });
  // The checks and the catalog of a form, for both ways one arrives: POST /complete/ and a direct call.
  const record = catalog ? formRecorder(config, catalog) : undefined;
  const target: PostTarget = {
    url: completionUrlOf(config),
    secret,
    timeoutMs: config.completionTimeoutMs,
    cleanupStatuses: config.cleanupStatuses,
    // Our own service, unless COMPLETION_URL sends the forms elsewhere: a direct call, no HTTP.
    local: record && !config.completionUrl ? localCompletion(record, log) : undefined,
  };
  // The one completion deliverer, every front-end's (tus and the draft through complete-form, the multipart paths).
  // A rejected form removes its upload from the store that holds it (the bucket with S3_BUCKET).
  const deliverer = new CompletionDeliverer({ target, queue, removeUpload: (id) => uploads.remove(id), log });
  let hooks: HookRunner;
  let handlers: HookHandler[];
  // A hook module that does not load or a hooks dir that is not there is a configuration problem.
  try {
    const context = { log, queue, removeUpload: (id: string) => uploads.remove(id) };
    handlers = await loadHookHandlers(config, context, {
      secret,
      extra: options.hooks,
      builtins: builtinHooks({
        deliverer,
        passFields: config.passFields,
        completionTimeoutMs: config.completionTimeoutMs,
        objectUrl: uploads.formUrl && ((id) => uploads.formUrl!(id)),
        log,
      }),
    });
    hooks = new HookRunner(handlers, {
      log,
      queue,
      timeoutMs: config.hooksTimeoutMs,
      failOpen: config.hooksFailOpen,
      storedHeaders: config.hooksHttpForwardHeaders,
    });
    await hooks.setup();
  } catch (e) {
    await catalog?.close();
    await db?.end();
    throw new ConfigError([(e as Error).message]);
  }
  for (const line of describeHandlers(handlers)) log(line);

  const events = new UploadEvents(uploads, hooks, {
    retryMinMs: config.retryMinMs,
    retryMaxMs: config.retryMaxMs,
    log,
  });
  // The one access step of every request on an existing upload, whichever front-end it came by.
  const access = new UploadAccess(uploads, events);
  // One locker for every handler: requests on one upload never interleave. With
  // REDIS_URL the locks are shared by every instance on the store, and every write is fenced.
  let redisLocker: RedisLocker | undefined;
  const redisUrl = config.redisUrl;
  if (redisUrl) {
    // Redis refusing us (a password, an ACL) is a wrong setting; not answering, a wait.
    const connect = () =>
      RedisLocker.connect(redisUrl, { ttlMs: config.redisLockTtlMs, log, prefix: options.redisPrefix }).catch(
        (e: unknown) => {
          throw e instanceof RedisConnectError && e.refused ? new ConfigError([e.message]) : e;
        },
      );
    try {
      redisLocker = await waitForEngine({ name: 'Redis', setting: 'REDIS_URL' }, connect, wait);
    } catch (e) {
      await hooks.close();
      await catalog?.close();
      await db?.end();
      throw e;
    }
    store.fence = redisLocker;
    store.claims = redisLocker;
    if (s3) {
      s3.fence = redisLocker;
      s3.claims = redisLocker;
    }
  }
  const locker = redisLocker ?? new MemoryLocker();
  // The store's ledger: the owner's limits, and the free space where a disk holds the uploads (not in S3).
  const admission = creationGate({
    space: uploads.space,
    queue,
    behindProxy: config.behindProxy,
    log,
  });
  // /healthz, /readyz, /metrics (and the METRICS_PORT listener): ops-server.ts.
  // /readyz names each engine this instance depends on: the store, Redis, PostgreSQL, the completion service apart.
  const engines = {
    ...(redisLocker && { redis: redisProbe(redisLocker) }),
    ...(s3 && { s3: () => s3.ready() }),
    ...(db && { postgres: postgresProbe(db) }),
    ...(!target.local && { completion: completionProbe(() => target.url) }),
  };
  const ops = setUpOps(config, { queue, space: uploads.space, storeDir: config.storeDir, catalog, engines, log });
  // The API routes go inside the upload app, before its last handlers (404, error answers).
  // A record's file is its upload's: downloaded or removed through the access step.
  const recordAccess: CompletionAppOptions['access'] = (req, id, mode) =>
    access.check(req, id, { mode, hidden: () => new TuspassError(ERRORS.ERR_RECORD_NOT_FOUND) });
  const api = catalog
    ? createCompletionApp(config, catalog, {
        log,
        record,
        access: recordAccess,
        removeUpload: (id) =>
          withLock(
            locker,
            id,
            () => {},
            () => uploads.remove(id),
          ),
      })
    : apiProxy(config, target.url, events.wants('pre-access') ? recordAccess : undefined);
  // The nginx upload module's endpoint: multipart/form-data and its resumable mode, one signed form per request.
  const multipartCompletion = new MultipartCompletion({
    store: uploads,
    deliverer,
    passFields: config.passFields,
    templates: config.multipartFormFields,
    log,
  });
  // Resumable sessions of the last run, open again (their state files in the store); those that
  // covered their file when the process stopped are settled, for the pass below to announce.
  const sessions = new ResumableSessions(
    config.resumableSessionsMax,
    new SessionStates(config.storeDir, modes.file, log),
  );
  await sessions.restore(store, redisLocker !== undefined);
  // Multipart bodies go to the store the uploads go to; the resumable mode writes segments in place in
  // files of the file store: with S3_BUCKET its segments answer why not (routes.ts).
  const multipart = multipartRoutes({
    config,
    store: uploads,
    queue,
    completion: multipartCompletion,
    hooks: new MultipartHooks(events, hooks, uploads),
    locker,
    resumable: s3 ? undefined : { store, sessions, access },
    log,
  });
  const app = createUploadApp({
    config,
    store: uploads,
    locker,
    events,
    access,
    log,
    admission,
    api,
    ops: ops.routes,
    multipart,
    postReceiveIntervalMs: config.progressHooksIntervalMs,
    keepPartials: config.keepPartials,
  });
  const stopSweep = startExpirySweep(uploads, options.expirySweepMs ?? sweepEvery(config), log);

  // Before anything listens, so no upload finishing now is mistaken for one left from before. An
  // upload written in segments is never finished by its size (store/start-pass.ts).
  // The S3 store's finished uploads never handled are in their records in the bucket.
  const awaiting = s3
    ? await s3.awaitingCompletion().catch((e: unknown) => {
        log(
          `completion: the bucket could not be listed for uploads finished without their completion \
handled: ${errorText(e)}`,
          { level: 'warn' },
        );
        return [];
      })
    : await store.awaitingCompletion((id) => sessions.receivedBy(id));
  // The hashing thread's code is made ready now; the thread itself starts with the first upload that
  // needs it (small ones are hashed inline) and goes when idle (hash-thread.ts).
  await prepareHashThread();
  // No limit on a whole request (uploads of many GiB take long), only on connections that stop
  // moving: NETWORK_TIMEOUT (network-timeout.ts).
  const server = createHttpServer(app, config.networkTimeoutMs, log, tls);
  if (config.metrics) countConnections(server);
  let metricsUrl: string | undefined;
  try {
    // A busy port is named with the setting to change (listen.ts).
    await listenOn(server, config.port, config.host, 'PORT');
    metricsUrl = await ops.listen();
  } catch (e) {
    if (server.listening) server.close();
    stopSweep();
    await catalog?.close();
    await db?.end();
    throw e;
  }
  if (metricsUrl) log(`metrics: /metrics, /healthz and /readyz on ${metricsUrl}`);
  const { port } = server.address() as AddressInfo;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `${scheme}://${host}:${port}`;
  // A wildcard bind address is not one to connect to: the own service is then reached on loopback.
  const self = ['0.0.0.0', '::'].includes(config.host) ? '127.0.0.1' : host;
  if (withCompletion && !config.completionUrl) target.url = `${scheme}://${self}:${port}/complete/`;
  await queue.start();
  announce(awaiting, uploads, events, log, redisLocker !== undefined);
  // Several instances on one store: a dead instance's finished uploads are announced by the others.
  const stopCompletionSweep = redisLocker
    ? startCompletionSweep({ store: uploads, events, claims: redisLocker, everyMs: config.completionSweepMs, log })
    : () => {};

  return {
    url,
    completionUrl: target.url,
    metricsUrl,
    store,
    uploads,
    queue,
    hooks,
    async close(graceMs?: number) {
      stopSweep();
      stopCompletionSweep();
      ops.stopping();
      if (graceMs === undefined) {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await closed;
      } else await stopServer(server, graceMs, log);
      await ops.close();
      events.close();
      // A graceful stop does not wait out a slow receiver: the notices stay queued on disk.
      if (graceMs === undefined) await queue.close();
      else await Promise.race([queue.close(), new Promise((r) => setTimeout(r, QUEUE_CLOSE_MS).unref())]);
      await hooks.close();
      await catalog?.close();
      // Completions still unhandled here are another instance's to take over from now on.
      await uploads.releaseClaims();
      await redisLocker?.close();
      await db?.end();
    },
  };
}
