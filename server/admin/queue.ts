// `tuspass queue list | retry ID | drop ID`: the durable notice queue, DATA_DIR/queue, one JSON file
// per notice (hooks/queue.ts). Works with the server stopped or running: retry and drop change the
// notice's file and leave a marker (<id>.retry, <id>.drop) that a running server's queue watches for,
// so it acts at once; a stopped server finds every notice due at its next start anyway.
import fs from 'node:fs';
import path from 'node:path';
import { PRIVATE_MODES, writeAtomicallySync } from '../../core/file-modes.ts';
import { DROP_MARK, RETRY_MARK } from '../../hooks/queue.ts';
import { NOTICE_ID, type Notice } from '../../hooks/notices.ts';
import { describe, printNotices, rowOf, type NoticeRow } from './notice-rows.ts';
import { ADMIN_EXIT, parseAdminArgs, printJson, UsageError } from './output.ts';

const queueDir = (dataDir: string) => path.join(dataDir, 'queue');

function readNotice(file: string): Notice | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Notice;
  } catch {
    return undefined;
  }
}

export function listNotices(dataDir: string): NoticeRow[] {
  let names: string[];
  try {
    names = fs.readdirSync(queueDir(dataDir));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const rows: NoticeRow[] = [];
  for (const name of names) {
    if (!name.endsWith('.json')) continue;
    const notice = readNotice(path.join(queueDir(dataDir), name));
    if (notice) rows.push(rowOf(notice));
  }
  return rows.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

function noticeFile(dataDir: string, id: string | undefined): string {
  if (!id || !NOTICE_ID.test(id))
    throw new UsageError(`expected a notice id (letters, digits, _ . -), got ${JSON.stringify(id ?? '')}`);
  return path.join(queueDir(dataDir), `${id}.json`);
}

export function queueCommand(args: readonly string[]): number | Promise<number> {
  const [sub, ...rest] = args;
  const { config, json, positional } = parseAdminArgs(rest);
  // DATABASE_URL: the queue is PostgreSQL's notices table, shared by the instances (pg-queue.ts).
  if (config.databaseUrl)
    return import('./pg-queue.ts').then((m) => m.pgQueueCommand(config.databaseUrl!, sub, positional, json));
  const dir = queueDir(config.dataDir);
  if (sub === 'list') {
    if (positional.length) throw new UsageError(`queue list takes no argument, got "${positional[0]}"`);
    return printNotices(listNotices(config.dataDir), json, dir);
  }
  if (sub === 'retry' || sub === 'drop') {
    if (positional.length !== 1) throw new UsageError(`queue ${sub} takes one notice id (see tuspass queue list)`);
    const file = noticeFile(config.dataDir, positional[0]);
    const notice = readNotice(file);
    if (!notice) {
      process.stderr.write(
        `tuspass queue ${sub}: no notice ${positional[0]} in ${dir} (tuspass queue list shows what is queued)\n`,
      );
      return ADMIN_EXIT.FAILED;
    }
    const row = rowOf(notice);
    if (sub === 'retry') {
      // Written beside and renamed, as the queue writes its notices: never a half-written file. The temp
      // file is named by process: a running server's queue may be saving the same notice right now.
      writeAtomicallySync(
        file,
        JSON.stringify({ ...notice, nextAt: Date.now() }),
        PRIVATE_MODES.file,
        `${file}.${process.pid}.tmp`,
      );
      fs.writeFileSync(path.join(dir, notice.id + RETRY_MARK), '');
      if (json) printJson({ retried: { ...row, nextAt: new Date().toISOString() } });
      else
        process.stdout.write(
          `notice ${notice.id} (${describe(row)}) is due now; a running server tries it at once, a stopped one at ` +
            'its next start\n',
        );
    } else {
      fs.rmSync(file);
      // A running server drops it from its index at once (and from what QUEUE_MAX counts).
      fs.writeFileSync(path.join(dir, notice.id + DROP_MARK), '');
      const unheard =
        '; the completion service will not hear of upload ' + `${row.uploadId ?? '?'} unless it is announced again`;
      if (json) printJson({ dropped: row });
      else
        process.stdout.write(
          `dropped notice ${notice.id} (${describe(row)})${notice.kind === 'complete-form' ? unheard : ''}\n`,
        );
    }
    return ADMIN_EXIT.OK;
  }
  throw new UsageError(sub ? `unknown queue command "${sub}"` : 'queue needs a command');
}
