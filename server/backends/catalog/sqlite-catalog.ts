// The default catalog: one SQLite file (CATALOG_PATH), WAL mode so that readers (the page's list,
// downloads) do not wait for a writer. UNIQUE(upload_id) is what makes a repeated notice harmless,
// also when a second process shares the file.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { ConfigError } from '../../config/config.ts';
import { ERRORS, TuspassError } from '../../../core/errors.ts';
import { PRIVATE_MODES } from '../../../core/file-modes.ts';
import { makeDirectory } from '../../../core/make-directory.ts';
import type { Catalog, ListOptions, NewUploadRecord, UploadRecord } from './catalog.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS uploads (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  upload_id    TEXT NOT NULL UNIQUE,
  name         TEXT NOT NULL,
  size         INTEGER NOT NULL,
  md5          TEXT NOT NULL,
  sha1         TEXT,
  crc32        TEXT,
  content_type TEXT NOT NULL,
  path         TEXT NOT NULL,
  fields       TEXT NOT NULL,
  created_at   TEXT NOT NULL,
  owner        TEXT NOT NULL DEFAULT ''
);`;

/** Columns added since the first schema, for catalogs made before them (CREATE TABLE IF NOT EXISTS keeps an old table
 * as it is). */
const MIGRATIONS: Array<{ column: string; sql: string }> = [
  // Ownership: records made before have no owner, i.e. only admins see them once auth is on.
  { column: 'owner', sql: "ALTER TABLE uploads ADD COLUMN owner TEXT NOT NULL DEFAULT ''" },
];

function migrate(db: Database.Database): void {
  const have = new Set((db.prepare('PRAGMA table_info(uploads)').all() as Array<{ name: string }>).map((c) => c.name));
  for (const m of MIGRATIONS) if (!have.has(m.column)) db.exec(m.sql);
  db.exec('CREATE INDEX IF NOT EXISTS uploads_owner ON uploads (owner, created_at)');
}

interface Row {
  id: number;
  upload_id: string;
  name: string;
  size: number;
  md5: string;
  sha1: string | null;
  crc32: string | null;
  content_type: string;
  path: string;
  fields: string;
  created_at: string;
  owner: string;
}

function toRecord(row: Row): UploadRecord {
  return {
    id: String(row.id),
    uploadId: row.upload_id,
    name: row.name,
    size: row.size,
    md5: row.md5,
    ...(row.sha1 === null ? {} : { sha1: row.sha1 }),
    ...(row.crc32 === null ? {} : { crc32: row.crc32 }),
    contentType: row.content_type,
    path: row.path,
    fields: JSON.parse(row.fields) as Record<string, string>,
    owner: row.owner,
    createdAt: row.created_at,
  };
}

/** Opens the file, creating its directory and schema. Problems name CATALOG_PATH so start-up says what to fix. */
function open(file: string, mode: number): Database.Database {
  let db: Database.Database | undefined;
  try {
    makeDirectory(path.dirname(file));
    // Created with its mode before SQLite opens it (SQLite makes -wal and -shm with the database's
    // mode), and set on a catalog an earlier version left 0644: records name every stored file.
    fs.closeSync(fs.openSync(file, 'a', mode));
    for (const f of [file, `${file}-wal`, `${file}-shm`]) {
      try {
        if ((fs.statSync(f).mode & 0o777) !== mode) fs.chmodSync(f, mode);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
    db = new Database(file);
    // The first statements are where "file is not a database" shows, so they belong inside the try.
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 5000');
    // WAL's recommended level, said outright: commits are not fsynced one by one. A power cut may
    // lose the last records (the uploads' bytes are not fsynced either); a crash of the process loses none.
    db.pragma('synchronous = NORMAL');
    db.exec(SCHEMA);
    migrate(db);
    return db;
  } catch (e) {
    db?.close();
    throw new TuspassError(ERRORS.ERR_CATALOG_OPEN, `CATALOG_PATH=${file}: ${(e as Error).message}`);
  }
}

/** What recording an upload answers: its record, and whether this call made it. */
type Recorded = Awaited<ReturnType<Catalog['record']>>;

/** A record asked for and not yet committed, with its caller's answer. */
interface WaitingRecord {
  /** The statement's parameters: the record as columns. */
  row: Omit<NewUploadRecord, 'fields' | 'sha1' | 'crc32' | 'owner'> & {
    fields: string;
    sha1: string | null;
    crc32: string | null;
    owner: string;
    createdAt: string;
  };
  resolve(done: Recorded): void;
  reject(e: unknown): void;
}

export class SqliteCatalog implements Catalog {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private readonly selectById: Database.Statement;
  private readonly selectByUploadId: Database.Statement;
  private readonly selectPage: Database.Statement;
  private readonly selectOwnersPage: Database.Statement;
  private readonly deleteById: Database.Statement;
  private readonly selectDuplicate: Database.Statement;
  /** Inserts rows in one transaction (rolled back whole when one fails). */
  private readonly insertAll: (rows: Array<WaitingRecord['row']>) => Array<Recorded>;
  /** Records asked for since the last commit. */
  private waiting: WaitingRecord[] = [];

  constructor(
    readonly file: string,
    mode = PRIVATE_MODES.file,
  ) {
    this.db = open(file, mode);
    // ON CONFLICT DO NOTHING instead of catching the constraint error: the loser of a race gets no row
    // back and reads the winner's record.
    this.insert = this.db.prepare(`INSERT INTO uploads
      (upload_id, name, size, md5, sha1, crc32, content_type, path, fields, created_at, owner)
      VALUES (@uploadId, @name, @size, @md5, @sha1, @crc32, @contentType, @path, @fields, @createdAt, @owner)
      ON CONFLICT(upload_id) DO NOTHING RETURNING *`);
    this.selectById = this.db.prepare('SELECT * FROM uploads WHERE id = ?');
    this.selectByUploadId = this.db.prepare('SELECT * FROM uploads WHERE upload_id = ?');
    // id breaks ties between records made in the same millisecond.
    this.selectPage = this.db.prepare('SELECT * FROM uploads ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?');
    this.selectOwnersPage = this.db.prepare(
      'SELECT * FROM uploads WHERE owner = ? ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?',
    );
    this.deleteById = this.db.prepare('DELETE FROM uploads WHERE id = ?');
    this.selectDuplicate = this.db.prepare(
      'SELECT * FROM uploads WHERE owner = ? AND md5 = ? AND name = ? ORDER BY id LIMIT 1',
    );
    this.insertAll = this.db.transaction((rows: Array<WaitingRecord['row']>) => rows.map((r) => this.insertOne(r)));
  }

  /**
   * Records arriving together are committed together (group commit): one transaction for the records
   * of one turn of the event loop instead of one each, so a burst of small uploads pays the commit's
   * locks and WAL page writes once per batch rather than once per record. Each caller still gets its
   * own outcome; every read first commits what is waiting, so a record is seen as soon as it was asked for.
   */
  record(upload: NewUploadRecord): Promise<Recorded> {
    return new Promise((resolve, reject) => {
      const row = {
        ...upload,
        sha1: upload.sha1 ?? null,
        crc32: upload.crc32 ?? null,
        fields: JSON.stringify(upload.fields),
        owner: upload.owner ?? '',
        createdAt: new Date().toISOString(),
      };
      this.waiting.push({ row, resolve, reject });
      if (this.waiting.length === 1) setImmediate(() => this.commitWaiting());
    });
  }

  private insertOne(row: WaitingRecord['row']): Recorded {
    const inserted = this.insert.get(row) as Row | undefined;
    if (inserted) return { record: toRecord(inserted), created: true };
    const existing = this.selectByUploadId.get(row.uploadId) as Row | undefined;
    if (!existing) throw new Error(`catalog: upload ${row.uploadId} neither inserted nor found`);
    return { record: toRecord(existing), created: false };
  }

  /** Commits the records waiting, in one transaction; when that fails, one by one, so each gets its own answer. */
  private commitWaiting(): void {
    const batch = this.waiting;
    if (batch.length === 0) return;
    this.waiting = [];
    let done: Array<Recorded>;
    try {
      done = this.insertAll(batch.map((w) => w.row));
    } catch {
      for (const w of batch) {
        try {
          w.resolve(this.insertOne(w.row));
        } catch (e) {
          w.reject(e);
        }
      }
      return;
    }
    batch.forEach((w, i) => w.resolve(done[i]!));
  }

  async get(id: string): Promise<UploadRecord | undefined> {
    this.commitWaiting();
    // Catalog ids are decimal integers here; anything else cannot name a record.
    if (!/^\d{1,15}$/.test(id)) return undefined;
    const row = this.selectById.get(Number(id)) as Row | undefined;
    return row && toRecord(row);
  }

  async byUploadId(uploadId: string): Promise<UploadRecord | undefined> {
    this.commitWaiting();
    const row = this.selectByUploadId.get(uploadId) as Row | undefined;
    return row && toRecord(row);
  }

  async list({ limit, offset, owner }: ListOptions): Promise<UploadRecord[]> {
    this.commitWaiting();
    const rows =
      owner === undefined ? this.selectPage.all(limit, offset) : this.selectOwnersPage.all(owner, limit, offset);
    return (rows as Row[]).map(toRecord);
  }

  async findDuplicate(owner: string, name: string, md5: string): Promise<UploadRecord | undefined> {
    this.commitWaiting();
    const row = this.selectDuplicate.get(owner, md5, name) as Row | undefined;
    return row && toRecord(row);
  }

  async remove(id: string): Promise<boolean> {
    this.commitWaiting();
    if (!/^\d{1,15}$/.test(id)) return false;
    return this.deleteById.run(Number(id)).changes > 0;
  }

  async close(): Promise<void> {
    if (!this.db.open) return;
    this.commitWaiting();
    this.db.close();
  }
}

/**
 * The catalog for a starting server: one that cannot be opened (a read-only or missing location, a
 * file that is not a database) is a configuration error naming CATALOG_PATH — exit 78, no stack —
 * like every other setting that is wrong at start.
 */
export function openCatalog(file: string, mode = PRIVATE_MODES.file): SqliteCatalog {
  try {
    return new SqliteCatalog(file, mode);
  } catch (e) {
    if (e instanceof TuspassError && e.code === ERRORS.ERR_CATALOG_OPEN.code)
      throw new ConfigError([e.message.slice(e.message.indexOf('CATALOG_PATH='))]);
    throw e;
  }
}
