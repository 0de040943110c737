// Notices (post-*) are durable: with the HTTP hook receiver down they wait in the on-disk queue and
// arrive once it is back, none lost, each with an id that stays the same across retries; notices
// queued when the server stops are delivered by the next start.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { Notice } from '../hooks/notices.ts';
import { startHookReceiver, type ReceivedHook } from './helpers/hook-receiver.ts';
import { startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';
import { create, patch } from './helpers/tus.ts';

const noticeIds = (received: ReceivedHook[]) => received.map((r) => String(r.headers['hook-notice-id'] ?? ''));

async function uploads(endpoint: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const url = await create(endpoint, 3, { filename: `f${i}` });
    const res = await patch(url, 0, 'abc');
    assert.equal(res.status, 200, res.body);
    ids.push(url.split('/').pop()!);
  }
  return ids;
}

test('notices wait while the receiver is down and all arrive, with ids, once it is back', async (t) => {
  const receiver = await startHookReceiver(t, { down: true });
  const s = await startTestServer(t, {
    hooksHttp: receiver.url,
    hooksEnabledEvents: ['post-create', 'post-finish'],
    retryMinMs: 100,
    retryMaxMs: 2000,
  });
  const started = Date.now();
  const ids = await uploads(s.endpoint, 10);
  // Uploads are not slowed down by the receiver being away.
  assert.ok(Date.now() - started < 5000);
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(s.queue.pending().filter((n) => n.kind === 'hook:http').length, 20);
  assert.ok(s.queue.pending().every((n) => n.attempts >= 1));

  await receiver.up();
  assert.ok(await s.queue.drained(10_000), 'queue drained');
  const seen = noticeIds(receiver.received);
  assert.ok(
    seen.every((id) => /^[0-9a-f-]{36}$/.test(id)),
    'every notice has an id',
  );
  assert.equal(new Set(seen).size, 20, 'no notice lost');
  for (const id of ids) {
    for (const type of ['post-create', 'post-finish']) {
      assert.ok(
        receiver.received.some((r) => r.request.Type === type && r.request.Event.Upload.ID === id),
        `${type} for ${id}`,
      );
    }
  }
});

test('an answer other than 2xx is retried with the same notice id until the receiver takes it', async (t) => {
  const receiver = await startHookReceiver(t);
  let refusals = 3;
  receiver.answer = () => (refusals-- > 0 ? [503, 'busy'] : {});
  const s = await startTestServer(t, {
    hooksHttp: receiver.url,
    hooksEnabledEvents: ['post-finish'],
    retryMinMs: 50,
    retryMaxMs: 200,
  });
  await uploads(s.endpoint, 1);
  await receiver.until((r) => r.length === 4);
  assert.ok(await s.queue.drained(5000));
  assert.equal(new Set(noticeIds(receiver.received)).size, 1);
});

test('notices queued when the server stops are delivered after a restart, with the ids they had', async (t) => {
  const dataDir = tmpDir(t);
  const receiver = await startHookReceiver(t, { down: true });
  const settings = {
    dataDir,
    hooksHttp: receiver.url,
    hooksEnabledEvents: ['post-finish' as const],
    retryMinMs: 100,
    retryMaxMs: 1000,
  };
  const first = await startTestServer(t, settings);
  const ids = await uploads(first.endpoint, 5);
  await new Promise((r) => setTimeout(r, 300));
  await first.close();
  const queueDir = path.join(dataDir, 'queue');
  const stored = fs
    .readdirSync(queueDir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(fs.readFileSync(path.join(queueDir, f), 'utf8')) as Notice);
  assert.equal(stored.length, 5);

  await receiver.up();
  const second = await startTestServer(t, settings);
  await receiver.until((r) => r.length >= 5);
  assert.ok(await second.queue.drained(5000));
  assert.deepEqual(new Set(noticeIds(receiver.received)), new Set(stored.map((n) => n.id)));
  assert.deepEqual(new Set(receiver.received.map((r) => r.request.Event.Upload.ID)), new Set(ids));
  // A delivered notice's file is removed after its delivery is counted: wait for the removal itself.
  const left = () => fs.readdirSync(queueDir).filter((f) => f.endsWith('.json')).length;
  for (const end = Date.now() + 5000; left() > 0 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
  assert.equal(left(), 0);
});

test('a command hook notice that fails is retried; the hook sees the same HOOK_NOTICE_ID', async (t) => {
  const dir = tmpDir(t);
  const log = path.join(dir, 'calls.log');
  // Fails twice, then succeeds: each call logs its notice id.
  fs.writeFileSync(
    path.join(dir, 'post-create'),
    `#!/bin/sh\necho "$HOOK_NOTICE_ID" >> ${log}\n[ $(wc -l < ${log}) -ge 3 ]\n`,
  );
  fs.chmodSync(path.join(dir, 'post-create'), 0o755);
  const s = await startTestServer(t, {
    hooksDir: dir,
    hooksEnabledEvents: ['post-create'],
    retryMinMs: 50,
    retryMaxMs: 200,
  });
  await create(s.endpoint, 3, { filename: 'a' });
  const lines = () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n').length : 0);
  for (const end = Date.now() + 5000; lines() < 3 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
  assert.ok(await s.queue.drained(5000));
  const calls = fs.readFileSync(log, 'utf8').trim().split('\n');
  assert.equal(calls.length, 3);
  assert.equal(new Set(calls).size, 1);
  assert.match(calls[0]!, /^[0-9a-f-]{36}$/);
});
