// A queued notice as the admin commands show it, for both engines (files: queue.ts; PostgreSQL: pg-queue.ts).
import type { Notice } from '../../hooks/notices.ts';
import { ADMIN_EXIT, printJson, span, table } from './output.ts';

export interface NoticeRow {
  id: string;
  kind: string;
  /** The upload the notice is about, when its payload names one. */
  uploadId?: string;
  attempts: number;
  createdAt: string;
  nextAt: string;
  lastError?: string;
}

function uploadIdOf(payload: unknown): string | undefined {
  const p = payload as { uploadId?: unknown; request?: { Event?: { Upload?: { ID?: unknown } } } } | undefined;
  const id = p?.uploadId ?? p?.request?.Event?.Upload?.ID;
  return typeof id === 'string' && id ? id : undefined;
}

export function rowOf(notice: Notice): NoticeRow {
  return {
    id: notice.id,
    kind: notice.kind,
    uploadId: uploadIdOf(notice.payload),
    attempts: notice.attempts,
    createdAt: notice.createdAt,
    nextAt: new Date(notice.nextAt).toISOString(),
    lastError: notice.lastError,
  };
}

export const describe = (r: NoticeRow) =>
  `${r.kind}${r.uploadId ? `, upload ${r.uploadId}` : ''}, ${r.attempts} ` +
  `attempt(s)${r.lastError ? `, last error: ${r.lastError}` : ''}`;

/** `queue list` output, for both engines: a table (or JSON) of the notices, oldest first. */
export function printNotices(rows: NoticeRow[], json: boolean, where: string): number {
  if (json) return (printJson(rows), ADMIN_EXIT.OK);
  if (!rows.length) return (process.stdout.write(`no notices queued in ${where}\n`), ADMIN_EXIT.OK);
  const now = Date.now();
  process.stdout.write(
    table(
      ['ID', 'KIND', 'UPLOAD', 'ATTEMPTS', 'NEXT TRY', 'AGE', 'LAST ERROR'],
      rows.map((r) => {
        const next = Date.parse(r.nextAt) - now;
        return [
          r.id,
          r.kind,
          r.uploadId ?? '-',
          String(r.attempts),
          next <= 0 ? 'due' : `in ${span(next)}`,
          span(now - Date.parse(r.createdAt)),
          r.lastError ?? '-',
        ];
      }),
    ),
  );
  return ADMIN_EXIT.OK;
}
