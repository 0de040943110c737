// The notice queue is bounded. While a receiver is away, memory holds an
// index of the queued notices, not their payloads; at QUEUE_MAX new uploads are refused with 503
// and Retry-After (back-pressure) while nothing already queued, or owed to an upload under way, is
// dropped: once the receiver is back every notice arrives.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { NoticeQueue } from '../hooks/queue.ts';
import type { Notice } from '../hooks/notices.ts';
import { startHookReceiver } from './helpers/hook-receiver.ts';
import { startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';
import { create, patch, tus } from './helpers/tus.ts';

const until = async (what: string, predicate: () => boolean, timeoutMs = 10_000) => {
  const end = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

test('queued notices are not kept in memory: only those being delivered are read back from disk', async (t) => {
  const dir = tmpDir(t);
  const queue = new NoticeQueue({ dir, minMs: 20, maxMs: 100, max: 50, concurrency: 4, log: () => {} });
  t.after(() => queue.close());
  let receiverUp = false;
  const delivered = new Map<string, string>();
  let mostResident = 0;
  queue.handle('test', async (notice: Notice) => {
    mostResident = Math.max(mostResident, queue.residentPayloads());
    if (!receiverUp) return { done: false, error: 'answered 503' };
    delivered.set(notice.id, (notice.payload as { blob: string }).blob);
    return { done: true };
  });
  await queue.start();
  const blob = (i: number) => `${i}:`.padEnd(20_000, 'x');
  const ids: string[] = [];
  for (let i = 0; i < 200; i++) ids.push(await queue.enqueue('test', { blob: blob(i) }));
  await until('every notice tried once', () => queue.pending().every((n) => n.attempts >= 1));

  // Past the cap, enqueue still takes notices (never dropped); isFull tells the creation gate to refuse.
  assert.equal(queue.pending().length, 200);
  assert.equal(queue.isFull(), true);
  assert.ok(
    queue.pending().every((n) => !('payload' in n)),
    'the index holds no payloads',
  );
  assert.ok(queue.residentPayloads() <= 4, `resident payloads ${queue.residentPayloads()}`);
  assert.ok(mostResident <= 4, `at most one payload per delivery slot was held (${mostResident})`);
  assert.equal(fs.readdirSync(dir).filter((n) => n.endsWith('.json')).length, 200, 'every notice on disk');

  receiverUp = true;
  assert.ok(await queue.drained(20_000), 'drained once the receiver is back');
  assert.equal(delivered.size, 200, 'nothing lost');
  ids.forEach((id, i) => assert.equal(delivered.get(id), blob(i), `payload of notice ${i} read back whole`));
  assert.equal(queue.isFull(), false);
  // The last deliveries let go of their payloads and files once counted: wait for that, not a moment.
  await until('every payload let go', () => queue.residentPayloads() === 0);
  await until('every file removed', () => fs.readdirSync(dir).length === 0);
});

test('at QUEUE_MAX creations get 503 ERR_QUEUE_FULL with Retry-After; a finishing upload still gets its notices; all \
arrive later', async (t) => {
  const receiver = await startHookReceiver(t);
  let down = true;
  receiver.answer = () => (down ? [503, 'busy'] : {});
  const s = await startTestServer(t, {
    hooksHttp: receiver.url,
    hooksEnabledEvents: ['post-create', 'post-finish'],
    queueMax: 5,
    minFreeSpace: 0,
    retryMinMs: 50,
    retryMaxMs: 200,
  });
  const created: string[] = [];
  for (let i = 0; i < 5; i++) created.push(await create(s.endpoint, 3, { filename: `f${i}` }));
  // post-create notices are queued beside the answer: wait until all five are on the queue.
  await until('five queued notices', () => s.queue.pending().length === 5);

  const refused = await tus('POST', s.endpoint, { 'Upload-Length': '3' });
  assert.equal(refused.status, 503, refused.body);
  assert.match(refused.body, /ERR_QUEUE_FULL/);
  assert.match(refused.headers['retry-after'] ?? '', /^\d+$/, 'Retry-After in seconds');
  assert.equal(s.queue.pending().length, 5, 'the refused creation queued nothing');

  // An upload admitted before the cap finishes: its post-finish notice is queued past the cap.
  const finished = await patch(created[0]!, 0, 'abc');
  assert.equal(finished.status, 200, finished.body);
  assert.equal(finished.headers['tuspass-completion'], 'delivered');
  await until('the post-finish notice queued', () => s.queue.pending().length === 6);

  down = false;
  assert.ok(await s.queue.drained(10_000), 'queue drained once the receiver is back');
  const seen = (type: string) =>
    new Set(receiver.received.filter((r) => r.request.Type === type).map((r) => r.request.Event.Upload.ID));
  const ids = created.map((u) => u.split('/').pop()!);
  assert.deepEqual([...seen('post-create')].sort(), [...ids].sort(), 'every post-create arrived');
  assert.deepEqual([...seen('post-finish')], [ids[0]], 'the post-finish arrived');

  // Drained: creations are admitted again.
  await create(s.endpoint, 3);
});

test('at QUEUE_MAX progress notices (post-receive) are the ones left out, so a long upload cannot grow the queue past \
its cap', async (t) => {
  const receiver = await startHookReceiver(t);
  receiver.answer = () => [503, 'busy'];
  const s = await startTestServer(t, {
    hooksHttp: receiver.url,
    hooksEnabledEvents: ['post-create', 'post-receive'],
    progressHooksIntervalMs: 1,
    queueMax: 3,
    minFreeSpace: 0,
    retryMinMs: 5000,
    retryMaxMs: 10_000,
  });
  const url = await create(s.endpoint, 100_000, { filename: 'long' });
  await until('the post-create notice queued', () => s.queue.pending().length === 1);
  // Many PATCHes, each past the progress interval: post-receive notices until the cap, then none.
  for (let offset = 0; offset < 100_000; offset += 2000) {
    assert.ok((await patch(url, offset, Buffer.alloc(2000))).status < 300);
    await new Promise((r) => setTimeout(r, 3));
  }
  assert.equal(s.queue.pending().length, 3, 'the queue stopped at its cap');
  assert.ok(
    s.logs.some((l) => /post-receive notice\(s\) not queued/.test(l)),
    s.logs.join('\n'),
  );
});
