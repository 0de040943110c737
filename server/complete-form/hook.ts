// The built-in `complete-form` hook: on pre-finish it posts the completion form and relays the app's
// answer to the client's final PATCH, as nginx relays the backend behind `upload_pass`.
// - delivered (2xx, or 3xx): the app's status and body (and a redirect's Location) reach the client;
// - rejected (a cleanup status): the upload is refused, and so removed;
// - unreachable or 502/503/504: the upload is kept, the form queued durably and retried until
//   delivered; the client's PATCH succeeds with `Tuspass-Completion: pending`.
// It is one module hook among others: the server registers it by name (server/builtin-hooks.ts) and
// HOOKS_BUILTIN=complete-form (the default) loads it through the same loader as a user's --hooks-module.
import { ERRORS, TuspassError } from '../../core/errors.ts';
import { completionNotices } from '../metrics.ts';
import type { Log } from '../../core/logger.ts';
import { COMPLETION_HEADER, requestIdOfHeaders } from '../../core/wire.ts';
import type { Notices } from '../../hooks/notices.ts';
import type { HookModule, HookModuleContext } from '../../hooks/transports/module.ts';
import type { HookHandler, HookResponse } from '../../hooks/types.ts';
import { completionForm, type FormOptions } from './write.ts';
import { postForm, type PostOutcome, type PostTarget } from './post.ts';
import { errorText } from '../../core/logger.ts';

const KIND = 'complete-form';

interface QueuedForm {
  uploadId: string;
  form: string;
}

export interface CompleteFormDeps {
  target: PostTarget;
  form: FormOptions;
  queue: Notices;
  /** Removes an upload the app rejected after it was queued. */
  removeUpload(id: string): Promise<void>;
  log?: Log;
}

export function createCompleteFormHook(deps: CompleteFormDeps): HookHandler {
  const log = deps.log ?? console.error;
  deps.queue.handle(KIND, async (notice) => {
    const { uploadId, form } = notice.payload as QueuedForm;
    const outcome = await postForm(deps.target, new URLSearchParams(form), uploadId, notice.id);
    if (outcome.kind === 'retry') return { done: false, error: outcome.error };
    completionNotices.labels(outcome.kind).inc();
    const fields = { upload_id: uploadId, notice_id: notice.id, attempts: notice.attempts + 1, status: outcome.status };
    if (outcome.kind === 'delivered') log(`completion: upload ${uploadId}'s queued form delivered (${outcome.status}) after ${notice.attempts + 1} ` + 'attempts', { event: 'completion.delivered', ...fields });
    if (outcome.kind === 'rejected') {
      log(`complete-form: upload ${uploadId} rejected by ${deps.target.url} with ${outcome.status}; removing it`, { event: 'completion.rejected', ...fields });
      await deps.removeUpload(uploadId).catch((e) => log(`complete-form: removing upload ${uploadId}: ${errorText(e)}`));
    }
    return { done: true };
  });

  return {
    name: KIND,
    events: ['pre-finish'],
    async invokeHook(request): Promise<HookResponse> {
      const upload = request.Event.Upload;
      // A partial upload is a piece of a file, not one: the app hears of the final upload only.
      if (upload.IsPartial) return {};
      const form = completionForm(upload, deps.form);
      // One notice id per upload: retries and duplicates carry the same id.
      const noticeId = `form-${upload.ID}`;
      const outcome: PostOutcome = await postForm(deps.target, form, upload.ID, noticeId);
      const requestId = requestIdOfHeaders(request.Event.HTTPRequest.Header);
      if (outcome.kind !== 'retry') {
        const fields = { upload_id: upload.ID, request_id: requestId, status: outcome.status };
        if (outcome.kind === 'delivered') log(`completion: upload ${upload.ID}'s form delivered (${outcome.status})`, { event: 'completion.delivered', ...fields });
        else log(`completion: upload ${upload.ID}'s form rejected (${outcome.status}); the upload is removed`, { event: 'completion.rejected', ...fields });
      }
      if (outcome.kind === 'retry') {
        try {
          await deps.queue.enqueue<QueuedForm>(KIND, { uploadId: upload.ID, form: form.toString() }, { id: noticeId, failedWith: outcome.error });
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          log(`complete-form: upload ${upload.ID}: ${outcome.error}; the form could not be queued either: ` + `${errorText(e)}`, { event: 'completion.unqueued', upload_id: upload.ID, request_id: requestId, level: 'error' });
          // A full disk is not the hook's failure: the client hears 507 (try again later), and the
          // upload's completion is handled again once it can be (see UploadEvents.finish).
          if (code === 'ENOSPC' || code === 'EDQUOT') throw new TuspassError(ERRORS.ERR_STORAGE_FULL, 'the completion form could not be queued (DATA_DIR is full); the upload is kept and announced once ' + 'there is space');
          throw new Error(`the completion form could not be queued (${code ?? 'error'})`);
        }
        completionNotices.labels('queued').inc();
        log(`complete-form: upload ${upload.ID}: ${outcome.error}; form queued for retry`, { event: 'completion.queued', upload_id: upload.ID, request_id: requestId, notice_id: noticeId, level: 'warn' });
        return { HTTPResponse: { StatusCode: 204, Header: { [COMPLETION_HEADER]: 'pending' } } };
      }
      completionNotices.labels(outcome.kind).inc();
      return {
        RejectUpload: outcome.kind === 'rejected',
        HTTPResponse: {
          StatusCode: outcome.status,
          Body: outcome.body,
          Header: { ...outcome.headers, [COMPLETION_HEADER]: outcome.kind },
        },
      };
    },
  };
}

/** The module-hook face of complete-form: what HOOKS_BUILTIN=complete-form loads (server/builtin-hooks.ts). */
export function completeFormModule(context: HookModuleContext, settings: { target: PostTarget; passFields: RegExp }): HookModule {
  const hook = createCompleteFormHook({
    target: settings.target,
    form: { passFields: settings.passFields, log: context.log },
    queue: context.queue,
    removeUpload: context.removeUpload,
    log: context.log,
  });
  // Its own POST timeout governs; the margin leaves time to queue the form when the app is slow.
  return { timeoutMs: settings.target.timeoutMs + 5000, 'pre-finish': (request) => hook.invokeHook(request) };
}
