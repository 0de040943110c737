// One PostgreSQL database (DATABASE_URL) shared by every instance: the catalog, the notice queue and
// the completion journal. Opened once per process; the schema is brought up to date by numbered
// steps recorded in schema_migrations, under an advisory lock so that instances starting together
// do not run a step twice.
import pg from 'pg';
import { ConfigError } from '../config.ts';

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
    // Which finished uploads were announced (server/upload/pg-journal.ts).
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
    const done = new Set((await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
    for (const step of MIGRATIONS) {
      if (done.has(step.version)) continue;
      await client.query('BEGIN');
      try {
        await client.query(step.sql);
        await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [step.version, step.name]);
        await client.query('COMMIT');
      } catch (e) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${step.version} (${step.name}): ${(e as Error).message}`);
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

/**
 * Connects and migrates, or throws a ConfigError naming DATABASE_URL (exit 78 at start): a database
 * that cannot be reached is found at start, not at the first completed upload.
 */
export async function openDatabase(url: string, options: { connectTimeoutMs?: number } = {}): Promise<pg.Pool> {
  const pool = new pg.Pool({ connectionString: url, max: 10, connectionTimeoutMillis: options.connectTimeoutMs ?? 5000 });
  // An idle client whose connection drops emits 'error' on the pool; without a listener that would end the process.
  pool.on('error', () => {});
  try {
    await migrate(pool);
    return pool;
  } catch (e) {
    await pool.end().catch(() => {});
    throw new ConfigError([`DATABASE_URL: cannot use ${redactUrl(url)}: ${(e as Error).message}`]);
  }
}
