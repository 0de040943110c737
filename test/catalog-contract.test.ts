// The Catalog contract: every implementation (SQLite and PostgreSQL) must pass catalogContract.
// Another implementation's test imports catalogContract and passes its own store factory.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import type { Catalog, NewUploadRecord } from '../server/backends/catalog/catalog.ts';
import { SqliteCatalog } from '../server/backends/catalog/sqlite-catalog.ts';
import { PgCatalog } from '../server/backends/catalog/pg-catalog.ts';
import { MIGRATIONS, openDatabase } from '../server/backends/pg/database.ts';
import { pgDatabase } from './helpers/pg.ts';
import { ERRORS, TuspassError } from '../core/errors.ts';
import { ConfigError } from '../server/config/config.ts';
import { EngineUnavailableError } from '../server/backends/engine-wait.ts';
import { tmpDir } from './helpers/tmp.ts';

/** A fresh, empty store per test; open() may be called more than once and opens the same store again. */
export type CatalogStore = (t: TestContext) => { open(): Promise<Catalog> };

export const sampleUpload = (uploadId: string, extra: Partial<NewUploadRecord> = {}): NewUploadRecord => ({
  uploadId,
  name: `${uploadId}.bin`,
  size: 11,
  md5: '5eb63bbbe01eeed093cb22bb8f5acdc3',
  contentType: 'application/octet-stream',
  path: `/data/uploads/${uploadId}`,
  fields: { description: 'holiday' },
  ...extra,
});

export function catalogContract(name: string, makeStore: CatalogStore): void {
  describe(`Catalog contract: ${name}`, () => {
    const openCatalog = async (t: TestContext) => {
      const store = makeStore(t);
      const catalog = await store.open();
      t.after(() => catalog.close());
      return { store, catalog };
    };

    test('records an upload with an id and a creation time, and finds it by both ids', async (t) => {
      const { catalog } = await openCatalog(t);
      const before = Date.now();
      const { record, created } = await catalog.record(sampleUpload('u1', { sha1: 'a'.repeat(40), crc32: '0badf00d' }));
      assert.equal(created, true);
      assert.equal(typeof record.id, 'string');
      assert.ok(record.id.length > 0);
      assert.ok(Date.parse(record.createdAt) >= before - 1000, record.createdAt);
      assert.equal(new Date(record.createdAt).toISOString(), record.createdAt);
      assert.deepEqual(
        { ...record, id: undefined, createdAt: undefined },
        {
          ...sampleUpload('u1', { sha1: 'a'.repeat(40), crc32: '0badf00d' }),
          owner: '',
          id: undefined,
          createdAt: undefined,
        },
      );
      assert.deepEqual(await catalog.get(record.id), record);
      assert.deepEqual(await catalog.byUploadId('u1'), record);
    });

    test('leaves optional digests out when absent and keeps sizes above 4 GiB exact', async (t) => {
      const { catalog } = await openCatalog(t);
      const { record } = await catalog.record(sampleUpload('big', { size: 5 * 2 ** 30 + 7 }));
      const got = await catalog.get(record.id);
      assert.equal(got?.size, 5 * 2 ** 30 + 7);
      assert.equal('sha1' in got!, false);
      assert.equal('crc32' in got!, false);
    });

    test('answers undefined for unknown ids of any shape', async (t) => {
      const { catalog } = await openCatalog(t);
      for (const id of ['999', 'abc', '../1', '', '1 OR 1=1']) assert.equal(await catalog.get(id), undefined, id);
      assert.equal(await catalog.byUploadId('nope'), undefined);
    });

    test('a repeated upload id answers the first record unchanged and creates nothing', async (t) => {
      const { catalog } = await openCatalog(t);
      const first = await catalog.record(sampleUpload('u1'));
      const again = await catalog.record(sampleUpload('u1', { name: 'other.bin' }));
      assert.equal(again.created, false);
      assert.deepEqual(again.record, first.record);
      assert.equal((await catalog.list({ limit: 10, offset: 0 })).length, 1);
    });

    test('concurrent identical records make exactly one', async (t) => {
      const { catalog } = await openCatalog(t);
      const results = await Promise.all(Array.from({ length: 10 }, () => catalog.record(sampleUpload('same'))));
      assert.equal(results.filter((r) => r.created).length, 1);
      assert.equal(new Set(results.map((r) => r.record.id)).size, 1);
      assert.equal((await catalog.list({ limit: 10, offset: 0 })).length, 1);
    });

    test('two connections to one store recording the same upload make exactly one', async (t) => {
      const { store, catalog } = await openCatalog(t);
      const second = await store.open();
      t.after(() => second.close());
      const results = await Promise.all(
        [catalog, second, catalog, second].map((c) => c.record(sampleUpload('shared'))),
      );
      assert.equal(results.filter((r) => r.created).length, 1);
      assert.equal(new Set(results.map((r) => r.record.id)).size, 1);
    });

    test('lists newest first, with limit and offset', async (t) => {
      const { catalog } = await openCatalog(t);
      for (const id of ['a', 'b', 'c', 'd']) await catalog.record(sampleUpload(id));
      const ids = async (limit: number, offset: number) =>
        (await catalog.list({ limit, offset })).map((r) => r.uploadId);
      assert.deepEqual(await ids(10, 0), ['d', 'c', 'b', 'a']);
      assert.deepEqual(await ids(2, 1), ['c', 'b']);
      assert.deepEqual(await ids(10, 4), []);
    });

    test('records persist after close and reopen', async (t) => {
      const store = makeStore(t);
      const first = await store.open();
      const { record } = await first.record(sampleUpload('kept'));
      await first.close();
      const reopened = await store.open();
      t.after(() => reopened.close());
      assert.deepEqual(await reopened.get(record.id), record);
      const again = await reopened.record(sampleUpload('kept'));
      assert.equal(again.created, false);
      assert.equal(again.record.id, record.id);
    });

    test("lists one owner's records only, newest first", async (t) => {
      const { catalog } = await openCatalog(t);
      await catalog.record(sampleUpload('a1', { owner: 'alice' }));
      await catalog.record(sampleUpload('b1', { owner: 'bob' }));
      await catalog.record(sampleUpload('a2', { owner: 'alice' }));
      await catalog.record(sampleUpload('anon'));
      const ids = async (owner: string) => (await catalog.list({ limit: 10, offset: 0, owner })).map((r) => r.uploadId);
      assert.deepEqual(await ids('alice'), ['a2', 'a1']);
      assert.deepEqual(await ids('bob'), ['b1']);
      assert.deepEqual(await ids(''), ['anon']);
      assert.deepEqual(await ids("alice' OR '1'='1"), []);
      assert.equal((await catalog.get((await catalog.byUploadId('a1'))!.id))?.owner, 'alice');
    });

    test('finds the oldest duplicate of one owner by name and md5', async (t) => {
      const { catalog } = await openCatalog(t);
      if (!catalog.findDuplicate) return t.skip('no findDuplicate');
      const first = await catalog.record(sampleUpload('d1', { owner: 'alice', name: 'x.bin' }));
      await catalog.record(sampleUpload('d2', { owner: 'alice', name: 'x.bin' }));
      await catalog.record(sampleUpload('d3', { owner: 'bob', name: 'x.bin' }));
      assert.deepEqual(await catalog.findDuplicate('alice', 'x.bin', sampleUpload('d1').md5), first.record);
      assert.equal(await catalog.findDuplicate('alice', 'y.bin', sampleUpload('d1').md5), undefined);
      assert.equal(await catalog.findDuplicate('alice', 'x.bin', 'f'.repeat(32)), undefined);
      assert.equal(await catalog.findDuplicate('carol', 'x.bin', sampleUpload('d1').md5), undefined);
    });

    test('removes a record once; unknown ids of any shape remove nothing', async (t) => {
      const { catalog } = await openCatalog(t);
      const { record } = await catalog.record(sampleUpload('gone'));
      const kept = await catalog.record(sampleUpload('kept'));
      for (const id of ['999', 'abc', '', '1 OR 1=1']) assert.equal(await catalog.remove(id), false, id);
      assert.equal(await catalog.remove(record.id), true);
      assert.equal(await catalog.remove(record.id), false);
      assert.equal(await catalog.get(record.id), undefined);
      assert.equal(await catalog.byUploadId('gone'), undefined);
      assert.deepEqual(await catalog.get(kept.record.id), kept.record);
    });

    test('keeps pass-through fields in their order, with any text', async (t) => {
      const { catalog } = await openCatalog(t);
      const fields = { zeta: '1', alpha: 'ünïcødé "quoted" \\ back', mid: '' };
      const { record } = await catalog.record(sampleUpload('f', { fields }));
      assert.deepEqual(Object.keys((await catalog.get(record.id))!.fields), ['zeta', 'alpha', 'mid']);
      assert.deepEqual((await catalog.get(record.id))!.fields, fields);
    });
  });
}

const sqliteStore: CatalogStore = (t) => {
  const file = path.join(tmpDir(t), 'nested', 'dir', 'catalog.sqlite');
  return { open: async () => new SqliteCatalog(file) };
};

catalogContract('SqliteCatalog', sqliteStore);

describe('SqliteCatalog', () => {
  test('creates its directory and uses WAL mode', async (t) => {
    const file = path.join(tmpDir(t), 'a', 'b', 'catalog.sqlite');
    const catalog = new SqliteCatalog(file);
    t.after(() => catalog.close());
    await catalog.record(sampleUpload('x'));
    assert.ok(fs.existsSync(file));
    assert.ok(fs.existsSync(`${file}-wal`), 'a -wal file beside the catalog');
  });

  test("records asked for together are committed together: each caller gets its own record, a repeat the first \
one's, a failing one fails alone, and a read sees every record asked for before it", async (t) => {
    const catalog = new SqliteCatalog(path.join(tmpDir(t), 'catalog.sqlite'));
    t.after(() => catalog.close());
    const asked = Array.from({ length: 40 }, (_, i) => catalog.record(sampleUpload(`g${i}`)));
    const repeat = catalog.record(sampleUpload('g7', { name: 'other.bin' }));
    // A row the table refuses (name is NOT NULL) in the same turn as the others.
    const broken = catalog.record({ ...sampleUpload('bad'), name: null as unknown as string });
    // Read before anything was committed: it sees the records asked for.
    const seen = await catalog.byUploadId('g39');
    assert.equal(seen?.name, 'g39.bin');
    const done = await Promise.all(asked);
    assert.deepEqual(
      done.map((d) => [d.record.uploadId, d.created]),
      Array.from({ length: 40 }, (_, i) => [`g${i}`, true]),
    );
    assert.equal(new Set(done.map((d) => d.record.id)).size, 40, 'one record each');
    const again = await repeat;
    assert.equal(again.created, false);
    assert.deepEqual(again.record, done[7]!.record, "the repeat gets the first one's record");
    await assert.rejects(broken, /NOT NULL/);
    assert.equal(await catalog.byUploadId('bad'), undefined);
    assert.equal((await catalog.list({ limit: 100, offset: 0 })).length, 40);
  });

  test('a catalog that cannot be opened is a start-up error naming CATALOG_PATH', (t) => {
    const dir = tmpDir(t);
    const notADatabase = path.join(dir, 'junk.sqlite');
    fs.writeFileSync(notADatabase, 'this is not sqlite, just text long enough to fill a header page'.repeat(20));
    const underAFile = path.join(notADatabase, 'catalog.sqlite');
    for (const file of [dir, notADatabase, underAFile]) {
      assert.throws(
        () => new SqliteCatalog(file),
        (e: unknown) => {
          assert.ok(e instanceof TuspassError);
          assert.equal(e.code, ERRORS.ERR_CATALOG_OPEN.code);
          assert.match(e.message, /CATALOG_PATH=/);
          assert.ok(e.message.includes(file), e.message);
          return true;
        },
        file,
      );
    }
  });
});

const pgStore: CatalogStore = (t) => {
  let url: Promise<string> | undefined;
  return { open: async () => PgCatalog.open(await (url ??= pgDatabase(t))) };
};

catalogContract('PgCatalog', pgStore);

describe('PgCatalog', () => {
  test('migrations: numbered steps recorded once in \
schema_migrations, also when instances start together', async (t) => {
    const url = await pgDatabase(t);
    const pools = await Promise.all([openDatabase(url), openDatabase(url), openDatabase(url)]);
    t.after(() => Promise.all(pools.map((p) => p.end())));
    const rows = (await pools[0]!.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version'))
      .rows;
    assert.deepEqual(
      rows.map((r) => r.version),
      MIGRATIONS.map((m) => m.version),
    );
    assert.deepEqual(
      MIGRATIONS.map((m) => m.version),
      MIGRATIONS.map((_, i) => i + 1),
      'numbered 1, 2, 3…',
    );
  });

  test('a database that does not answer is an engine away, one that does not exist a wrong setting: each names \
DATABASE_URL, without the password', async () => {
    const cases = [
      { url: 'postgres://postgres:s3cret@127.0.0.1:1/test', kind: EngineUnavailableError },
      { url: 'postgres://postgres:s3cret@127.0.0.1:5432/no_such_database_here', kind: ConfigError },
    ];
    for (const { url, kind } of cases) {
      await assert.rejects(
        PgCatalog.open(url),
        (e: unknown) => {
          assert.ok(e instanceof kind, String(e));
          assert.match(e.message, /DATABASE_URL/);
          assert.doesNotMatch(e.message, /s3cret/);
          return true;
        },
        url,
      );
    }
  });
});
