// Exit codes of `tuspass push`, one per thing a script may want to react to differently.
// The same table, for people, is in client/cli/README.md — keep both in step.
import type { FailureKind } from '../shared/upload-failure.ts';

export const EXIT = {
  /** Every file finished and the completion service accepted it. */
  OK: 0,
  /** Something unexpected (a bug, an odd answer); the message says what. */
  UNEXPECTED: 1,
  /** Bad command line: unknown flag, missing value, no file. */
  USAGE: 2,
  /** A local file is missing, unreadable or not a regular file. Nothing was sent for it. */
  LOCAL_FILE: 3,
  /** No answer from the upload server (connection refused, reset, DNS) until --retry-for ran out. */
  UNREACHABLE: 4,
  /** The upload server refused a tus request with a 4xx (too large, not found, forbidden). */
  REJECTED_BY_SERVER: 5,
  /** The completion service refused the finished upload (Tuspass-Completion: rejected); the server deleted it. */
  REJECTED_BY_APP: 6,
  /** The upload is stored but the completion service did not answer yet; the server keeps retrying the notice. */
  COMPLETION_PENDING: 7,
  /** The upload server kept answering 5xx until --retry-for ran out. */
  SERVER_ERROR: 8,
  /** Interrupted (Ctrl-C); run the same command again to resume. */
  INTERRUPTED: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export function exitCodeFor(kind: FailureKind): ExitCode {
  switch (kind) {
    case 'unreachable':
      return EXIT.UNREACHABLE;
    case 'rejected-by-server':
      return EXIT.REJECTED_BY_SERVER;
    case 'rejected-by-app':
      return EXIT.REJECTED_BY_APP;
    case 'server-error':
      return EXIT.SERVER_ERROR;
    case 'other':
      return EXIT.UNEXPECTED;
  }
}
