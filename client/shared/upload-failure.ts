// Turns a tus-js-client error into one of a few plain-words failures, so the page and
// `tuspass push` say "server unreachable" or "rejected by the app" instead of a stack of
// "tus: failed to upload chunk at offset ...". The kind also picks push's exit code.
import { isCompletionRejection, parseErrorBody, type AnswerResponse } from './completion-answer.ts';

export type FailureKind =
  /** No HTTP answer at all: connection refused, reset, DNS, timeout. */
  | 'unreachable'
  /** The upload server refused a tus request (4xx), e.g. too large or not found. */
  | 'rejected-by-server'
  /** The completion service refused the finished upload (Tuspass-Completion: rejected). */
  | 'rejected-by-app'
  /** The server failed (5xx) until we gave up retrying. */
  | 'server-error'
  /** Anything else, e.g. a local read error. */
  | 'other';

export interface UploadFailure {
  kind: FailureKind;
  status: number | undefined;
  /** One sentence a person can act on. */
  message: string;
}

/** The fields of tus-js-client's DetailedError this module reads. */
interface TusErrorLike {
  message?: string;
  originalResponse?: AnswerResponse | null;
  originalRequest?: unknown;
  causingError?: { message?: string; code?: string } | null;
}

export function describeFailure(error: unknown, serverLabel: string): UploadFailure {
  const err = (error ?? {}) as TusErrorLike;
  const res = err.originalResponse ?? null;
  if (res) {
    const status = res.getStatus();
    const body = res.getBody() ?? '';
    const detail = parseErrorBody(body).message ?? firstLine(body);
    if (isCompletionRejection(res)) {
      return {
        kind: 'rejected-by-app',
        status,
        message: `rejected by the app (status ${status})${detail ? `: ${detail}` : ''}`,
      };
    }
    if (status === 413) {
      return {
        kind: 'rejected-by-server',
        status,
        message: `file too large for the server${detail ? ` (${detail})` : ''}`,
      };
    }
    if (status >= 400 && status < 500) {
      return {
        kind: 'rejected-by-server',
        status,
        message: `the upload server refused the upload (status ${status})${detail ? `: ${detail}` : ''}`,
      };
    }
    if (status >= 500) {
      return {
        kind: 'server-error',
        status,
        message: `the upload server kept failing (status ${status})${detail ? `: ${detail}` : ''}`,
      };
    }
    return {
      kind: 'other',
      status,
      message: `unexpected answer from the upload server (status ${status})${detail ? `: ${detail}` : ''}`,
    };
  }
  if (err.originalRequest) {
    const cause = err.causingError?.code ?? err.causingError?.message;
    return {
      kind: 'unreachable',
      status: undefined,
      message: `cannot reach the upload server at ${serverLabel}${cause ? ` (${cause})` : ''}`,
    };
  }
  return { kind: 'other', status: undefined, message: stripTusPrefix(err.message ?? String(error)) };
}

function firstLine(text: string): string {
  const line = text.trim().split('\n')[0] ?? '';
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

function stripTusPrefix(message: string): string {
  return message.replace(/^tus: /, '');
}
