// What a failed write answers. A full disk is 507 wherever it is met (the free-space ledger notes it
// saw the disk full, for admission.ts); any other error passes as it is.
import { ERRORS as TUS_ERRORS } from '@tus/utils';
import { TuspassError } from '../../../core/errors.ts';
import { isNoSpace, storageFull, type SpaceLedger } from './space-ledger.ts';

/** 507 for a full disk met while `doing` (said in the log); any other error as it is. */
export function fullDiskAnswer(space: SpaceLedger, e: unknown, doing: string): unknown {
  if (!isNoSpace(e)) return e;
  space.sawFull(doing);
  return storageFull();
}

/**
 * What a failed append answers: 507 for a full disk — "A PATCH that still meets ENOSPC answers 507,
 * keeps what was written" (the file keeps every byte written; its size is the offset a HEAD
 * reports) — and otherwise @tus/utils' write error (FILE_WRITE_ERROR), with the cause kept for the log.
 */
export function writeFailure(space: SpaceLedger, id: string, failure: unknown): unknown {
  if (failure instanceof TuspassError) return failure;
  if (isNoSpace(failure)) return fullDiskAnswer(space, failure, `writing upload ${id}, the bytes written so far kept`);
  return { ...TUS_ERRORS.FILE_WRITE_ERROR, cause: failure };
}
