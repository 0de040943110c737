// Retries with backoff for `tuspass push`: network errors, 5xx, 409 and 423 are retried
// (tus-js-client's own rule) until --retry-for seconds have passed since the first failure
// of the current streak; any successful answer starts a new streak.
import type { DetailedError } from 'tus-js-client';
import { isCompletionRejection } from '../shared/completion-answer.ts';

/** 0, 0.5 s, 1 s, 2 s … doubling, capped at 10 s; long enough that --retry-for decides when to stop. */
export function backoffDelays(count = 1000): number[] {
  const delays = [0];
  for (let i = 0; delays.length < count; i++) delays.push(Math.min(500 * 2 ** i, 10_000));
  return delays;
}

export class RetryPolicy {
  private failingSince: number | undefined;

  constructor(
    private readonly retryForMs: number,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** Call on every HTTP answer below 500: the server is there, the streak is over. */
  answered(status: number): void {
    if (status < 500) this.failingSince = undefined;
  }

  shouldRetry(err: DetailedError, nextDelayMs: number): boolean {
    const res = err.originalResponse;
    // A completion rejection deleted the upload on the server: retrying would start over.
    if (isCompletionRejection(res)) return false;
    const status = res ? res.getStatus() : 0;
    if (status >= 400 && status < 500 && status !== 409 && status !== 423) return false;
    const now = this.now();
    this.failingSince ??= now;
    return now + nextDelayMs - this.failingSince <= this.retryForMs;
  }
}
