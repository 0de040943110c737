// The built-in `complete-form` hook (HOOKS_BUILTIN=complete-form, the default): on pre-finish it
// builds the completion form of the finished upload and hands it to the completion deliverer
// (deliver.ts), whose answer (the app's, or 204 pending) is the hook's and so the client's final
// answer; a rejection (RejectUpload) removes the upload, as any pre-finish refusal does. A plain hook
// handler, registered by name by the server (server/start/builtin-hooks.ts) and run by the hook runner
// after the user's hooks, so a validation hook can refuse an upload before its form goes.
import type { HookHandler } from '../../hooks/types.ts';
import { requestIdOfHeaders } from '../../core/wire.ts';
import type { CompletionDeliverer } from './deliver.ts';
import { completionForm, type FormOptions } from './write.ts';

/** The hook's name in logs and answers (`hook complete-form failed on pre-finish …`). */
export const COMPLETE_FORM_HOOK = 'complete-form';

/** The handlers this file made: the multipart paths know them by identity (they deliver one form per request). */
const MADE = new WeakSet<HookHandler>();
export const isCompleteFormHook = (handler: HookHandler): boolean => MADE.has(handler);

export function createCompleteFormHook(
  deliverer: CompletionDeliverer,
  form: FormOptions,
  postTimeoutMs: number,
  /** `<field>.url` of a finished upload (S3_FORM_URL_TTL), signed when its form is built. */
  objectUrl?: (id: string) => Promise<string | undefined>,
): HookHandler {
  const handler: HookHandler = {
    name: COMPLETE_FORM_HOOK,
    events: ['pre-finish'],
    // Its own POST timeout governs; the margin leaves time to queue the form when the app is slow.
    timeoutMs: postTimeoutMs + 5000,
    async invokeHook(request) {
      const upload = request.Event.Upload;
      // A partial upload is a piece of a file, not one: the app hears of the final upload only.
      if (upload.IsPartial) return {};
      return deliverer.deliver({
        form: completionForm(upload, form, await objectUrl?.(upload.ID)),
        uploadIds: [upload.ID],
        requestId: requestIdOfHeaders(request.Event.HTTPRequest.Header),
        // A finished upload whose completion fails is handled again (UploadEvents.finish).
        whenUnqueued: 'the upload is kept and announced once there is space',
      });
    },
  };
  MADE.add(handler);
  return handler;
}
