// The completion journal on PostgreSQL (DATABASE_URL): which finished uploads have been announced,
// one row each, shared by every instance on the store — so an instance starting up does not announce
// again what another one already did, and one instance's record survives that instance.
// The same contract as the file journal (completion-journal.ts); the schema: server/backends/pg/database.ts.
import type pg from 'pg';
import type { Journal } from './completion-journal.ts';

export class PgCompletionJournal implements Journal {
  /** When ids() last read the table: compact() leaves younger rows alone (uploads finished since the store was
   * listed). */
  private readAt: string | undefined;

  constructor(private readonly pool: pg.Pool) {}

  async handled(id: string): Promise<void> {
    // Handled twice (two instances finishing the same upload's completion): still one row.
    await this.pool.query(
      'INSERT INTO completions_handled (upload_id) VALUES ($1) ON CONFLICT (upload_id) DO NOTHING',
      [id],
    );
  }

  async ids(): Promise<Set<string>> {
    // The database's clock, not this machine's: handled_at is written by it too. As text: a JS Date
    // would cut the microseconds, and a row handled in the same millisecond would never be compacted.
    const r = await this.pool.query<{ at: string; ids: string[] | null }>(
      'SELECT now()::text AS at, array_agg(upload_id) AS ids FROM completions_handled',
    );
    this.readAt = r.rows[0]!.at;
    return new Set(r.rows[0]!.ids ?? []);
  }

  async has(id: string): Promise<boolean> {
    return (await this.pool.query('SELECT 1 FROM completions_handled WHERE upload_id = $1', [id])).rowCount === 1;
  }

  /**
   * Forgets uploads no longer stored. Only rows from before the last ids(): on a shared store, other
   * instances go on finishing uploads this one's listing did not see, and those rows must stay.
   */
  async compact(keep: Set<string>): Promise<void> {
    await this.pool.query(
      'DELETE FROM completions_handled WHERE handled_at < $1::timestamptz AND NOT (upload_id = ANY($2::text[]))',
      [this.readAt ?? '-infinity', [...keep]],
    );
  }

  close(): void {
    // The pool is the process's (server/start/start.ts ends it).
  }
}
