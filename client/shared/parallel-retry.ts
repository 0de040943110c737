// Retry rule for parallel uploads. tus-js-client runs each part as its own upload with the
// same options (so the same onShouldRetry); when a part gives up, its error reaches the
// parent upload, which would ask onShouldRetry again and, on yes, start every part afresh
// while the other parts are still running — two uploads of one part fighting over its offset.
// So the parent never retries an error a part already gave up on; the client stops the
// remaining parts and reports it. (`tuspass push` uses tus-js-client's retries; the page
// waits out outages itself, client/web/src/upload-task.ts, and needs no such rule.)
import type { DetailedError, UploadOptions } from 'tus-js-client';

const CONCAT_HEADER = 'Upload-Concat';

/** True when the parent of a parallel upload is asked about an error its part gave up on. */
export function isPartFailureSeenByParent(error: DetailedError, askingOptions: UploadOptions): boolean {
  const fromPart = error.originalRequest?.getHeader(CONCAT_HEADER) === 'partial';
  const askerIsPart = askingOptions.headers?.[CONCAT_HEADER] === 'partial';
  return fromPart && !askerIsPart;
}
