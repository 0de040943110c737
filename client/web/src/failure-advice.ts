// What the page says when an upload cannot go on, in words that tell the person what to do: an
// outage (the server unreachable, failing or asking to wait) is a warning the page acts on by itself,
// with the wait the server asked for (Retry-After); a refused or missing token sends the person to
// the "Access token" field. The other failures keep describeFailure's plain words.
import type { UploadFailure } from '../../shared/upload-failure.ts';

export type TokenProblem = 'missing' | 'refused' | 'scope';

/** Said in the upload's row; the token field itself is focused and says which upload was refused. */
export const TOKEN_ADVICE: Record<TokenProblem, string> = {
  missing:
    'This server needs an access token. Paste the one your site gave you into “Access token” above, then press Retry.',
  refused:
    'The server did not accept your access token: it may have expired or be mistyped. Paste a new one into ' +
    '“Access token” above, then press Retry.',
  scope:
    'Your access token does not allow uploading here. Ask your site for one that does, paste it into “Access ' +
    'token” above, then press Retry.',
};

/** Beside the token field, naming the upload that was refused. */
export function tokenFieldMessage(problem: TokenProblem, fileName: string): string {
  const why = {
    missing: 'this server needs an access token',
    refused: 'the server did not accept this access token',
    scope: 'this access token does not allow uploading',
  }[problem];
  return (
    `The upload of ${fileName} was refused: ${why}. Paste the token your site gave you here, then press “Use this ` +
    'token and retry”.'
  );
}

/** The server's answer split in code and words: tus routes answer `ERR_CODE: message`, the others
 * `{"error":{"code","message"}}`. */
export function serverError(body: string): { code?: string; message?: string } {
  const text = body.trim();
  const line = /^(ERR_[A-Z0-9_]+):\s*(.*)$/m.exec(text);
  if (line) return { code: line[1], message: line[2] || undefined };
  try {
    const e = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown } }).error;
    return {
      code: typeof e?.code === 'string' ? e.code : undefined,
      message: typeof e?.message === 'string' ? e.message : undefined,
    };
  } catch {
    return { message: text.split('\n')[0]?.slice(0, 200) || undefined };
  }
}

/** 401 is a token missing or refused (by its code, else by whether one was sent); 403 only when the token lacks the
 * scope. */
export function tokenProblem(
  status: number | undefined,
  code: string | undefined,
  tokenSent: boolean,
): TokenProblem | undefined {
  if (status === 401) {
    if (code === 'ERR_AUTH_REQUIRED') return 'missing';
    if (code === 'ERR_TOKEN_INVALID') return 'refused';
    return tokenSent ? 'refused' : 'missing';
  }
  if (status === 403 && code === 'ERR_SCOPE_MISSING') return 'scope';
  return undefined;
}

/** Statuses that say "not now" rather than "no": timeout, conflict (offset), too many requests, locked. */
const WAIT_STATUSES = new Set([408, 409, 423, 429]);

/** The server cannot take the upload now but may soon: the page waits and tries again by itself. */
export function isOutage(failure: UploadFailure): boolean {
  return (
    failure.kind === 'unreachable' ||
    failure.kind === 'server-error' ||
    (failure.status !== undefined && WAIT_STATUSES.has(failure.status))
  );
}

/** What happened, one sentence; the row adds when it tries again. */
export function outageText(
  failure: UploadFailure,
  endpoint: string,
  serverMessage: string | undefined,
  offline: boolean,
): string {
  if (failure.kind === 'unreachable') {
    return offline
      ? `Cannot reach the upload server at ${endpoint}: the browser is offline. The upload continues when the ` +
          'connection is back.'
      : `Cannot reach the upload server at ${endpoint}.`;
  }
  const status = `status ${failure.status}${serverMessage ? `: ${serverMessage}` : ''}`;
  return failure.kind === 'server-error'
    ? `The upload server is not available right now (${status}).`
    : `The upload server asked to wait (${status}).`;
}

/** Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date; undefined when absent or unreadable. */
export function retryAfterMs(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // Every form of HTTP-date begins with the day's name; Date.parse alone would take "-5" for a year.
  if (!/^[A-Za-z]{3}/.test(trimmed)) return undefined;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
