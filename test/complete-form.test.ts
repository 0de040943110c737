// The complete-form hook against real receivers: the form's fields and signature, the answer relayed
// to the client, cleanup on rejection, and durable retry while the completion service is down.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { startCompletionServer } from '../server/start/completion-server.ts';
import { configFor } from '../server/config/config.ts';
import { verify } from '../core/signature.ts';
import { crc32, md5, patternBytes, sha1 } from './helpers/files.ts';
import { recordsWhenPresent, startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';
import { create, patch } from './helpers/tus.ts';

const SECRET = 'test-secret-0123456789';

interface Received {
  form: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  raw: string;
}

/** A completion receiver whose answers the test scripts: one status per call, the last repeats. */
async function receiver(t: TestContext, statuses: number[]) {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      received.push({ form: new URLSearchParams(raw), headers: req.headers, raw });
      const status = statuses[Math.min(received.length - 1, statuses.length - 1)]!;
      res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify({ status, said: 'receiver' }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise((r) => server.close(r)));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/complete/`, received };
}

async function upload(endpoint: string, bytes: Buffer, meta: Record<string, string>) {
  const url = await create(endpoint, bytes.length, meta);
  return { url, id: url.split('/').pop()!, last: await patch(url, 0, bytes) };
}

test('the form carries nginx-style fields, pass-through fields, digests and a valid signature', async (t) => {
  const r = await receiver(t, [200]);
  const s = await startTestServer(t, { completionUrl: r.url, digests: ['sha1', 'crc32'] });
  const bytes = patternBytes(70_000);
  const { id, last } = await upload(s.endpoint, bytes, {
    filename: 'data.csv',
    filetype: 'text/csv',
    fieldname: 'upload',
    name: 'Ann',
    description: 'sales',
    secret_note: 'not passed',
  });
  assert.equal(last.status, 200);
  assert.deepEqual(
    JSON.parse(last.body),
    { status: 200, said: 'receiver' },
    'the completion answer reaches the client',
  );
  assert.equal(r.received.length, 1);
  const { form, headers, raw } = r.received[0]!;
  assert.deepEqual(Object.fromEntries(form), {
    'upload.name': 'data.csv',
    'upload.content_type': 'text/csv',
    'upload.path': s.store.filePath(id),
    'upload.md5': md5(bytes),
    'upload.size': String(bytes.length),
    'upload.sha1': sha1(bytes),
    'upload.crc32': crc32(bytes),
    'upload.id': id,
    'upload.owner': '',
    name: 'Ann',
    description: 'sales',
  });
  assert.ok(
    verify(SECRET, 'completion-form', raw, headers['tuspass-signature'] as string),
    'signed with the form key of the shared secret',
  );
  assert.ok(!verify('another-secret-000000', 'completion-form', raw, headers['tuspass-signature'] as string));
  assert.ok(!verify(SECRET, 'hook-payload', raw, headers['tuspass-signature'] as string), 'not with the hook key');
  assert.equal(headers['tuspass-form-version'], '2');
  assert.equal(headers['tuspass-upload-id'], id);
  assert.equal(headers['content-type'], 'application/x-www-form-urlencoded; charset=utf-8');
});

test('a rejection in the cleanup range deletes the upload and reaches the client', async (t) => {
  for (const status of [409, 500]) {
    const r = await receiver(t, [status]);
    const s = await startTestServer(t, { completionUrl: r.url });
    const { url, id, last } = await upload(s.endpoint, patternBytes(5000), { filename: 'bad.exe' });
    assert.equal(last.status, status);
    assert.equal(last.headers['tuspass-completion'], 'rejected');
    assert.equal(JSON.parse(last.body).status, status);
    assert.equal(fs.existsSync(s.store.filePath(id)), false, 'file removed');
    assert.equal(fs.existsSync(s.store.statePath(id)), false, 'digest state removed');
    assert.equal(fs.existsSync(`${s.store.filePath(id)}.json`), false, 'info removed');
    assert.equal((await fetch(url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } })).status, 404);
  }
});

test('503 then 200: the upload is kept, the PATCH says \
pending, the form is retried with the same notice id', async (t) => {
  const r = await receiver(t, [503, 503, 200]);
  const s = await startTestServer(t, { completionUrl: r.url, retryMinMs: 50, retryMaxMs: 200 });
  const bytes = patternBytes(9000);
  const { id, last } = await upload(s.endpoint, bytes, { filename: 'later.bin' });
  assert.equal(last.status, 204);
  assert.equal(last.headers['tuspass-completion'], 'pending');
  assert.ok(await s.queue.drained(10_000), 'queue drained');
  assert.equal(r.received.length, 3);
  const ids = new Set(r.received.map((x) => x.headers['tuspass-notice-id']));
  assert.equal(ids.size, 1, 'one notice id across retries');
  assert.deepEqual(
    r.received.map((x) => x.raw),
    Array(3).fill(r.received[0]!.raw),
    'the same form each time',
  );
  assert.deepEqual(fs.readFileSync(s.store.filePath(id)), bytes, 'upload kept');
});

test('completion service down, upload server restarted, \
service back: the notice is delivered, nothing lost', async (t) => {
  const dataDir = tmpDir(t);
  const completionConfig = configFor({ dataDir, completionPort: 0, completionSecret: SECRET });
  // Learn a free port, then stop: the service is "down" at a known address.
  const probe = await startCompletionServer(completionConfig, { log: () => {} });
  const port = Number(new URL(probe.url).port);
  await probe.close();

  const overrides = { dataDir, completionUrl: `http://127.0.0.1:${port}/complete/`, retryMinMs: 100, retryMaxMs: 300 };
  let s = await startTestServer(t, overrides, { completion: false });
  const bytes = patternBytes(200_000, 9);
  const { id, last } = await upload(s.endpoint, bytes, { filename: 'survivor.bin', description: 'kept' });
  assert.equal(last.status, 204);
  assert.equal(last.headers['tuspass-completion'], 'pending');
  await s.close();
  assert.equal(fs.readdirSync(`${dataDir}/queue`).filter((f) => f.endsWith('.json')).length, 1, 'notice on disk');

  s = await startTestServer(t, overrides, { completion: false });
  const service = await startCompletionServer({ ...completionConfig, completionPort: port }, { log: () => {} });
  t.after(() => service.close());
  assert.ok(await s.queue.drained(10_000), 'delivered after restart');
  const list = (await (await fetch(`${service.url}/api/uploads`)).json()) as Array<Record<string, unknown>>;
  assert.equal(list.length, 1);
  assert.equal(list[0]!.upload_id, id);
  assert.equal(list[0]!.md5, md5(bytes));
  assert.deepEqual(list[0]!.fields, { description: 'kept' });
  assert.deepEqual(fs.readdirSync(`${dataDir}/queue`), []);
});

test('a notice queued and later rejected removes the upload then', async (t) => {
  const r = await receiver(t, [502, 422]);
  const s = await startTestServer(t, { completionUrl: r.url, retryMinMs: 50 });
  const { id, last } = await upload(s.endpoint, patternBytes(1000), { filename: 'x' });
  assert.equal(last.headers['tuspass-completion'], 'pending');
  assert.ok(await s.queue.drained(10_000));
  assert.equal(fs.existsSync(s.store.filePath(id)), false);
});

test('an upload complete when the process stopped, before its \
form went out, is announced at the next start', async (t) => {
  const dataDir = tmpDir(t);
  let s = await startTestServer(t, { dataDir });
  const bytes = patternBytes(40_000, 21);
  const url = await create(s.endpoint, bytes.length, { filename: 'crashed.bin' });
  const id = url.split('/').pop()!;
  const port = Number(new URL(s.url).port);
  await s.close();
  // What a crash between the last write and the completion leaves: all bytes, a "finished" state.
  await s.store.append(Readable.from([bytes]), id, 0, { size: bytes.length });
  assert.ok((await s.store.awaitingCompletion()).includes(id));

  s = await startTestServer(t, { dataDir, port });
  const list = await recordsWhenPresent(s.url);
  assert.equal(list.length, 1, 'recorded after the restart');
  assert.equal(list[0]!.md5, md5(bytes));
  assert.equal(list[0]!.name, 'crashed.bin');
  assert.deepEqual(await s.store.awaitingCompletion(), [], 'nothing left to announce');
});

test('a pre-finish hook that fails leaves the upload unannounced, and the next start announces it', async (t) => {
  const dataDir = tmpDir(t);
  const hook = path.join(tmpDir(t), 'broken.mjs');
  fs.writeFileSync(hook, `export const preFinish = () => { throw new Error('database down'); };\n`);
  let s = await startTestServer(t, { dataDir, hooksModules: [hook] });
  const bytes = patternBytes(30_000, 31);
  const { last } = await upload(s.endpoint, bytes, { filename: 'later.bin' });
  assert.equal(last.status, 500);
  assert.match(last.body, /ERR_HOOK_FAILED/);
  assert.deepEqual(await (await fetch(`${s.url}/api/uploads`)).json(), []);
  const port = Number(new URL(s.url).port);
  await s.close();

  s = await startTestServer(t, { dataDir, port });
  const list = await recordsWhenPresent(s.url);
  assert.equal(list.length, 1, 'announced once the hook works again');
  assert.equal(list[0]!.md5, md5(bytes));
});

test('a body going past the end: the bytes that fit complete the \
upload, which is announced; the request gets 413', async (t) => {
  const r = await receiver(t, [200]);
  const s = await startTestServer(t, { completionUrl: r.url });
  const bytes = patternBytes(1500, 32);
  const url = await create(s.endpoint, 1000, { filename: 'over.bin' });
  const res = await fetch(url, {
    method: 'PATCH',
    headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
    body: new ReadableStream({
      start(c) {
        c.enqueue(bytes.subarray(0, 800));
        c.enqueue(bytes.subarray(800));
        c.close();
      },
    }),
    duplex: 'half',
  } as RequestInit);
  assert.equal(res.status, 413);
  assert.equal(res.headers.get('upload-offset'), '1000');
  assert.equal(r.received.length, 1);
  assert.equal(r.received[0]!.form.get('file1.md5'), md5(bytes.subarray(0, 1000)));
});
