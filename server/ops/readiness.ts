// /readyz: whether this process should be sent new work. Each check is named in the answer, with
// what failed in plain words (no paths, no numbers an anonymous caller need not know: those are
// in /metrics). A load balancer or compose healthcheck polls it; a hostile client may too, so the
// result is kept for a second and one probe runs at a time (no disk write per request).
// Every engine the process depends on is a check of its own, by name: the store (and its space),
// Redis, PostgreSQL, the completion service when it runs apart, the catalog. One that does not answer
// makes the process not ready, though it may go on serving what does not need it (uploads go on while
// PostgreSQL or the completion service is away: forms wait, docs/scaling.md).
import fs from 'node:fs';
import path from 'node:path';
import { failureOf, requestText } from '../../core/http-client.ts';

export interface Check {
  ok: boolean;
  /** Why not, when not ok: plain words naming the setting concerned. */
  reason?: string;
}

/** Asks one engine whether it answers now. */
export type Probe = () => Promise<Check>;

export interface Readiness {
  ready: boolean;
  /** Each check by name: store, space, catalog, queue, redis, postgres, completion, shutdown (those that apply to this
   * process). */
  checks: Record<string, Check>;
  /** The names of the checks that failed. */
  failed: string[];
}

export interface ReadinessDeps {
  /** The shared store, where uploads are written (proved writable by writing a probe file). */
  storeDir?: string;
  /**
   * The store's free-space ledger (backends/store/space-ledger.ts): ready while it would admit a byte — free
   * space less what unfinished uploads are owed, above MIN_FREE_SPACE — as a creation's admission reads it.
   */
  space?: { room(): Promise<number> };
  /** The catalog (completion service): reachable if a one-row read answers. */
  catalog?: { list(options: { limit: number; offset: number }): Promise<unknown> };
  /** The setting that names the catalog, for the reason an operator reads. Default CATALOG_PATH. */
  catalogSetting?: 'CATALOG_PATH' | 'DATABASE_URL';
  /** The notice queue: ready while below QUEUE_MAX. */
  queue?: { isFull(): boolean };
  /** The engines this process depends on beyond the store, by their check's name (redis, postgres, completion). */
  engines?: Record<string, Probe>;
  /** True once the process is stopping (SIGTERM): no new work. */
  stopping?: () => boolean;
}

/** How long one result is answered before the checks run again. */
const KEEP_MS = 1000;
/** How long an engine has to answer a probe: readiness is asked often, and a silent engine is a down one. */
const PROBE_MS = 2000;

/** Free bytes available to this process on the file system holding `dir`. */
export async function freeBytes(dir: string): Promise<number> {
  const s = await fs.promises.statfs(dir);
  return s.bavail * s.bsize;
}

const codeOf = (e: unknown) => (e as NodeJS.ErrnoException).code ?? (e as Error).message;

async function storeWritable(dir: string): Promise<Check> {
  const probe = path.join(dir, `.ready-probe-${process.pid}`);
  try {
    await fs.promises.writeFile(probe, '');
    await fs.promises.rm(probe, { force: true });
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: `the store (STORE_DIR) is not writable (${codeOf(e)})` };
  }
}

async function spaceAboveReserve(space: NonNullable<ReadinessDeps['space']>): Promise<Check> {
  try {
    if ((await space.room()) > 0) return { ok: true };
    return {
      ok: false,
      reason: "the store's free space, less what unfinished uploads are still owed, is at or below MIN_FREE_SPACE",
    };
  } catch (e) {
    return { ok: false, reason: `the store's free space cannot be read (${codeOf(e)})` };
  }
}

async function catalogReachable(catalog: NonNullable<ReadinessDeps['catalog']>, setting: string): Promise<Check> {
  try {
    await catalog.list({ limit: 1, offset: 0 });
    return { ok: true };
  } catch (e) {
    return {
      ok: false,
      reason: `the catalog (${setting}) does not answer (${(e as NodeJS.ErrnoException).code ?? 'error'})`,
    };
  }
}

/** Redis (REDIS_URL): answers a PING. */
export const redisProbe =
  (redis: { ping(): Promise<boolean> }): Probe =>
  async () =>
    (await redis.ping())
      ? { ok: true }
      : { ok: false, reason: 'Redis (REDIS_URL) does not answer: no upload can be locked, so no PATCH is written' };

/** PostgreSQL (DATABASE_URL): answers a query. */
export const postgresProbe =
  (pool: { query(sql: string): Promise<unknown> }): Probe =>
  async () => {
    try {
      await pool.query('SELECT 1');
      return { ok: true };
    } catch (e) {
      return {
        ok: false,
        reason:
          'PostgreSQL (DATABASE_URL) does not answer ' +
          `(${codeOf(e)}): completion forms wait in this instance's ` +
          'spool',
      };
    }
  };

/**
 * The completion service running apart (COMPLETION_URL): its /readyz, where tuspass's own service
 * says whether its catalog answers. Any answer but 502, 503 or 504 — the statuses a form is retried
 * on — counts as up: an app of one's own may well have no /readyz.
 */
export const completionProbe =
  (url: () => string): Probe =>
  async () => {
    try {
      const r = await requestText(new URL('/readyz', url()).toString(), { timeoutMs: PROBE_MS });
      if (![502, 503, 504].includes(r.status)) return { ok: true };
      return {
        ok: false,
        reason: `the completion service (COMPLETION_URL) is not ready (${r.status}): completion forms are queued`,
      };
    } catch (e) {
      return {
        ok: false,
        reason:
          'the completion service (COMPLETION_URL) does not answer ' + `(${failureOf(e)}): completion forms are queued`,
      };
    }
  };

/** A probe that has not answered in PROBE_MS has failed. */
function bounded(name: string, probe: Probe): Promise<Check> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<Check>((resolve) => {
    timer = setTimeout(
      () => resolve({ ok: false, reason: `${name} did not answer within ${PROBE_MS / 1000} s` }),
      PROBE_MS,
    );
  });
  const answer = probe().catch(
    (e: unknown): Check => ({ ok: false, reason: `${name} does not answer (${codeOf(e)})` }),
  );
  return Promise.race([answer, late]).finally(() => clearTimeout(timer));
}

/** The readiness of one process, computed at most once a second. */
export function readiness(deps: ReadinessDeps): () => Promise<Readiness> {
  let last: { at: number; result: Readiness } | undefined;
  let running: Promise<Readiness> | undefined;
  const run = async (): Promise<Readiness> => {
    const checks: Record<string, Check> = {};
    const engines = Object.entries(deps.engines ?? {});
    const [store, space, catalog, ...answers] = await Promise.all([
      deps.storeDir ? storeWritable(deps.storeDir) : undefined,
      deps.space ? spaceAboveReserve(deps.space) : undefined,
      deps.catalog ? catalogReachable(deps.catalog, deps.catalogSetting ?? 'CATALOG_PATH') : undefined,
      ...engines.map(([name, probe]) => bounded(name, probe)),
    ]);
    if (store) checks.store = store;
    if (space) checks.space = space;
    if (catalog) checks.catalog = catalog;
    engines.forEach(([name], i) => (checks[name] = answers[i]!));
    if (deps.queue)
      checks.queue = deps.queue.isFull()
        ? { ok: false, reason: 'the notice queue is at QUEUE_MAX (a receiver is down?)' }
        : { ok: true };
    return summary(checks);
  };
  return async () => {
    // Stopping is known at once: a load balancer must stop sending work the moment it starts.
    if (deps.stopping?.()) {
      const kept = last?.result.checks ?? {};
      return summary({ ...kept, shutdown: { ok: false, reason: 'the server is shutting down' } });
    }
    if (last && performance.now() - last.at < KEEP_MS) return last.result;
    running ??= run().finally(() => (running = undefined));
    const result = await running;
    last = { at: performance.now(), result };
    return result;
  };
}

function summary(checks: Record<string, Check>): Readiness {
  const failed = Object.entries(checks)
    .filter(([, c]) => !c.ok)
    .map(([name]) => name);
  return { ready: failed.length === 0, checks, failed };
}
