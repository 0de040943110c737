// The page's pure rules, without a browser: when a failure is an outage and how long the server
// asked to wait (Retry-After), which refusals are about the token, the server's words read from
// either answer shape, and when chosen files wait for review.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isOutage, retryAfterMs, serverError, tokenProblem } from '../client/web/src/failure-advice.ts';
import { shouldReview } from '../client/web/src/review-setting.ts';

test('Retry-After: seconds or an HTTP-date (RFC 9110), else nothing', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');
  assert.equal(retryAfterMs('60', now), 60_000);
  assert.equal(retryAfterMs(' 0 ', now), 0);
  assert.equal(retryAfterMs('Wed, 01 Jan 2025 00:00:30 GMT', now), 30_000);
  assert.equal(retryAfterMs('Tue, 31 Dec 2024 23:59:00 GMT', now), 0, 'a date in the past: no wait');
  assert.equal(retryAfterMs(undefined, now), undefined);
  assert.equal(retryAfterMs('soon', now), undefined);
  assert.equal(retryAfterMs('-5', now), undefined);
});

test('the server’s words from a tus answer (ERR_CODE: message) and from a JSON one', () => {
  assert.deepEqual(
    serverError('ERR_QUEUE_FULL: too many completion notices are waiting for delivery; try again later\n'),
    { code: 'ERR_QUEUE_FULL', message: 'too many completion notices are waiting for delivery; try again later' },
  );
  assert.deepEqual(
    serverError(
      '{"error":{"code":"ERR_SCOPE_MISSING","message":"the bearer token lacks the scope this request needs"}}',
    ),
    { code: 'ERR_SCOPE_MISSING', message: 'the bearer token lacks the scope this request needs' },
  );
  assert.deepEqual(serverError('<html>Bad Gateway</html>'), { message: '<html>Bad Gateway</html>' });
  assert.deepEqual(serverError(''), { message: undefined });
});

test('a token problem: 401 missing or refused (by code, else by \
whether one was sent), 403 only for a missing scope', () => {
  assert.equal(tokenProblem(401, 'ERR_AUTH_REQUIRED', true), 'missing');
  assert.equal(tokenProblem(401, 'ERR_TOKEN_INVALID', false), 'refused');
  assert.equal(tokenProblem(401, undefined, false), 'missing');
  assert.equal(tokenProblem(401, undefined, true), 'refused');
  assert.equal(tokenProblem(403, 'ERR_SCOPE_MISSING', true), 'scope');
  assert.equal(tokenProblem(403, 'ERR_UPLOAD_FINISHED', true), undefined, 'another 403 is not about the token');
  assert.equal(tokenProblem(403, 'ERR_ORIGIN_FORBIDDEN', true), undefined);
  assert.equal(tokenProblem(413, undefined, true), undefined);
});

test('an outage: unreachable, 5xx, or a status asking to wait; a refusal is not one', () => {
  assert.ok(isOutage({ kind: 'unreachable', status: undefined, message: '' }));
  assert.ok(isOutage({ kind: 'server-error', status: 503, message: '' }));
  for (const status of [408, 409, 423, 429])
    assert.ok(isOutage({ kind: 'rejected-by-server', status, message: '' }), `status ${status}`);
  for (const status of [400, 401, 403, 404, 413])
    assert.ok(!isOutage({ kind: 'rejected-by-server', status, message: '' }), `status ${status}`);
  assert.ok(!isOutage({ kind: 'rejected-by-app', status: 422, message: '' }));
});

test('review: several files by default, one file only when the setting says always, never when it says never, always \
while files already wait', () => {
  assert.equal(shouldReview('several', 1, false), false);
  assert.equal(shouldReview('several', 2, false), true);
  assert.equal(shouldReview('always', 1, false), true);
  assert.equal(shouldReview('never', 5, false), false);
  assert.equal(shouldReview('never', 1, true), true, 'files added to a list that waits join it');
});
