// A fresh PostgreSQL database per test (127.0.0.1:5432, trust authentication, user postgres, or
// TEST_PG_URL), dropped when the test ends. Real engine, no mocks.
import crypto from 'node:crypto';
import type { TestContext } from 'node:test';
import pg from 'pg';

const ADMIN_URL = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Creates tuspass_test_<random> and answers its URL; the database is dropped (connections and all) after the test. */
export async function pgDatabase(t: TestContext): Promise<string> {
  const name = `tuspass_test_${crypto.randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  t.after(async () => {
    // A pool of the test may still be connecting while it ends: FORCE ends its sessions, and a race
    // with one more is retried.
    for (let attempt = 1; ; attempt++) {
      const c = new pg.Client({ connectionString: ADMIN_URL });
      try {
        await c.connect();
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        return;
      } catch (e) {
        if (attempt >= 5) throw e;
        await new Promise((r) => setTimeout(r, 200));
      } finally {
        await c.end().catch(() => {});
      }
    }
  });
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/** One query on its own connection (the tests read the engine's rows as they are). */
export async function query<T extends pg.QueryResultRow>(
  url: string,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(sql, params)).rows;
  } finally {
    await c.end();
  }
}
