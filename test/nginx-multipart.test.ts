// POST /upload (the nginx upload module's multipart endpoint) with real clients: curl -F, raw sockets.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { md5, sha1, writeTestFile } from './helpers/files.ts';
import { bearer, TEST_JWT_SECRET, tokenFor } from './helpers/jwt.ts';
import { curl, signedForm, startCaptureApp, storeFiles } from './helpers/multipart.ts';
import { openRaw } from './helpers/raw-http.ts';
import { prefixFor, REDIS } from './helpers/redis-pair.ts';
import { recordsWhenPresent, startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';

test('curl -F: one file with extra fields → "Upload Complete", recorded, only PASS_FIELDS kept', async (t) => {
  const s = await startTestServer(t, { digests: ['sha1'] });
  const f = writeTestFile(tmpDir(t), 'report.txt', 300_000);
  const r = await curl([
    '-F',
    'name=report.txt',
    '-F',
    'terminal=yes',
    '-F',
    'description=quarterly',
    '-F',
    'secret=dropped',
    '-F',
    `file1=@${f.path};type=text/plain`,
    `${s.url}/upload`,
  ]);
  assert.equal(r.status, 200, r.body);
  const answer = JSON.parse(r.body);
  assert.equal(answer.message, 'Upload Complete');
  assert.equal(answer.md5, f.md5);
  assert.equal(answer.size, f.bytes.length);
  assert.equal(answer.name, 'report.txt');
  const [record] = await recordsWhenPresent(s.url, 1);
  assert.equal(record!.md5, f.md5);
  assert.equal(record!.sha1, sha1(f.bytes));
  assert.equal(record!.content_type, 'text/plain');
  assert.deepEqual(record!.fields, { name: 'report.txt', terminal: 'yes', description: 'quarterly' });
  // No temporary copy: the recorded path is the store's file, with the bytes sent.
  assert.equal(path.dirname(String(record!.path)), fs.realpathSync(s.config.storeDir));
  assert.equal(md5(fs.readFileSync(String(record!.path))), f.md5);
  // The trailing-slash spelling is the same endpoint.
  const again = await curl(['-F', `file1=@${f.path}`, `${s.url}/upload/`]);
  assert.equal(again.status, 200, again.body);
});

test('curl -F: two files in one request → each its own prefix in one signed form, each recorded', async (t) => {
  const app = await startCaptureApp(t, 200, { message: 'Upload Complete' });
  const s = await startTestServer(t, { completionUrl: app.url, digests: ['crc32'] });
  const dir = tmpDir(t);
  const a = writeTestFile(dir, 'a.bin', 70_000, 1);
  const b = writeTestFile(dir, 'b.bin', 1, 2);
  const r = await curl([
    '-F',
    'name=pair',
    '-F',
    'terminal=yes',
    '-F',
    'other=x',
    '-F',
    `file1=@${a.path}`,
    '-F',
    `file2=@${b.path};type=image/png`,
    `${s.url}/upload`,
  ]);
  assert.equal(r.status, 200, r.body);
  assert.equal(JSON.parse(r.body).message, 'Upload Complete');
  assert.equal(r.headers['tuspass-completion'], 'delivered');
  const { params, headers } = signedForm(app, s.config.completionSecret!);
  assert.equal(headers['tuspass-form-version'], '2');
  assert.equal(params.get('file1.name'), 'a.bin');
  assert.equal(params.get('file1.md5'), a.md5);
  assert.equal(params.get('file1.size'), String(a.bytes.length));
  assert.equal(params.get('file2.name'), 'b.bin');
  assert.equal(params.get('file2.content_type'), 'image/png');
  assert.equal(params.get('file2.md5'), b.md5);
  assert.match(params.get('file2.crc32') ?? '', /^[0-9a-f]{8}$/);
  assert.equal(params.get('name'), 'pair');
  assert.equal(params.get('other'), null);
  // django-nginx-upload's order: .name, .content_type, .path, .md5, .size first.
  assert.deepEqual([...params.keys()].slice(0, 5), [
    'file1.name',
    'file1.content_type',
    'file1.path',
    'file1.md5',
    'file1.size',
  ]);
  assert.equal(fs.readFileSync(params.get('file1.path')!).length, a.bytes.length);
});

test('the built-in service records every file of a multi-file \
request; a repeated field name gets its own prefix', async (t) => {
  const s = await startTestServer(t);
  const dir = tmpDir(t);
  const a = writeTestFile(dir, 'one.txt', 1000, 3);
  const b = writeTestFile(dir, 'two.txt', 2000, 4);
  const r = await curl(['-F', `files=@${a.path}`, '-F', `files=@${b.path}`, `${s.url}/upload`]);
  assert.equal(r.status, 200, r.body);
  const answer = JSON.parse(r.body);
  assert.equal(answer.files.length, 2);
  const records = await recordsWhenPresent(s.url, 2);
  assert.deepEqual(records.map((x) => x.md5).sort(), [a.md5, b.md5].sort());
});

test('a browser form post (terminal=no, or Accept text/html) ends with a 303 to the table', async (t) => {
  const s = await startTestServer(t);
  const f = writeTestFile(tmpDir(t), 'page.txt', 100);
  const r = await curl(['-F', 'terminal=no', '-F', `file1=@${f.path}`, `${s.url}/upload`]);
  assert.equal(r.status, 303, r.body);
  assert.equal(r.headers.location, '/#completed');
  const html = await curl([
    '-H',
    'Accept: text/html,application/xhtml+xml,*/*;q=0.8',
    '-F',
    `file1=@${f.path}`,
    `${s.url}/upload`,
  ]);
  assert.equal(html.status, 303);
  const json = await curl([
    '-H',
    'Accept: application/json',
    '-F',
    'terminal=yes',
    '-F',
    `file1=@${f.path}`,
    `${s.url}/upload`,
  ]);
  assert.equal(json.status, 200);
});

test("a rejecting app: its status and body are the answer, and \
the request's files are removed (CLEANUP_STATUSES)", async (t) => {
  const app = await startCaptureApp(t, 422, { error: 'not this one' });
  const s = await startTestServer(t, { completionUrl: app.url });
  const dir = tmpDir(t);
  const a = writeTestFile(dir, 'a.bin', 5000, 1);
  const b = writeTestFile(dir, 'b.bin', 6000, 2);
  const r = await curl(['-F', `file1=@${a.path}`, '-F', `file2=@${b.path}`, `${s.url}/upload`]);
  assert.equal(r.status, 422);
  assert.deepEqual(JSON.parse(r.body), { error: 'not this one' });
  assert.equal(r.headers['tuspass-completion'], 'rejected');
  assert.deepEqual(storeFiles(s.config.storeDir), []);
});

test('the app down: 204 pending, the form queued, then delivered once the app is back', async (t) => {
  const app = await startCaptureApp(t);
  await app.down();
  const s = await startTestServer(t, { completionUrl: app.url });
  const f = writeTestFile(tmpDir(t), 'later.bin', 4096);
  const r = await curl(['-F', 'name=later', '-F', `file1=@${f.path}`, `${s.url}/upload`]);
  assert.equal(r.status, 204);
  assert.equal(r.headers['tuspass-completion'], 'pending');
  assert.equal(storeFiles(s.config.storeDir).length, 2, 'the file and its info are kept');
  await app.up();
  for (const until = Date.now() + 10_000; app.forms.length === 0 && Date.now() < until; )
    await new Promise((r) => setTimeout(r, 50));
  assert.equal(app.forms.length, 1);
  assert.equal(app.forms[0]!.params.get('file1.md5'), f.md5);
  assert.equal(app.forms[0]!.params.get('name'), 'later');
});

test('a multipart form is queued under the one completion kind; one an earlier version queued as complete-multipart \
is still delivered, and its rejection removes every file', async (t) => {
  const app = await startCaptureApp(t, 422, { error: 'not these' });
  await app.down();
  const dataDir = tmpDir(t);
  const first = await startTestServer(t, { dataDir, completionUrl: app.url });
  const a = writeTestFile(tmpDir(t), 'a.bin', 2048);
  const b = writeTestFile(tmpDir(t), 'b.bin', 3000, 2);
  const r = await curl(['-F', `file1=@${a.path}`, '-F', `file2=@${b.path}`, `${first.url}/upload`]);
  assert.equal(r.status, 204);
  await first.close();
  const queueDir = path.join(dataDir, 'queue');
  const [name, ...more] = fs.readdirSync(queueDir).filter((n) => n.endsWith('.json'));
  assert.equal(more.length, 0);
  const notice = JSON.parse(fs.readFileSync(path.join(queueDir, name!), 'utf8')) as {
    kind: string;
    payload: { uploadId: string; uploadIds: string[]; form: string };
  };
  assert.equal(notice.kind, 'complete-form', 'every completion form is queued under one kind');
  assert.equal(notice.payload.uploadIds.length, 2);
  assert.equal(
    notice.payload.uploadId,
    notice.payload.uploadIds[0],
    'the first upload names it for `tuspass queue list`',
  );
  // As an earlier version wrote it: its own kind, no uploadId.
  const { uploadId: _first, ...earlier } = notice.payload;
  fs.writeFileSync(
    path.join(queueDir, name!),
    JSON.stringify({ ...notice, kind: 'complete-multipart', payload: earlier }),
  );
  assert.equal(storeFiles(first.config.storeDir).length, 4, 'both files and their info are kept meanwhile');

  await app.up();
  const second = await startTestServer(t, { dataDir, completionUrl: app.url });
  assert.ok(await second.queue.drained(10_000), 'the earlier notice is delivered');
  assert.equal(app.forms.length, 1);
  assert.equal(app.forms[0]!.params.get('file2.md5'), b.md5);
  assert.deepEqual(storeFiles(second.config.storeDir), [], 'the rejection removed both files');
});

const boundary = '----tuspassBoundary7MA4YWxk';
const part = (name: string, filename: string, body: string) =>
  `--${boundary}\r\nContent-Disposition: form-data; name="${name}"; filename="${filename}"\r\nContent-Type: ` +
  `text/plain\r\n\r\n${body}\r\n`;

async function rawPost(url: string, head: string, body: Buffer | string): Promise<{ status: number; text: string }> {
  const c = await openRaw(url);
  c.socket.write(head);
  c.socket.write(body);
  await Promise.race([c.closed, new Promise((r) => setTimeout(r, 3000))]);
  const text = c.received().toString();
  c.socket.destroy();
  return { status: Number(text.split(' ')[1]), text };
}

const headFor = (s: { url: string }, length: number, contentType = `multipart/form-data; boundary=${boundary}`) =>
  `POST /upload HTTP/1.1\r\nHost: ${new URL(s.url).host}\r\nContent-Type: ${contentType}\r\nContent-Length: ` +
  `${length}\r\nConnection: close\r\n\r\n`;

test('malformed bodies → 400 ERR_MULTIPART_INVALID and nothing \
kept: truncated, no boundary, huge part headers', async (t) => {
  const s = await startTestServer(t);
  // Cut before the closing boundary (the HTTP body itself is whole).
  const truncated = part('file1', 'cut.txt', 'x'.repeat(100_000)).slice(0, 60_000);
  let r = await rawPost(s.url, headFor(s, truncated.length), truncated);
  assert.equal(r.status, 400, r.text);
  assert.match(r.text, /ERR_MULTIPART_INVALID/);
  // No boundary parameter.
  const whole = `${part('file1', 'a.txt', 'abc')}--${boundary}--\r\n`;
  r = await rawPost(s.url, headFor(s, whole.length, 'multipart/form-data'), whole);
  assert.equal(r.status, 400, r.text);
  assert.match(r.text, /ERR_MULTIPART_INVALID/);
  // Part headers past 16 KiB.
  const huge =
    `--${boundary}\r\nContent-Disposition: form-data; name="file1"; filename="a.txt"\r\nX-Pad: ` +
    `${'p'.repeat(20_000)}\r\n\r\nabc\r\n--${boundary}--\r\n`;
  r = await rawPost(s.url, headFor(s, huge.length), huge);
  assert.equal(r.status, 400, r.text);
  assert.match(r.text, /ERR_MULTIPART_INVALID/);
  // A good file then a cut one: the good one goes too (nothing from the request is kept).
  const mixed = `${part('file1', 'good.txt', 'good')}${part('file2', 'bad.txt', 'y'.repeat(50_000)).slice(0, 20_000)}`;
  r = await rawPost(s.url, headFor(s, mixed.length), mixed);
  assert.equal(r.status, 400, r.text);
  // A connection cut in the middle of the body.
  const c = await openRaw(s.url);
  c.socket.write(headFor(s, 1_000_000));
  c.socket.write(part('file1', 'gone.txt', 'z'.repeat(200_000)));
  await new Promise((r2) => setTimeout(r2, 200));
  c.socket.destroy();
  await new Promise((r2) => setTimeout(r2, 300));
  // No form and no file: 400 too.
  const noFile = `--${boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nx\r\n--${boundary}--\r\n`;
  r = await rawPost(s.url, headFor(s, noFile.length), noFile);
  assert.equal(r.status, 400, r.text);
  assert.match(r.text, /ERR_MULTIPART_NO_FILE/);
  assert.deepEqual(storeFiles(s.config.storeDir), []);
  assert.equal((await recordsWhenPresent(s.url, 0)).length, 0);
});

test('MAX_SIZE applies per file: 413 and nothing kept', async (t) => {
  const s = await startTestServer(t, { maxSize: 10_000 });
  const dir = tmpDir(t);
  const small = writeTestFile(dir, 'small.bin', 5000, 1);
  const big = writeTestFile(dir, 'big.bin', 50_000, 2);
  const r = await curl(['-F', `file1=@${small.path}`, '-F', `file2=@${big.path}`, `${s.url}/upload`]);
  assert.equal(r.status, 413, r.body);
  assert.match(r.body, /ERR_MAX_SIZE_EXCEEDED/);
  assert.deepEqual(storeFiles(s.config.storeDir), []);
});

test('authentication on: no token → 401, a read-only token → \
403, an upload token → recorded as its owner', async (t) => {
  const s = await startTestServer(t, { authJwtSecret: TEST_JWT_SECRET });
  const f = writeTestFile(tmpDir(t), 'owned.bin', 1234);
  const none = await curl(['-F', `file1=@${f.path}`, `${s.url}/upload`]);
  assert.equal(none.status, 401);
  assert.match(none.headers['www-authenticate'] ?? '', /Bearer/);
  const reader = await curl([
    '-H',
    `Authorization: ${bearer(tokenFor('ann', 'read')).Authorization}`,
    '-F',
    `file1=@${f.path}`,
    `${s.url}/upload`,
  ]);
  assert.equal(reader.status, 403);
  const expired = await curl([
    '-H',
    `Authorization: ${bearer(tokenFor('ann', 'upload', { exp: 1 })).Authorization}`,
    '-F',
    `file1=@${f.path}`,
    `${s.url}/upload`,
  ]);
  assert.equal(expired.status, 401);
  const ok = await curl([
    '-H',
    `Authorization: ${bearer(tokenFor('ann', 'upload')).Authorization}`,
    '-F',
    `file1=@${f.path}`,
    `${s.url}/upload`,
  ]);
  assert.equal(ok.status, 200, ok.body);
  const list = (await (
    await fetch(`${s.url}/api/uploads`, { headers: bearer(tokenFor('ann', 'read')) })
  ).json()) as Array<Record<string, unknown>>;
  assert.equal(list.length, 1);
  assert.equal(list[0]!.owner, 'ann');
  assert.equal(
    (await (await fetch(`${s.url}/api/uploads`, { headers: bearer(tokenFor('bob', 'read')) })).json()).length,
    0,
  );
  assert.deepEqual(storeFiles(s.config.storeDir).length, 2);
});

test('other methods on /upload → 405 with Allow: POST; UPLOAD_FORM_PATH moves the endpoint', async (t) => {
  const s = await startTestServer(t, { uploadFormPath: '/in' });
  const f = writeTestFile(tmpDir(t), 'moved.bin', 10);
  assert.equal((await curl(['-F', `file1=@${f.path}`, `${s.url}/in/`])).status, 200);
  const get = await curl([`${s.url}/in`]);
  assert.equal(get.status, 405);
  assert.equal(get.headers.allow, 'POST');
  assert.equal((await curl(['-F', `file1=@${f.path}`, `${s.url}/upload`])).status, 404);
});

test('MULTIPART_FORM_FIELDS changes the per-file fields; unknown variables are refused at start', async (t) => {
  const { parseFormTemplates } = await import('../server/config/form-templates.ts');
  assert.throws(() => parseFormTemplates('$upload_field_name.x=$upload_nope'), /unknown variable \$upload_nope/);
  assert.throws(() => parseFormTemplates('no-equals-sign'), /<name>=<value>/);
  const app = await startCaptureApp(t);
  const templates = parseFormTemplates(
    // biome-ignore lint/suspicious/noTemplateCurlyInString: nginx's own ${name} variable syntax, not a template
    '${upload_field_name}_file=$upload_file_name,$upload_field_name.checksum=$upload_file_md5_uc,' +
      '$upload_field_name.n=$upload_file_number,$upload_field_name.path=$upload_tmp_path',
  );
  const s = await startTestServer(t, { completionUrl: app.url, multipartFormFields: templates });
  const dir = tmpDir(t);
  const a = writeTestFile(dir, 'a.txt', 10, 1);
  const b = writeTestFile(dir, 'b.txt', 20, 2);
  assert.equal((await curl(['-F', `doc=@${a.path}`, '-F', `img=@${b.path}`, `${s.url}/upload`])).status, 200);
  const p = app.forms[0]!.params;
  assert.equal(p.get('doc_file'), 'a.txt');
  assert.equal(p.get('doc.checksum'), a.md5.toUpperCase());
  assert.equal(p.get('img.n'), '2');
  assert.equal(p.get('doc.md5'), null, 'only what the templates say, then the contract keys');
  assert.match(p.get('doc.id') ?? '', /^[0-9a-f]{32}$/);
});

test('NETWORK_TIMEOUT: a multipart body that stops arriving → 408 ERR_MULTIPART_TIMEOUT, nothing kept', async (t) => {
  const s = await startTestServer(t, { networkTimeoutMs: 600 });
  const c = await openRaw(s.url);
  const start = part('file1', 'slow.bin', 'q'.repeat(100_000));
  c.socket.write(headFor(s, start.length + 50_000));
  c.socket.write(start);
  await Promise.race([c.closed, new Promise((r) => setTimeout(r, 5000))]);
  const text = c.received().toString();
  c.socket.destroy();
  assert.match(text, /^HTTP\/1\.1 408/);
  assert.match(text, /ERR_MULTIPART_TIMEOUT/);
  assert.deepEqual(storeFiles(s.config.storeDir), []);
});

test('hostile fields: a non-file field posing as a generated key \
never reaches the form, whatever PASS_FIELDS says', async (t) => {
  const app = await startCaptureApp(t);
  const s = await startTestServer(t, { completionUrl: app.url, passFields: /.*/ });
  const f = writeTestFile(tmpDir(t), 'real.bin', 100);
  const r = await curl([
    '-F',
    'file1.path=/etc/passwd',
    '-F',
    'file1.md5=00000000000000000000000000000000',
    '-F',
    'other.owner=root',
    '-F',
    `file1=@${f.path};filename=../../escape.bin`,
    '-F',
    'note=kept',
    `${s.url}/upload`,
  ]);
  assert.equal(r.status, 200, r.body);
  const p = app.forms[0]!.params;
  assert.equal(p.getAll('file1.path').length, 1);
  assert.equal(path.basename(p.get('file1.path')!), p.get('file1.id'));
  assert.equal(fs.readFileSync(p.get('file1.path')!).length, 100);
  assert.equal(p.get('file1.md5'), f.md5);
  assert.equal(p.get('other.owner'), null);
  assert.equal(p.get('file1.name'), 'escape.bin', 'no directory part in the name');
  assert.equal(p.get('note'), 'kept');
});

test('with the Redis locker (REDIS_URL): each file is written under its upload lock, as every fenced write \
must be', async (t) => {
  const s = await startTestServer(t, { redisUrl: REDIS }, { redisPrefix: prefixFor(t) });
  const f = writeTestFile(tmpDir(t), 'fenced.bin', 300_000);
  const r = await curl(['-F', `file1=@${f.path}`, `${s.url}/upload`]);
  assert.equal(r.status, 200, r.body);
  const [record] = await recordsWhenPresent(s.url, 1);
  assert.equal(record!.md5, f.md5);
});
