// One PostgreSQL database (DATABASE_URL) shared by every instance: the catalog, the notice queue and
// the completion journal. Opened once per process; the schema is brought up to date by numbered
// steps recorded in schema_migrations, under an advisory lock so that instances starting together
// do not run a step twice.
// Loaded when DATABASE_URL is set (openDatabase): pg and its dependencies are some 17 MB of an idle
// server's memory that a deployment without PostgreSQL never uses.
import type pg from 'pg';
import { ConfigError } from '../../config/config.ts';
import { EngineUnavailableError, waitForEngine, type StartupWait } from '../engine-wait.ts';

/**
 * The schema, one step per number, never edited once released: a new need is a new step. Each runs
 * in its own transaction with its row in schema_migrations.
 */
export const MIGRATIONS: ReadonlyArray<{ version: number; name: string; sql: string }> = [
  {
    version: 1,
    name: 'catalog',
    // json, not jsonb: the pass-through fields keep their order, as they came.
    sql: `CREATE TABLE uploads (
      id           BIGSERIAL PRIMARY KEY,
      upload_id    TEXT NOT NULL UNIQUE,
      name         TEXT NOT NULL,
      size         BIGINT NOT NULL,
      md5          TEXT NOT NULL,
      sha1         TEXT,
      crc32        TEXT,
      content_type TEXT NOT NULL,
      path         TEXT NOT NULL,
      fields       JSON NOT NULL,
      owner        TEXT NOT NULL DEFAULT '',
      created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE INDEX uploads_owner ON uploads (owner, created_at);
    CREATE INDEX uploads_duplicate ON uploads (owner, md5, name);`,
  },
  {
    version: 2,
    name: 'notice queue',
    // One row per queued notice; the id is the notice's for its whole life (every attempt, the admin commands).
    sql: `CREATE TABLE notices (
      id         TEXT PRIMARY KEY,
      kind       TEXT NOT NULL,
      payload    JSON NOT NULL,
      attempts   INTEGER NOT NULL DEFAULT 0,
      next_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
      last_error TEXT,
      created_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE INDEX notices_due ON notices (next_at);`,
  },
  {
    version: 3,
    name: 'completion journal',
    // Which finished uploads were announced (server/backends/journal/pg-journal.ts).
    sql: `CREATE TABLE completions_handled (
      upload_id  TEXT PRIMARY KEY,
      handled_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );`,
  },
];

/** Any number will do as long as it is the same in every instance. */
const MIGRATION_LOCK = 0x7475_7370;

export async function migrate(pool: pg.Pool): Promise<number[]> {
  const client = await pool.connect();
  const applied: number[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    INTEGER PRIMARY KEY,
      name       TEXT NOT NULL,
      applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )`);
    const done = new Set(
      (await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version),
    );
    for (const step of MIGRATIONS) {
      if (done.has(step.version)) continue;
      await client.query('BEGIN');
      try {
        await client.query(step.sql);
        await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [step.version, step.name]);
        await client.query('COMMIT');
      } catch (e) {
        await client.query('ROLLBACK').catch(() => {});
        throw new Error(`migration ${step.version} (${step.name}): ${(e as Error).message}`, { cause: e });
      }
      applied.push(step.version);
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => {});
    client.release();
  }
  return applied;
}

/** The URL with its password (if any) hidden, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'DATABASE_URL';
  }
}

/** The longest one query may take: every query tuspass makes is a short one. */
const QUERY_TIMEOUT_MS = 10_000;

/** SQLSTATEs that mean "not now" rather than "not this": connection exceptions (08), too many connections (53), the
 * server shutting down or starting up (57P01-57P03). */
const NOT_NOW = /^(08|53|57P0[1-3])/;

/**
 * Whether PostgreSQL (or the URL) said no for good: a password or role refused, a database that does
 * not exist, a URL that does not parse. Anything else (refused connections, names that do not resolve
 * yet, a server starting up) is PostgreSQL not answering yet.
 */
function wrongSetting(pgModule: typeof pg, e: unknown): boolean {
  const cause = e instanceof Error && e.cause !== undefined ? e.cause : e;
  if (cause instanceof pgModule.DatabaseError) return !NOT_NOW.test(cause.code ?? '');
  // pg's own refusals before the server could say anything: no password where one is asked for, a bad URL.
  return cause instanceof TypeError || /\bSASL\b|password/i.test((cause as Error)?.message ?? '');
}

/**
 * Connects and migrates. A wrong setting is a ConfigError naming DATABASE_URL (exit 78 at start); a
 * database that does not answer is waited for with `wait` (at start, STARTUP_TIMEOUT), and is an
 * EngineUnavailableError (exit 69) once that has passed — at once without `wait`.
 */
export async function openDatabase(
  url: string,
  options: { connectTimeoutMs?: number; wait?: StartupWait } = {},
): Promise<pg.Pool> {
  const open = () => openOnce(url, options.connectTimeoutMs ?? 5000);
  return options.wait ? waitForEngine({ name: 'PostgreSQL', setting: 'DATABASE_URL' }, open, options.wait) : open();
}

async function openOnce(url: string, connectTimeoutMs: number): Promise<pg.Pool> {
  const { default: pgModule } = await import('pg');
  // A server that stops answering without closing its connections is a server down too: no query waits on it for ever.
  const pool = new pgModule.Pool({
    connectionString: url,
    max: 10,
    connectionTimeoutMillis: connectTimeoutMs,
    query_timeout: QUERY_TIMEOUT_MS,
  });
  // An idle client whose connection drops emits 'error' on the pool; without a listener that would end the process.
  pool.on('error', () => {});
  try {
    await migrate(pool);
    return pool;
  } catch (e) {
    await pool.end().catch(() => {});
    const message = `DATABASE_URL: cannot use ${redactUrl(url)}: ${(e as Error).message}`;
    throw wrongSetting(pgModule, e) ? new ConfigError([message]) : new EngineUnavailableError(message);
  }
}
