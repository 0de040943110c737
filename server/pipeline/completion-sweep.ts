// Finished uploads nobody announced are announced, without waiting for any restart. An upload's
// completion (hooks answered, form delivered or queued) is noted by the store once handled (the file
// store's completion journal, the S3 store's record in the bucket); until then the instance whose
// write completed it holds its claim (completion-claims.ts). When that instance dies first, its
// claims end with their lease (REDIS_LOCK_TTL), and the next sweep of any instance announces the
// upload: every instance sweeps every COMPLETION_SWEEP, one at a time (the sweep's own claim), taking
// over each finished upload not noted handled whose completion no live instance holds. The
// completion service drops a repeated form by upload id: one record each.
// At start, the uploads left unannounced from before are handled the same way (announce()).
import { errorText, type Log } from '../../core/logger.ts';
import { SWEEP_CLAIM, type Claims } from '../backends/locker/claims.ts';
import type { UploadStore } from '../backends/store/upload-store.ts';
import { TUS_PATH } from '../http/tus-headers.ts';
import type { UploadEvents } from './upload-events.ts';

export interface SweepDeps {
  /** The store of the uploads, the file store or the S3 store: each notes handled completions its own way. */
  store: Pick<UploadStore, 'getUpload' | 'concatOf' | 'unannounced' | 'takeOverCompletion'>;
  events: UploadEvents;
  claims: Claims;
  /** COMPLETION_SWEEP, in ms. */
  everyMs: number;
  log: Log;
}

/** Handles the completion of a finished upload nobody handled; failures go on in the background (UploadEvents). */
async function announceOne(
  id: string,
  store: Pick<UploadStore, 'getUpload' | 'concatOf'>,
  events: UploadEvents,
  log: Log,
  why: string,
): Promise<void> {
  try {
    const upload = await store.getUpload(id);
    log(`completion: upload ${id} ${why}; handling its completion now`, { event: 'completion.resumed', upload_id: id });
    await events.finish(
      { Method: 'PATCH', URI: `${TUS_PATH}/${id}`, RemoteAddr: '', Header: {} },
      upload,
      await store.concatOf(id),
    );
  } catch (e) {
    log(`completion: upload ${id}: ${errorText(e)}`);
  }
}

/**
 * Uploads complete on disk and missing from the journal at start, announced one after the other in
 * the background. On a shared store (claims) each is taken over first: another instance may be
 * handling it right now.
 */
export function announce(
  ids: readonly string[],
  store: Pick<UploadStore, 'getUpload' | 'concatOf' | 'takeOverCompletion'>,
  events: UploadEvents,
  log: Log,
  shared: boolean,
): void {
  // Said at every start, none or some: what this start announces is known before any is handled.
  log(
    `completion: ${ids.length} upload(s) finished before the last stop without their completion ` +
      `handled${ids.length ? '; handling them now' : ''}`,
    { event: 'completion.awaiting', count: ids.length, upload_ids: ids.slice(0, 1000) },
  );
  void (async () => {
    for (const id of ids) {
      if (shared && !(await store.takeOverCompletion(id).catch(() => false))) continue;
      await announceOne(id, store, events, log, 'finished before the last stop');
    }
  })();
}

/** One sweep, if no other instance sweeps now; how many uploads it took over. */
async function sweepOnce(deps: SweepDeps): Promise<number> {
  const turn = await deps.claims.claim(SWEEP_CLAIM);
  if (!turn) return 0;
  let taken = 0;
  try {
    for (const id of await deps.store.unannounced()) {
      if (deps.events.completionPending(id)) continue;
      if (!(await deps.store.takeOverCompletion(id))) continue;
      taken++;
      await announceOne(
        id,
        deps.store,
        deps.events,
        deps.log,
        'was finished and never announced (its instance stopped before)',
      );
    }
  } finally {
    await turn.release();
  }
  return taken;
}

/** Sweeps every `everyMs` (each sweep scheduled when the last one ended); returns a function that stops it. */
export function startCompletionSweep(deps: SweepDeps): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  /** The last failure logged: an outage is reported once, not at every sweep. */
  let lastFailure = '';
  const sweep = () => {
    sweepOnce(deps)
      .then(
        (n) => {
          lastFailure = '';
          if (n)
            deps.log(`completion sweep: took over ${n} finished upload(s) nobody had announced`, {
              event: 'completion.swept',
              count: n,
            });
        },
        (e: Error) => {
          if (e.message !== lastFailure)
            deps.log(`completion sweep: skipped (${e.message}); trying again in ${deps.everyMs} ms`, { level: 'warn' });
          lastFailure = e.message;
        },
      )
      .finally(() => {
        if (stopped) return;
        timer = setTimeout(sweep, deps.everyMs);
        timer.unref();
      });
  };
  timer = setTimeout(sweep, deps.everyMs);
  timer.unref();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
