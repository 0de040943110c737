// `tuspass start`: the completion service runs in the upload server's process, and a finished upload
// reaches its catalog by a direct call — with the checks the signed HTTP form gets, the same record,
// no HTTP request to itself — and is queued and retried when the catalog cannot take it.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import diagnostics from 'node:diagnostics_channel';
import fs from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { test, type TestContext } from 'node:test';
import { startCompletionServer } from '../server/start/completion-server.ts';
import { configFor } from '../server/config/config.ts';
import type { HookHandler } from '../hooks/types.ts';
import { COMPLETION_HEADER } from '../core/wire.ts';
import { md5, patternBytes, sha1 } from './helpers/files.ts';
import { ownPostgres } from './helpers/engines.ts';
import { pgDatabase } from './helpers/pg.ts';
import { recordsWhenPresent, startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';
import { create, patch } from './helpers/tus.ts';

const SECRET = 'test-secret-0123456789';
const META = {
  filename: 'Résumé – final.pdf',
  filetype: 'application/pdf',
  name: 'Ann',
  description: 'sales & more',
  secret_note: 'not passed',
};

/** Every HTTP request this process serves while the test runs (node's own diagnostics channel). */
function servedRequests(t: TestContext): string[] {
  const seen: string[] = [];
  const onStart = (message: unknown) => {
    const req = (message as { request: IncomingMessage }).request;
    seen.push(`${req.method} ${req.url}`);
  };
  diagnostics.subscribe('http.server.request.start', onStart);
  t.after(() => diagnostics.unsubscribe('http.server.request.start', onStart));
  return seen;
}

async function tusUpload(endpoint: string, bytes: Buffer, meta: Record<string, string>) {
  const url = await create(endpoint, bytes.length, meta);
  return { id: url.split('/').pop()!, last: await patch(url, 0, bytes) };
}

async function multipartUpload(baseUrl: string, bytes: Buffer) {
  const body = new FormData();
  body.set('description', 'sales & more');
  body.set('secret_note', 'not passed');
  body.set('file1', new Blob([new Uint8Array(bytes)], { type: 'application/pdf' }), META.filename);
  const res = await fetch(`${baseUrl}/upload`, { method: 'POST', body });
  return { status: res.status, body: await res.text(), completion: res.headers.get(COMPLETION_HEADER) };
}

/** A record as the API shows it, without what differs between two stores and two catalogs. */
function comparable(record: Record<string, unknown>): Record<string, unknown> {
  const { id: _id, upload_id: _upload, path: _path, created_at: _at, url: _url, ...rest } = record;
  return rest;
}

test('tuspass start records finished uploads (tus and multipart) without an HTTP request to itself', async (t) => {
  const served = servedRequests(t);
  const s = await startTestServer(t, { digests: ['sha1'] });
  const bytes = patternBytes(40_000);
  const { last } = await tusUpload(s.endpoint, bytes, META);
  assert.equal(last.status, 200, last.body);
  assert.equal(last.headers[COMPLETION_HEADER.toLowerCase()], 'delivered');
  const multipart = await multipartUpload(s.url, bytes);
  assert.equal(multipart.status, 200, multipart.body);
  assert.equal(multipart.completion, 'delivered');
  const records = await recordsWhenPresent(s.url, 2);
  assert.equal(records.length, 2);
  for (const r of records) assert.equal(r.md5, md5(bytes));
  const own = served.filter(
    (line) => line.startsWith('POST ') && !line.startsWith('POST /files') && !line.startsWith('POST /upload'),
  );
  assert.deepEqual(own, [], `no form posted over HTTP; served: ${served.join(', ')}`);
  assert.ok(served.includes('POST /upload'), "the channel sees this server's requests");
});

test('the record made in process equals the one the completion service makes from the signed HTTP form, for tus and \
multipart', async (t) => {
  // The same upload twice: to `tuspass start`, and to an upload server whose forms go over HTTP to a
  // completion service of its own (COMPLETION_URL), on the same store.
  // Every metadata key passes, so hostile ones reach the form's writer: keys posing as generated
  // ones (dropped by the writer and the reader alike), values with the form encoding's own characters.
  const passFields = /.*/;
  const inProcess = await startTestServer(t, { digests: ['sha1', 'crc32'], passFields });
  const dataDir = tmpDir(t);
  const service = await startCompletionServer(
    configFor({ dataDir, completionSecret: SECRET, completionPort: 0, host: '127.0.0.1' }),
    { log: () => {} },
  );
  t.after(() => service.close());
  const storeDir = configFor({ dataDir }).storeDir;
  fs.mkdirSync(storeDir, { recursive: true });
  const overHttp = await startTestServer(
    t,
    { dataDir, storeDir, digests: ['sha1', 'crc32'], passFields, completionUrl: `${service.url}/complete/` },
    { completion: false },
  );
  const hostile = {
    'doc.path': '/etc/passwd',
    'other.md5': '0'.repeat(32),
    'doc.owner': 'root',
    note: 'a+b=c%20d&e\n\u0000é',
  };
  const bytes = patternBytes(70_001);

  for (const s of [inProcess, overHttp]) {
    const { last } = await tusUpload(s.endpoint, bytes, { ...META, fieldname: 'doc', ...hostile });
    assert.equal(last.status, 200, last.body);
    const multipart = await multipartUpload(s.url, bytes);
    assert.equal(multipart.status, 200, multipart.body);
  }
  const here = await recordsWhenPresent(inProcess.url, 2);
  const there = (await (await fetch(`${service.url}/api/uploads`)).json()) as Array<Record<string, unknown>>;
  assert.equal(here.length, 2);
  assert.equal(there.length, 2);
  const byName = (list: Array<Record<string, unknown>>) =>
    list.map(comparable).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  assert.deepEqual(byName(here), byName(there));
  for (const r of here) {
    assert.equal(r.md5, md5(bytes));
    assert.equal(r.sha1, sha1(bytes));
    assert.equal(r.size, bytes.length);
    assert.equal(r.name, META.filename);
    assert.equal((r.fields as Record<string, string>).description, 'sales & more');
    assert.equal(r.owner, '');
    assert.ok(String(r.path).startsWith(inProcess.config.storeDir), "the path is the store's, not a metadata key's");
    for (const key of ['doc.path', 'other.md5', 'doc.owner'])
      assert.equal((r.fields as Record<string, string>)[key], undefined, key);
  }
  const tus = here.find((r) => (r.fields as Record<string, string>).note !== undefined)!;
  assert.equal(
    (tus.fields as Record<string, string>).note,
    hostile.note,
    'the value as sent, over the form encoding or not',
  );
});

test("in process, a file whose size on disk is not the form's is refused (422), the upload removed, nothing \
recorded", async (t) => {
  // A user's pre-finish hook runs before complete-form: this one grows the file under the form.
  const grow: HookHandler = {
    name: 'grow',
    events: ['pre-finish'],
    async invokeHook(request) {
      fs.appendFileSync(request.Event.Upload.Storage!.Path, 'x');
      return {};
    },
  };
  const s = await startTestServer(t, {}, { hooks: [grow] });
  const bytes = patternBytes(1000);
  const { id, last } = await tusUpload(s.endpoint, bytes, META);
  assert.equal(last.status, 422, last.body);
  assert.equal(last.headers[COMPLETION_HEADER.toLowerCase()], 'rejected');
  assert.equal((JSON.parse(last.body) as { error: { code: string } }).error.code, 'ERR_SIZE_MISMATCH');
  assert.ok(!fs.existsSync(s.store.filePath(id)), 'the refused upload is removed');
  assert.deepEqual(await recordsWhenPresent(s.url, 1, 200), []);
});

test('in process with PostgreSQL away: the final PATCH says pending, and the form is recorded once PostgreSQL is \
back', async (t) => {
  const served = servedRequests(t);
  const pg = await ownPostgres(t);
  const s = await startTestServer(t, { databaseUrl: pg.url, retryMinMs: 100, retryMaxMs: 500 });
  await pg.stop();
  const bytes = patternBytes(5000);
  const { id, last } = await tusUpload(s.endpoint, bytes, META);
  assert.equal(last.status, 204, last.body);
  assert.equal(last.headers[COMPLETION_HEADER.toLowerCase()], 'pending');
  assert.ok(fs.existsSync(s.store.filePath(id)), 'the upload is kept');
  await pg.start();
  const records = await recordsWhenPresent(s.url, 1, 30_000);
  assert.equal(records.length, 1);
  assert.equal(records[0]!.upload_id, id);
  assert.equal(records[0]!.md5, md5(bytes));
  assert.ok(await s.queue.drained(30_000), 'the queue empties');
  assert.deepEqual(
    served.filter((line) => line.startsWith('POST /complete')),
    [],
  );
});

test("with PostgreSQL, metadata it cannot keep (a NUL, a name too long for its index) is refused as the form's fault \
(400, the upload removed), not queued and retried forever as an unavailable catalog; the catalog goes \
on", async (t) => {
  const s = await startTestServer(t, { databaseUrl: await pgDatabase(t), retryMinMs: 100, retryMaxMs: 500 });
  for (const meta of [
    { ...META, filename: crypto.randomBytes(3000).toString('base64url') },
    { ...META, filename: 'a\u0000b.pdf' },
  ]) {
    const { id, last } = await tusUpload(s.endpoint, patternBytes(100), meta);
    const what = JSON.stringify(meta).slice(0, 60);
    assert.equal(last.status, 400, `${what}: ${last.body}`);
    assert.equal(last.headers[COMPLETION_HEADER.toLowerCase()], 'rejected');
    const { error } = JSON.parse(last.body) as { error: { code: string; message: string } };
    assert.equal(error.code, 'ERR_FORM_FIELD_INVALID');
    assert.ok(!/index|UTF8|uploads_/.test(error.message), `PostgreSQL's words stay in the log: ${error.message}`);
    assert.ok(!fs.existsSync(s.store.filePath(id)), `${what}: the refused upload is removed`);
  }
  assert.ok(
    s.logs.some((l) => l.includes('uploads_duplicate')),
    s.logs.join('\n'),
  );
  assert.ok(await s.queue.drained(5000), 'nothing is queued');
  // A NUL in a pass-through field is kept (the fields are stored as JSON text), as with SQLite.
  const fine = await tusUpload(s.endpoint, patternBytes(100), { ...META, description: 'x\u0000' });
  assert.equal(fine.last.status, 200, fine.last.body);
  const [record] = await recordsWhenPresent(s.url, 1);
  assert.equal((record!.fields as Record<string, string>).description, 'x\u0000');
});
