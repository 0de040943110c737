// Refusals by design (the server busy or full, a caller at its limits: ErrorEntry.capacity) are one
// log line each, at warn: an alert on error lines must not fire on an ordinary 503, 507 or 429.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startHookReceiver } from './helpers/hook-receiver.ts';
import { patternBytes } from './helpers/files.ts';
import { sendSegment } from './helpers/resumable.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { create, tus } from './helpers/tus.ts';

const until = async (what: string, predicate: () => boolean, timeoutMs = 10_000) => {
  const end = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

/**
 * The refused answer's log lines (those naming its request id, and those naming its code and no
 * request): the refused-request line is written when the answer is sent, after any line of the
 * handler, so once it is there all of them are.
 */
async function assertOneWarnLine(
  s: TestServer,
  answer: { status: number; headers: Record<string, string> },
  status: number,
  code: string,
) {
  assert.equal(answer.status, status);
  const id = answer.headers['x-request-id'];
  assert.ok(id, 'the answer names its request id');
  const lines = () => s.logs.filter((l) => l.includes(id) || (l.includes(code) && !l.includes('request_id=')));
  await until(`the refused-request line of ${code}`, () => lines().some((l) => l.includes('event=request.refused')));
  assert.equal(lines().length, 1, `one line for the refusal:\n${lines().join('\n')}`);
  assert.match(lines()[0]!, new RegExp(`\\b${status} ${code}\\b`));
  assert.match(lines()[0]!, /level=warn/);
  assert.doesNotMatch(lines()[0]!, /level=error/);
}

test('503 ERR_RESUMABLE_SESSIONS_FULL on POST /upload is one warn line', async (t) => {
  const s = await startTestServer(t, { resumableSessionsMax: 1 });
  const bytes = patternBytes(1000, 3);
  assert.equal((await sendSegment(s.url, '1000000001', [0, 99], { bytes })).status, 201);
  const refused = await sendSegment(s.url, '1000000002', [0, 99], { bytes });
  await assertOneWarnLine(s, refused, 503, 'ERR_RESUMABLE_SESSIONS_FULL');
});

test('503 ERR_QUEUE_FULL, on the tus endpoint and on POST \
/upload, with the receiver down, is one warn line each', async (t) => {
  const receiver = await startHookReceiver(t);
  receiver.answer = () => [503, 'busy'];
  const s = await startTestServer(t, {
    hooksHttp: receiver.url,
    hooksEnabledEvents: ['post-create'],
    queueMax: 1,
    minFreeSpace: 0,
  });
  await create(s.endpoint, 3);
  await until('the notice queued', () => s.queue.pending().length === 1);
  await assertOneWarnLine(s, await tus('POST', s.endpoint, { 'Upload-Length': '3' }), 503, 'ERR_QUEUE_FULL');
  const segment = await sendSegment(s.url, '2000000001', [0, 99], { bytes: patternBytes(1000, 4) });
  await assertOneWarnLine(s, segment, 503, 'ERR_QUEUE_FULL');
});

test('507 ERR_STORAGE_FULL (MIN_FREE_SPACE larger than the disk) is one warn line', async (t) => {
  const s = await startTestServer(t, { minFreeSpace: 2 ** 60 });
  await assertOneWarnLine(s, await tus('POST', s.endpoint, { 'Upload-Length': '10' }), 507, 'ERR_STORAGE_FULL');
});

test('429 ERR_OWNER_UPLOADS_LIMIT (OWNER_MAX_OPEN=1) is one warn line', async (t) => {
  const s = await startTestServer(t, { ownerMaxOpen: 1, minFreeSpace: 0 });
  await create(s.endpoint, 10);
  await assertOneWarnLine(s, await tus('POST', s.endpoint, { 'Upload-Length': '10' }), 429, 'ERR_OWNER_UPLOADS_LIMIT');
});
