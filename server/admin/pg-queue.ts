// `tuspass queue list | retry ID | drop ID` with DATABASE_URL: the notices are rows in PostgreSQL
// (hooks/pg-queue.ts), shared by every instance. A retried row is due now (an instance takes it at its
// next look, within a second); a dropped row is gone for all. A row being delivered right now is
// locked by its deliverer: retry and drop wait for that delivery to settle (at most COMPLETION_TIMEOUT).
import { openDatabase, redactUrl } from '../backends/pg/database.ts';
import type { Notice } from '../../hooks/notices.ts';
import type { NoticeRow } from '../../hooks/pg-queue.ts';
import { ADMIN_EXIT, printJson, UsageError } from './output.ts';
import { describe, printNotices, rowOf } from './notice-rows.ts';

const noticeOf = (r: NoticeRow): Notice => ({
  id: r.id,
  kind: r.kind,
  payload: r.payload,
  attempts: r.attempts,
  createdAt: r.created_at.toISOString(),
  nextAt: r.next_at.getTime(),
  ...(r.last_error === null ? {} : { lastError: r.last_error }),
});

export async function pgQueueCommand(
  url: string,
  sub: string | undefined,
  positional: string[],
  json: boolean,
): Promise<number> {
  if (sub !== 'list' && sub !== 'retry' && sub !== 'drop')
    throw new UsageError(sub ? `unknown queue command "${sub}"` : 'queue needs a command');
  if (sub === 'list' && positional.length) throw new UsageError(`queue list takes no argument, got "${positional[0]}"`);
  if (sub !== 'list' && positional.length !== 1)
    throw new UsageError(`queue ${sub} takes one notice id (see tuspass queue list)`);
  const pool = await openDatabase(url);
  try {
    const where = `PostgreSQL (${redactUrl(url)})`;
    if (sub === 'list') {
      const rows = (await pool.query<NoticeRow>('SELECT * FROM notices ORDER BY created_at, id')).rows;
      return printNotices(
        rows.map((r) => rowOf(noticeOf(r))),
        json,
        where,
      );
    }
    const id = positional[0]!;
    const r =
      sub === 'retry'
        ? await pool.query<NoticeRow>('UPDATE notices SET next_at = now() WHERE id = $1 RETURNING *', [id])
        : await pool.query<NoticeRow>('DELETE FROM notices WHERE id = $1 RETURNING *', [id]);
    const found = r.rows[0];
    if (!found) {
      process.stderr.write(
        `tuspass queue ${sub}: no notice ${id} in ${where} (tuspass queue list shows what is queued)\n`,
      );
      return ADMIN_EXIT.FAILED;
    }
    const row = rowOf(noticeOf(found));
    if (sub === 'retry') {
      if (json) printJson({ retried: row });
      else
        process.stdout.write(
          `notice ${id} (${describe(row)}) is due now; a running instance tries it within a second\n`,
        );
    } else {
      const unheard =
        '; the completion service will not hear of upload ' + `${row.uploadId ?? '?'} unless it is announced again`;
      if (json) printJson({ dropped: row });
      else
        process.stdout.write(`dropped notice ${id} (${describe(row)})${row.kind === 'complete-form' ? unheard : ''}\n`);
    }
    return ADMIN_EXIT.OK;
  } finally {
    await pool.end();
  }
}
