// Looks at an earlier upload of the same file before resuming it: a HEAD on its URL (or on each
// part's URL after a parallel upload) says whether the server still has it and how far it got.
// tus-js-client would silently create a new upload on a 4xx HEAD; checking first lets both
// clients SAY that the earlier upload expired and start over cleanly, and gives the offset of
// a parallel upload as a whole (its own HEADs only ever see one part).
import type { PreviousUpload } from 'tus-js-client';

export type PreviousUploadState =
  /** Every URL answered: bytes the server holds (summed over parts) of the whole length. */
  | { kind: 'resumable'; offset: number; length: number; parts: number }
  /** A URL answered 4xx: the server no longer has the upload; 404/410 mean it expired (tus expiration). */
  | { kind: 'gone'; status: number; expired: boolean }
  /** No usable answer (network error, 5xx): leave it to tus-js-client, which retries. */
  | { kind: 'unknown' };

/** The newest of the stored uploads of one fingerprint (there is normally only one). */
export function newestPreviousUpload(previous: PreviousUpload[]): PreviousUpload | undefined {
  return [...previous].sort((a, b) => Date.parse(b.creationTime) - Date.parse(a.creationTime))[0];
}

/** The URLs to check: the upload's own, or each part's after a parallel upload. */
export function previousUploadUrls(previous: PreviousUpload): string[] {
  if (previous.parallelUploadUrls?.length) return previous.parallelUploadUrls;
  return previous.uploadUrl ? [previous.uploadUrl] : [];
}

/** `headers`: the upload's own (its bearer token), so the server knows whose upload is asked about. */
export async function checkPreviousUpload(
  previous: PreviousUpload,
  fetchFn: typeof fetch = fetch,
  headers: Record<string, string> = {},
): Promise<PreviousUploadState> {
  const urls = previousUploadUrls(previous);
  // A parallel upload killed before every part had a URL stores holes; those parts start afresh.
  if (urls.length === 0 || urls.some((u) => !u)) return { kind: 'unknown' };
  let answers: Response[];
  try {
    answers = await Promise.all(
      urls.map((url) =>
        fetchFn(url, { method: 'HEAD', headers: { ...headers, 'Tus-Resumable': '1.0.0' }, cache: 'no-store' }),
      ),
    );
  } catch {
    return { kind: 'unknown' };
  }
  const refused = answers.find((res) => res.status >= 400 && res.status < 500 && res.status !== 423);
  if (refused)
    return { kind: 'gone', status: refused.status, expired: refused.status === 404 || refused.status === 410 };
  if (answers.some((res) => !res.ok)) return { kind: 'unknown' };
  let offset = 0;
  let length = 0;
  for (const res of answers) {
    // tus 1.0.0, HEAD: "The Server MUST always include the Upload-Offset header in the response".
    const partOffset = Number(res.headers.get('Upload-Offset'));
    const partLength = Number(res.headers.get('Upload-Length'));
    if (!Number.isFinite(partOffset) || !Number.isFinite(partLength)) return { kind: 'unknown' };
    offset += partOffset;
    length += partLength;
  }
  return { kind: 'resumable', offset, length, parts: urls.length };
}
