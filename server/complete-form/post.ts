// Sends one completion form and classifies the answer: signed over HTTP to COMPLETION_URL, or handed
// to the completion service of this process (`tuspass start`). Used by the deliverer (deliver.ts) only.
import { sign } from '../../core/signature.ts';
import type { StatusRanges } from '../../core/status-ranges.ts';
import {
  FORM_NOTICE_ID_HEADER,
  FORM_UPLOAD_ID_HEADER,
  FORM_VERSION_HEADER,
  SIGNATURE_HEADER,
} from '../../core/wire.ts';
import { FORM_VERSION } from './fields.ts';
import { failureOf, requestText, type ClientResponse } from '../../core/http-client.ts';

export interface PostTarget {
  url: string;
  secret: string;
  timeoutMs: number;
  cleanupStatuses: StatusRanges;
  /** The completion service of this process, when it runs here (`tuspass start`): forms go to it without HTTP. */
  local?: LocalCompletion;
}

/**
 * Takes the form as built; answers as POST /complete/ would (server/completion/receive.ts). Throws
 * when the service cannot record it (its database away): the form is then retried like an
 * unreachable app's.
 */
export type LocalCompletion = (form: URLSearchParams) => Promise<ClientResponse>;

/** The app's headers that reach the client with its answer: Content-Type, and a redirect's Location. */
export type RelayedHeaders = Record<string, string>;

export type PostOutcome =
  /** 2xx, or 3xx (recorded, and the browser sent on: django-nginx-upload's view redirects its web form to the
   * table). */
  | { kind: 'delivered'; status: number; body: string; headers: RelayedHeaders }
  /** A status in the cleanup ranges: the app refused the file. */
  | { kind: 'rejected'; status: number; body: string; headers: RelayedHeaders }
  /** Unreachable, timed out, or any other status (502/503/504 by default): try again later. */
  | { kind: 'retry'; error: string };

export async function postForm(
  target: PostTarget,
  form: URLSearchParams,
  uploadId: string,
  noticeId: string,
): Promise<PostOutcome> {
  let response: ClientResponse;
  try {
    // In `tuspass start` the completion service is in this process: a direct call with the same
    // checks, nothing signed or sent (receive.ts localCompletion).
    response = target.local
      ? await target.local(form)
      : await requestText(target.url, signedPost(target, form, uploadId, noticeId));
  } catch (e) {
    return { kind: 'retry', error: `${target.url} unreachable: ${failureOf(e)}` };
  }
  const text = response.body;
  const relayed: RelayedHeaders = {
    'Content-Type': String(response.headers['content-type'] ?? 'text/plain; charset=utf-8'),
  };
  const location = response.headers.location;
  // As nginx relays the app behind upload_pass: its answer, a redirect included, is the client's.
  if (typeof location === 'string' && response.status >= 300 && response.status < 400) relayed.Location = location;
  if (response.status >= 200 && response.status < 400)
    return { kind: 'delivered', status: response.status, body: text, headers: relayed };
  if (target.cleanupStatuses.has(response.status))
    return { kind: 'rejected', status: response.status, body: text, headers: relayed };
  return { kind: 'retry', error: `${target.url} answered ${response.status}` };
}

/** The form's POST to an app (docs/completion-form.md, "Request"). */
function signedPost(target: PostTarget, form: URLSearchParams, uploadId: string, noticeId: string) {
  const body = form.toString();
  const headers = {
    'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8',
    // Signed now, at each attempt (a queued form too): the receiver refuses signatures older than SIGNATURE_TOLERANCE.
    [SIGNATURE_HEADER]: sign(target.secret, 'completion-form', body),
    [FORM_VERSION_HEADER]: FORM_VERSION,
    [FORM_UPLOAD_ID_HEADER]: uploadId,
    [FORM_NOTICE_ID_HEADER]: noticeId,
  };
  return { method: 'POST', body, headers, timeoutMs: target.timeoutMs };
}
