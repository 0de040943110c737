// The catalog on PostgreSQL (DATABASE_URL): what several completion services (or `tuspass start`
// instances) share. The same contract as SqliteCatalog (test/catalog-contract.test.ts runs against
// both); UNIQUE(upload_id) with ON CONFLICT DO NOTHING is again what makes a repeated notice
// harmless, across connections and instances. The schema comes from server/backends/pg/database.ts.
import type pg from 'pg';
import { ERRORS, TuspassError } from '../../../core/errors.ts';
import { openDatabase } from '../pg/database.ts';
import type { StartupWait } from '../engine-wait.ts';
import type { Catalog, ListOptions, NewUploadRecord, UploadRecord } from './catalog.ts';

interface Row {
  id: string;
  upload_id: string;
  name: string;
  /** BIGINT comes back as a string (pg does not guess at precision). */
  size: string;
  md5: string;
  sha1: string | null;
  crc32: string | null;
  content_type: string;
  path: string;
  fields: Record<string, string>;
  owner: string;
  created_at: Date;
}

function toRecord(row: Row): UploadRecord {
  return {
    id: String(row.id),
    uploadId: row.upload_id,
    name: row.name,
    size: Number(row.size),
    md5: row.md5,
    ...(row.sha1 === null ? {} : { sha1: row.sha1 }),
    ...(row.crc32 === null ? {} : { crc32: row.crc32 }),
    contentType: row.content_type,
    path: row.path,
    fields: row.fields,
    owner: row.owner,
    createdAt: row.created_at.toISOString(),
  };
}

/** Catalog ids are decimal BIGSERIALs; anything else names no record (and never reaches SQL as text). */
const isId = (id: string) => /^\d{1,15}$/.test(id);

/**
 * Every query goes through here: a database that does not answer is a 503 (ERR_CATALOG_UNAVAILABLE),
 * never a 500 — the upload server deletes an upload whose form gets a CLEANUP_STATUSES answer (500 is
 * one by default) and queues it on a 503, to be recorded when PostgreSQL is back.
 */
async function q<R extends pg.QueryResultRow>(
  pool: pg.Pool,
  sql: string,
  params: unknown[],
): Promise<pg.QueryResult<R>> {
  try {
    return await pool.query<R>(sql, params);
  } catch (e) {
    // A value PostgreSQL will never keep — a data exception (class 22) or past a limit (class 54: a
    // name too long for its index) — is the form's fault, not an unavailable catalog: queued, it
    // would be retried forever and its upload left pending; refused, the upload goes (CLEANUP_STATUSES).
    const state = (e as { code?: unknown }).code;
    if (typeof state === 'string' && /^(22|54)/.test(state)) {
      throw new TuspassError(
        ERRORS.ERR_FORM_FIELD_INVALID,
        'a field of the form cannot be recorded (too long, or not text)',
        (e as Error).message,
      );
    }
    throw new TuspassError(ERRORS.ERR_CATALOG_UNAVAILABLE, undefined, (e as Error).message);
  }
}

export class PgCatalog implements Catalog {
  /** @param ownsPool close() ends the pool (false when the process shares it with the queue and journal). */
  constructor(
    private readonly pool: pg.Pool,
    private readonly ownsPool = false,
  ) {}

  /** Connects and migrates; a database that cannot be used is a ConfigError naming DATABASE_URL (exit 78). */
  /** `wait`: at start, a database that does not answer yet is waited for (server/backends/engine-wait.ts). */
  static async open(url: string, wait?: StartupWait): Promise<PgCatalog> {
    return new PgCatalog(await openDatabase(url, { wait }), true);
  }

  async record(upload: NewUploadRecord): Promise<{ record: UploadRecord; created: boolean }> {
    // The loser of a race waits for the winner's commit, inserts nothing and reads the winner's row.
    const inserted = await q<Row>(
      this.pool,
      `INSERT INTO uploads (upload_id, name, size, md5, sha1, crc32, content_type, path, fields, owner, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
       ON CONFLICT (upload_id) DO NOTHING RETURNING *`,
      [
        upload.uploadId,
        upload.name,
        upload.size,
        upload.md5,
        upload.sha1 ?? null,
        upload.crc32 ?? null,
        upload.contentType,
        upload.path,
        JSON.stringify(upload.fields),
        upload.owner ?? '',
        new Date(),
      ],
    );
    if (inserted.rows[0]) return { record: toRecord(inserted.rows[0]), created: true };
    const existing = await this.byUploadId(upload.uploadId);
    if (!existing) throw new Error(`catalog: upload ${upload.uploadId} neither inserted nor found`);
    return { record: existing, created: false };
  }

  async get(id: string): Promise<UploadRecord | undefined> {
    if (!isId(id)) return undefined;
    const row = (await q<Row>(this.pool, 'SELECT * FROM uploads WHERE id = $1', [id])).rows[0];
    return row && toRecord(row);
  }

  async byUploadId(uploadId: string): Promise<UploadRecord | undefined> {
    const row = (await q<Row>(this.pool, 'SELECT * FROM uploads WHERE upload_id = $1', [uploadId])).rows[0];
    return row && toRecord(row);
  }

  async list({ limit, offset, owner }: ListOptions): Promise<UploadRecord[]> {
    // id breaks ties between records made in the same millisecond.
    const rows =
      owner === undefined
        ? await q<Row>(this.pool, 'SELECT * FROM uploads ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2', [
            limit,
            offset,
          ])
        : await q<Row>(
            this.pool,
            'SELECT * FROM uploads WHERE owner = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3',
            [owner, limit, offset],
          );
    return rows.rows.map(toRecord);
  }

  async findDuplicate(owner: string, name: string, md5: string): Promise<UploadRecord | undefined> {
    const row = (
      await q<Row>(this.pool, 'SELECT * FROM uploads WHERE owner = $1 AND md5 = $2 AND name = $3 ORDER BY id LIMIT 1', [
        owner,
        md5,
        name,
      ])
    ).rows[0];
    return row && toRecord(row);
  }

  async remove(id: string): Promise<boolean> {
    if (!isId(id)) return false;
    return ((await q(this.pool, 'DELETE FROM uploads WHERE id = $1', [id])).rowCount ?? 0) > 0;
  }

  async close(): Promise<void> {
    if (this.ownsPool && !this.closed) {
      this.closed = true;
      await this.pool.end();
    }
  }

  private closed = false;
}
