// Sends one signed completion form and classifies the answer.
import { SIGNATURE_HEADER, sign } from '../../server/signature.ts';
import type { StatusRanges } from '../../server/status-ranges.ts';
import { FORM_VERSION } from './form.ts';

export interface PostTarget {
  url: string;
  secret: string;
  timeoutMs: number;
  cleanupStatuses: StatusRanges;
}

export type PostOutcome =
  /** 2xx: recorded by the app. */
  | { kind: 'delivered'; status: number; body: string; contentType: string }
  /** A status in the cleanup ranges: the app refused the file. */
  | { kind: 'rejected'; status: number; body: string; contentType: string }
  /** Unreachable, timed out, or any other status (502/503/504 by default): try again later. */
  | { kind: 'retry'; error: string };

export async function postForm(target: PostTarget, form: URLSearchParams, uploadId: string, noticeId: string): Promise<PostOutcome> {
  const body = form.toString();
  let response: Response;
  try {
    response = await fetch(target.url, {
      method: 'POST',
      body,
      headers: {
        'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8',
        [SIGNATURE_HEADER]: sign(target.secret, body),
        'Tuspass-Form-Version': FORM_VERSION,
        'Tuspass-Upload-Id': uploadId,
        'Tuspass-Notice-Id': noticeId,
      },
      signal: AbortSignal.timeout(target.timeoutMs),
    });
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause?.code;
    return { kind: 'retry', error: `${target.url} unreachable: ${cause ?? (e as Error).message}` };
  }
  let text: string;
  try {
    text = await response.text();
  } catch (e) {
    return { kind: 'retry', error: `${target.url} answer cut off: ${(e as Error).message}` };
  }
  const contentType = response.headers.get('content-type') ?? 'text/plain; charset=utf-8';
  if (response.status >= 200 && response.status < 300) return { kind: 'delivered', status: response.status, body: text, contentType };
  if (target.cleanupStatuses.has(response.status)) return { kind: 'rejected', status: response.status, body: text, contentType };
  return { kind: 'retry', error: `${target.url} answered ${response.status}` };
}
