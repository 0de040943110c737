// The one completion deliverer: every front-end's finished upload (tus and the IETF draft through the
// built-in complete-form hook, hook.ts; a multipart request and a resumable session's file through
// server/upload/nginx/completion.ts) reaches the completion service here. It sends the form
// (post.ts: signed over HTTP to COMPLETION_URL, or a direct call to the service of this process),
// classifies the answer, counts and logs it, and when the app cannot take the form now queues it
// durably under one kind and retries it until it is taken — as nginx relays the backend behind
// `upload_pass`:
// - delivered (2xx, or 3xx): the app's status and body (and a redirect's Location) are the client's;
// - rejected (a CLEANUP_STATUSES status): the upload is refused; during the request the front-end
//   removes it (as it removes an upload a pre-finish hook refuses), after the request the deliverer;
// - unreachable or 502/503/504: the upload is kept, the form queued and retried; the client's
//   answer is 204 with `Tuspass-Completion: pending`.
// Its answer is the hook contract's (HookResponse): the complete-form hook returns it as it is.
import { ERRORS, TuspassError } from '../../core/errors.ts';
import { errorText, type Log } from '../../core/logger.ts';
import { COMPLETION_HEADER } from '../../core/wire.ts';
import type { Notices } from '../../hooks/notices.ts';
import type { HookResponse } from '../../hooks/types.ts';
import { completionNotices } from '../ops/metrics.ts';
import { postForm, type PostTarget } from './post.ts';

/** The queue kind of every completion form, whichever front-end's. */
export const COMPLETION_KIND = 'complete-form';
/** The kind a multipart request's form was queued under by earlier versions: still delivered after an upgrade. */
const EARLIER_MULTIPART_KIND = 'complete-multipart';

/** A form as the queue keeps it. `uploadId` is the first (or only) upload, which the admin commands show. */
interface QueuedForm {
  uploadId?: string;
  /** Every upload of a multipart request's form (one upload: absent). */
  uploadIds?: string[];
  form: string;
}

export interface CompletionDelivery {
  form: URLSearchParams;
  /** The uploads the form announces (a multipart request's files), the first naming the form. */
  uploadIds: readonly string[];
  /** The request that finished them, for the log. */
  requestId?: string;
  /** What the client is told becomes of the uploads when the form can be neither sent nor queued (a full disk). */
  whenUnqueued: string;
}

export interface DelivererDeps {
  target: PostTarget;
  queue: Notices;
  /** Removes an upload the app rejected after its request was answered (a queued form's). */
  removeUpload(id: string): Promise<void>;
  log: Log;
}

/** `upload <id>'s form`, or a multipart request's `form of <id>, <id>`: how log lines name a form. */
const formName = (ids: readonly string[]) =>
  ids.length === 1 ? `upload ${ids[0]}'s form` : `form of ${ids.join(', ')}`;

export class CompletionDeliverer {
  constructor(private readonly deps: DelivererDeps) {
    const deliverQueued = async (notice: { id: string; attempts: number; payload: unknown }) => {
      const queued = notice.payload as QueuedForm;
      const ids = queued.uploadIds ?? [queued.uploadId ?? ''];
      const outcome = await postForm(deps.target, new URLSearchParams(queued.form), ids[0]!, notice.id);
      if (outcome.kind === 'retry') return { done: false as const, error: outcome.error };
      completionNotices.labels(outcome.kind).inc();
      const attempts = notice.attempts + 1;
      deps.log(
        `completion: ${formName(ids)} ${outcome.kind} (${outcome.status}) after ${attempts} \
attempts${outcome.kind === 'rejected' ? '; removing the upload' : ''}`,
        {
          event: `completion.${outcome.kind}`,
          upload_id: ids[0],
          notice_id: notice.id,
          attempts,
          status: outcome.status,
        },
      );
      if (outcome.kind === 'rejected') {
        for (const id of ids)
          await deps
            .removeUpload(id)
            .catch((e: unknown) => deps.log(`completion: removing upload ${id}: ${errorText(e)}`));
      }
      return { done: true as const };
    };
    deps.queue.handle(COMPLETION_KIND, deliverQueued);
    deps.queue.handle(EARLIER_MULTIPART_KIND, deliverQueued);
  }

  /** Whether forms go to the completion service of this process (which then holds the record). */
  get recordsHere(): boolean {
    return this.deps.target.local !== undefined;
  }

  /**
   * Sends the form now; the answer is the client's. Rejected: RejectUpload, for the caller to remove
   * the uploads. Unreachable: queued (throws when it cannot be: a full disk is 507 ERR_STORAGE_FULL).
   */
  async deliver(delivery: CompletionDelivery): Promise<HookResponse> {
    const { target, queue, log } = this.deps;
    const ids = delivery.uploadIds;
    const request_id = delivery.requestId;
    // One notice id per form (its first upload): retries and duplicates carry the same id.
    const noticeId = `form-${ids[0]}`;
    const outcome = await postForm(target, delivery.form, ids[0]!, noticeId);
    if (outcome.kind === 'retry') {
      const payload: QueuedForm = {
        uploadId: ids[0],
        ...(ids.length > 1 && { uploadIds: [...ids] }),
        form: delivery.form.toString(),
      };
      try {
        await queue.enqueue<QueuedForm>(COMPLETION_KIND, payload, { id: noticeId, failedWith: outcome.error });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        log(`completion: ${formName(ids)}: ${outcome.error}; the form could not be queued either: ${errorText(e)}`, {
          event: 'completion.unqueued',
          upload_id: ids[0],
          request_id,
          level: 'error',
        });
        // A full disk is not the hook's failure: the client hears 507 (try again later); a tus
        // upload's completion is handled again once it can be (UploadEvents.finish), a multipart
        // request's files are removed (the client sends them again).
        if (code === 'ENOSPC' || code === 'EDQUOT')
          throw new TuspassError(
            ERRORS.ERR_STORAGE_FULL,
            `the completion form could not be queued (DATA_DIR is full); ${delivery.whenUnqueued}`,
          );
        throw new Error(`the completion form could not be queued (${code ?? 'error'})`);
      }
      completionNotices.labels('queued').inc();
      log(`completion: ${formName(ids)}: ${outcome.error}; queued for retry`, {
        event: 'completion.queued',
        upload_id: ids[0],
        request_id,
        notice_id: noticeId,
        level: 'warn',
      });
      return { HTTPResponse: { StatusCode: 204, Header: { [COMPLETION_HEADER]: 'pending' } } };
    }
    completionNotices.labels(outcome.kind).inc();
    log(
      `completion: ${formName(ids)} ${outcome.kind} (${outcome.status})${
        outcome.kind === 'rejected'
          ? '; the upload \
is removed'
          : ''
      }`,
      { event: `completion.${outcome.kind}`, upload_id: ids[0], request_id, status: outcome.status },
    );
    return {
      RejectUpload: outcome.kind === 'rejected',
      HTTPResponse: {
        StatusCode: outcome.status,
        Body: outcome.body,
        Header: { ...outcome.headers, [COMPLETION_HEADER]: outcome.kind },
      },
    };
  }
}
