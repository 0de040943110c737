// The completion service over real HTTP, real files and a real SQLite catalog.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { configFor, type Config } from '../server/config/config.ts';
import { formRecorder, localCompletion } from '../server/completion/receive.ts';
import { startCompletionServer } from '../server/start/completion-server.ts';
import { SqliteCatalog } from '../server/backends/catalog/sqlite-catalog.ts';
import { SIGNATURE_HEADER, sign } from '../core/signature.ts';
import { tmpDir } from './helpers/tmp.ts';

const SECRET = 'test-completion-secret-0123456789';
const md5 = (b: Buffer) => crypto.createHash('md5').update(b).digest('hex');

interface Service {
  config: Config;
  url: string;
  logs: string[];
  /** Writes a file into the store as a finished upload and answers its form fields. */
  upload(id: string, bytes: Buffer, extra?: Record<string, string>): Record<string, string>;
  post(form: Record<string, string> | string, signature?: string | null): Promise<Response>;
  list(): Promise<Array<Record<string, unknown>>>;
}

async function startService(t: TestContext): Promise<Service> {
  const dataDir = tmpDir(t);
  const config = configFor({ dataDir, completionSecret: SECRET, completionPort: 0, host: '127.0.0.1' });
  fs.mkdirSync(config.storeDir, { recursive: true });
  const logs: string[] = [];
  const server = await startCompletionServer(config, { log: (line) => logs.push(line) });
  t.after(() => server.close());
  return {
    config,
    url: server.url,
    logs,
    upload(id, bytes, extra = {}) {
      const file = path.join(config.storeDir, id);
      fs.writeFileSync(file, bytes);
      return {
        'file1.name': `${id}.bin`,
        'file1.content_type': 'application/x-test',
        'file1.path': file,
        'file1.md5': md5(bytes),
        'file1.size': String(bytes.length),
        'file1.id': id,
        description: 'holiday',
        ...extra,
      };
    },
    post(form, signature) {
      const body = typeof form === 'string' ? form : new URLSearchParams(form).toString();
      const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' };
      if (signature !== null) headers[SIGNATURE_HEADER] = signature ?? sign(SECRET, 'completion-form', body);
      return fetch(`${server.url}/complete/`, { method: 'POST', headers, body });
    },
    async list() {
      return (await (await fetch(`${server.url}/api/uploads`)).json()) as Array<Record<string, unknown>>;
    },
  };
}

async function assertError(res: Response, status: number, code: string) {
  const body = (await res.json()) as { error: { code: string; message: string } };
  assert.equal(res.status, status, JSON.stringify(body));
  assert.equal(body.error.code, code);
  assert.equal(typeof body.error.message, 'string');
}

test('a good signed form is recorded, listed and downloadable with the same bytes', async (t) => {
  const s = await startService(t);
  const bytes = crypto.randomBytes(100_000);
  const form = s.upload('abc123', bytes);
  const res = await s.post(form);
  assert.equal(res.status, 200);
  const answer = (await res.json()) as { id: string; url: string };
  assert.deepEqual(answer, {
    message: 'Upload Complete',
    id: answer.id,
    name: 'abc123.bin',
    size: bytes.length,
    md5: md5(bytes),
    url: `/api/uploads/${answer.id}/file`,
  });

  const list = await s.list();
  assert.equal(list.length, 1);
  assert.deepEqual(
    { ...list[0], created_at: undefined },
    {
      id: answer.id,
      upload_id: 'abc123',
      name: 'abc123.bin',
      size: bytes.length,
      md5: md5(bytes),
      content_type: 'application/x-test',
      path: form['file1.path'],
      owner: '',
      fields: { description: 'holiday' },
      created_at: undefined,
      url: answer.url,
    },
  );
  const one = await fetch(`${s.url}/api/uploads/${answer.id}`);
  assert.deepEqual(await one.json(), list[0]);

  const file = await fetch(s.url + answer.url);
  assert.equal(file.status, 200);
  assert.equal(file.headers.get('content-type'), 'application/x-test');
  assert.equal(file.headers.get('content-length'), String(bytes.length));
  assert.equal(
    file.headers.get('content-disposition'),
    'attachment; filename="abc123.bin"; filename*=UTF-8\'\'abc123.bin',
  );
  assert.ok(Buffer.from(await file.arrayBuffer()).equals(bytes));

  const part = await fetch(s.url + answer.url, { headers: { range: 'bytes=1000-1999' } });
  assert.equal(part.status, 206);
  assert.equal(part.headers.get('content-range'), `bytes 1000-1999/${bytes.length}`);
  assert.ok(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(1000, 2000)));
});

test('optional digests are checked, kept and listed', async (t) => {
  const s = await startService(t);
  const form = s.upload('dig', Buffer.from('hello'), { 'file1.sha1': 'AA'.repeat(20), 'file1.crc32': '3610a686' });
  assert.equal((await s.post(form)).status, 200);
  const [row] = await s.list();
  assert.equal(row!.sha1, 'aa'.repeat(20));
  assert.equal(row!.crc32, '3610a686');
  await assertError(
    await s.post({ ...s.upload('dig2', Buffer.from('x')), 'file1.crc32': 'xyz' }),
    400,
    'ERR_FORM_FIELD_INVALID',
  );
});

test('a repeated notice answers the same record and creates no second one', async (t) => {
  const s = await startService(t);
  const form = s.upload('rep', Buffer.from('repeat me'));
  const first = await (await s.post(form)).json();
  const second = await s.post(form);
  assert.equal(second.status, 200);
  assert.deepEqual(await second.json(), first);
  assert.equal((await s.list()).length, 1);
});

test('concurrent duplicate notices make one record', async (t) => {
  const s = await startService(t);
  const form = s.upload('dup', Buffer.from('at the same time'));
  const answers = await Promise.all(Array.from({ length: 8 }, () => s.post(form)));
  assert.deepEqual(
    answers.map((r) => r.status),
    Array(8).fill(200),
  );
  const ids = new Set(await Promise.all(answers.map(async (r) => ((await r.json()) as { id: string }).id)));
  assert.equal(ids.size, 1);
  assert.equal((await s.list()).length, 1);
});

test('unsigned and wrongly signed forms are refused with 401 and record nothing', async (t) => {
  const s = await startService(t);
  const form = s.upload('sig', Buffer.from('signed?'));
  const body = new URLSearchParams(form).toString();
  await assertError(await s.post(body, null), 401, 'ERR_SIGNATURE_INVALID');
  await assertError(
    await s.post(body, sign('another-secret-of-some-length', 'completion-form', body)),
    401,
    'ERR_SIGNATURE_INVALID',
  );
  await assertError(
    await s.post(`${body}&extra=1`, sign(SECRET, 'completion-form', body)),
    401,
    'ERR_SIGNATURE_INVALID',
  );
  await assertError(await s.post(body, 'sha256=zz'), 401, 'ERR_SIGNATURE_INVALID');
  // The signature is checked before the form: an unsigned garbage body is still a 401, not a 400.
  await assertError(await s.post('garbage', null), 401, 'ERR_SIGNATURE_INVALID');
  assert.deepEqual(await s.list(), []);
  assert.ok(
    s.logs.some((l) => l.includes('ERR_SIGNATURE_INVALID POST /complete/')),
    s.logs.join('\n'),
  );
});

test('a path that leaves the store with .. is refused with 403', async (t) => {
  const s = await startService(t);
  const outside = path.join(s.config.dataDir, 'secret.txt');
  fs.writeFileSync(outside, 'not yours');
  const form = s.upload('dots', Buffer.from('not yours'));
  const sneaky = `${s.config.storeDir}/../secret.txt`;
  await assertError(await s.post({ ...form, 'file1.path': sneaky }), 403, 'ERR_PATH_OUTSIDE_STORE');
  await assertError(await s.post({ ...form, 'file1.path': s.config.storeDir }), 403, 'ERR_PATH_OUTSIDE_STORE');
  assert.deepEqual(await s.list(), []);
});

test('symlinks inside the store that lead outside are refused with 403', async (t) => {
  const s = await startService(t);
  const outsideDir = tmpDir(t);
  const outside = path.join(outsideDir, 'passwd');
  fs.writeFileSync(outside, 'root:x:0:0');
  const form = s.upload('link', Buffer.from('root:x:0:0'));
  const link = path.join(s.config.storeDir, 'link-to-file');
  fs.symlinkSync(outside, link);
  await assertError(await s.post({ ...form, 'file1.path': link }), 403, 'ERR_PATH_OUTSIDE_STORE');
  const dirLink = path.join(s.config.storeDir, 'link-to-dir');
  fs.symlinkSync(outsideDir, dirLink);
  await assertError(
    await s.post({ ...form, 'file1.path': path.join(dirLink, 'passwd') }),
    403,
    'ERR_PATH_OUTSIDE_STORE',
  );
  assert.deepEqual(await s.list(), []);
});

test('a missing file or a size that differs is refused with 422', async (t) => {
  const s = await startService(t);
  const form = s.upload('sized', Buffer.from('twelve bytes'));
  await assertError(
    await s.post({ ...form, 'file1.path': path.join(s.config.storeDir, 'nothing-here') }),
    422,
    'ERR_FILE_MISSING',
  );
  await assertError(await s.post({ ...form, 'file1.size': '13' }), 422, 'ERR_SIZE_MISMATCH');
  assert.deepEqual(await s.list(), []);
});

test('missing and malformed fields are refused with 400', async (t) => {
  const s = await startService(t);
  const form = s.upload('fields', Buffer.from('data'));
  const without = (key: string) => Object.fromEntries(Object.entries(form).filter(([k]) => k !== key));
  await assertError(await s.post(without('file1.md5')), 400, 'ERR_FORM_FIELD_MISSING');
  await assertError(await s.post(without('file1.path')), 400, 'ERR_FORM_FIELD_MISSING');
  await assertError(await s.post(without('file1.id')), 400, 'ERR_FORM_FIELD_MISSING');
  await assertError(await s.post({ ...form, 'file1.md5': 'not-an-md5' }), 400, 'ERR_FORM_FIELD_INVALID');
  await assertError(await s.post({ ...form, 'file1.md5': 'a'.repeat(33) }), 400, 'ERR_FORM_FIELD_INVALID');
  await assertError(await s.post({ ...form, 'file1.size': '4.0' }), 400, 'ERR_FORM_FIELD_INVALID');
  await assertError(await s.post({ ...form, 'file1.size': '-4' }), 400, 'ERR_FORM_FIELD_INVALID');
  await assertError(await s.post({ ...form, 'file1.path': 'relative/fields' }), 400, 'ERR_FORM_FIELD_INVALID');
  assert.deepEqual(await s.list(), []);
});

test('another field name works and only its keys are the file; the rest pass through', async (t) => {
  const s = await startService(t);
  const form = Object.fromEntries(
    Object.entries(s.upload('other', Buffer.from('abc'))).map(([k, v]) => [k.replace(/^file1\./, 'photo.'), v]),
  );
  const res = await s.post({ ...form, terminal: 'T1', submit: 'Upload' });
  assert.equal(res.status, 200);
  const [row] = await s.list();
  assert.deepEqual(row!.fields, { description: 'holiday', terminal: 'T1', submit: 'Upload' });
});

test('filenames with quotes, newlines and unicode download under a safely encoded name', async (t) => {
  const s = await startService(t);
  const name = 'a "quoted"\r\nname ü €.txt';
  const form = s.upload('uni', Buffer.from('unicode'), { 'file1.name': name });
  const { id } = (await (await s.post(form)).json()) as { id: string };
  const [row] = await s.list();
  assert.equal(row!.name, name, 'the catalog keeps the name as it came');
  const res = await fetch(`${s.url}/api/uploads/${id}/file`);
  assert.equal(res.status, 200);
  const header = res.headers.get('content-disposition')!;
  assert.ok(/^[\x20-\x7e]+$/.test(header), `header is printable ASCII: ${header}`);
  const star = /filename\*=UTF-8''([^;\s]+)/.exec(header);
  assert.ok(star, header);
  assert.equal(decodeURIComponent(star[1]!), 'a "quoted"__name ü €.txt');
  const plain = /filename="((?:[^"\\]|\\.)*)"/.exec(header);
  assert.ok(plain, header);
  assert.ok(!plain[1]!.includes('\n') && !plain[1]!.includes('\r'));
  assert.equal(await res.text(), 'unicode');
});

test('unknown records and files gone from the store are 404', async (t) => {
  const s = await startService(t);
  await assertError(await fetch(`${s.url}/api/uploads/999`), 404, 'ERR_RECORD_NOT_FOUND');
  await assertError(await fetch(`${s.url}/api/uploads/nope/file`), 404, 'ERR_RECORD_NOT_FOUND');
  const form = s.upload('gone', Buffer.from('soon gone'));
  const { id } = (await (await s.post(form)).json()) as { id: string };
  fs.unlinkSync(form['file1.path']!);
  await assertError(await fetch(`${s.url}/api/uploads/${id}/file`), 404, 'ERR_RECORD_FILE_GONE');
});

test('a recorded file swapped for a symlink pointing outside is not served', async (t) => {
  const s = await startService(t);
  const form = s.upload('swap', Buffer.from('original'));
  const { id } = (await (await s.post(form)).json()) as { id: string };
  const outside = path.join(tmpDir(t), 'private');
  fs.writeFileSync(outside, 'original');
  fs.unlinkSync(form['file1.path']!);
  fs.symlinkSync(outside, form['file1.path']!);
  await assertError(await fetch(`${s.url}/api/uploads/${id}/file`), 403, 'ERR_PATH_OUTSIDE_STORE');
});

// Which origins may read the list (CORS_ORIGINS): test/cors.test.ts.
test('the list pages newest first', async (t) => {
  const s = await startService(t);
  for (const id of ['p1', 'p2', 'p3']) assert.equal((await s.post(s.upload(id, Buffer.from(id)))).status, 200);
  const page = await fetch(`${s.url}/api/uploads?limit=2&offset=1`);
  assert.deepEqual(
    ((await page.json()) as Array<{ upload_id: string }>).map((r) => r.upload_id),
    ['p2', 'p1'],
  );
  await assertError(await fetch(`${s.url}/api/uploads?limit=abc`), 400, 'ERR_QUERY_INVALID');
  await assertError(await fetch(`${s.url}/api/uploads?limit=100000`), 400, 'ERR_QUERY_INVALID');
});

test('an oversized form body is refused with 413', async (t) => {
  const s = await startService(t);
  const body = `x=${'y'.repeat(2 * 1024 * 1024)}`;
  await assertError(await s.post(body), 413, 'ERR_FORM_TOO_LARGE');
});

test('start-up fails naming CATALOG_PATH when the catalog cannot be opened', async (t) => {
  const dataDir = tmpDir(t);
  const blocker = path.join(dataDir, 'a-file');
  fs.writeFileSync(blocker, '');
  const config = configFor({
    dataDir,
    completionSecret: SECRET,
    completionPort: 0,
    catalogPath: path.join(blocker, 'catalog.sqlite'),
  });
  await assert.rejects(startCompletionServer(config), /CATALOG_PATH=.*a-file/);
});

test('records survive a restart of the service', async (t) => {
  const dataDir = tmpDir(t);
  const config = configFor({ dataDir, completionSecret: SECRET, completionPort: 0 });
  fs.mkdirSync(config.storeDir, { recursive: true });
  const file = path.join(config.storeDir, 'persist');
  fs.writeFileSync(file, 'persisted');
  const body = new URLSearchParams({
    'file1.name': 'p.txt',
    'file1.path': file,
    'file1.md5': md5(Buffer.from('persisted')),
    'file1.size': '9',
    'file1.id': 'persist',
  }).toString();
  const post = (url: string) =>
    fetch(`${url}/complete/`, {
      method: 'POST',
      headers: { [SIGNATURE_HEADER]: sign(SECRET, 'completion-form', body) },
      body,
    });
  const first = await startCompletionServer(config, { log: () => {} });
  const { id } = (await (await post(first.url)).json()) as { id: string };
  await first.close();
  const second = await startCompletionServer(config, { log: () => {} });
  t.after(() => second.close());
  assert.equal(
    ((await (await fetch(`${second.url}/api/uploads/${id}`)).json()) as { upload_id: string }).upload_id,
    'persist',
  );
  assert.equal(((await (await post(second.url)).json()) as { id: string }).id, id);
  assert.equal(await (await fetch(`${second.url}/api/uploads/${id}/file`)).text(), 'persisted');
});

test('in-process delivery (tuspass start) answers refusals as \
POST /complete/ does, and records the good form once', async (t) => {
  const s = await startService(t);
  const catalog = new SqliteCatalog(path.join(tmpDir(t), 'local.sqlite'));
  t.after(() => catalog.close());
  const logs: string[] = [];
  const deliver = localCompletion(formRecorder(s.config, catalog), (line) => logs.push(line));
  const form = s.upload('local', Buffer.from('twelve bytes'));
  // Nothing is signed in process: the form as built goes straight to the checks.
  const handed = (fields: Record<string, string>) => deliver(new URLSearchParams(fields));
  const cases: Array<[Record<string, string>, number, string]> = [
    [{ ...form, 'file1.path': '/etc/passwd' }, 403, 'ERR_PATH_OUTSIDE_STORE'],
    [{ ...form, 'file1.path': path.join(s.config.storeDir, '..', 'elsewhere') }, 403, 'ERR_PATH_OUTSIDE_STORE'],
    [{ ...form, 'file1.size': '13' }, 422, 'ERR_SIZE_MISMATCH'],
    [{ ...form, 'file1.path': path.join(s.config.storeDir, 'never-written') }, 422, 'ERR_FILE_MISSING'],
    [{ ...form, 'file1.md5': 'not-hex' }, 400, 'ERR_FORM_FIELD_INVALID'],
  ];
  for (const [fields, status, code] of cases) {
    const { status: got, body } = await handed(fields);
    const over = await s.post(fields);
    assert.equal(got, status, body);
    assert.equal(over.status, status, 'the same status over HTTP');
    assert.equal((JSON.parse(body) as { error: { code: string } }).error.code, code);
    assert.equal(((await over.json()) as { error: { code: string } }).error.code, code, 'the same code over HTTP');
  }
  assert.equal(logs.length, cases.length);
  assert.equal((await catalog.list({ limit: 10, offset: 0 })).length, 0, 'a refused form records nothing');
  const ok = await handed(form);
  assert.equal(ok.status, 200, ok.body);
  const again = await handed(form);
  assert.equal(
    JSON.parse(again.body).id,
    JSON.parse(ok.body).id,
    'a repeated form of one upload id answers the first record',
  );
  assert.equal((await catalog.list({ limit: 10, offset: 0 })).length, 1);
});

test('the record made in process equals the one made over HTTP for the same form: fields, digests, size, name, \
pass-through', async (t) => {
  const s = await startService(t);
  const catalog = new SqliteCatalog(path.join(tmpDir(t), 'local.sqlite'));
  t.after(() => catalog.close());
  const bytes = crypto.randomBytes(5000);
  const form = s.upload('same', bytes, {
    'file1.name': 'Résumé "final"\n.pdf',
    'file1.sha1': crypto.createHash('sha1').update(bytes).digest('hex').toUpperCase(),
    'file1.crc32': '0a1b2c3d',
    'file1.owner': 'alice',
    note: 'a & b = c',
    'x.y.md5': '1'.repeat(32),
  });
  const local = await localCompletion(formRecorder(s.config, catalog), () => {})(new URLSearchParams(form));
  assert.equal(local.status, 200, local.body);
  const over = await s.post(form);
  assert.equal(over.status, 200);
  const [viaHttp] = await s.list();
  const [inProcess] = await catalog.list({ limit: 1, offset: 0 });
  const comparable = (r: Record<string, unknown>) => {
    const { id: _id, createdAt: _c, created_at: _ca, url: _u, ...rest } = r;
    return rest;
  };
  assert.ok(viaHttp && inProcess);
  assert.deepEqual(
    comparable({
      upload_id: inProcess.uploadId,
      name: inProcess.name,
      size: inProcess.size,
      md5: inProcess.md5,
      sha1: inProcess.sha1,
      crc32: inProcess.crc32,
      content_type: inProcess.contentType,
      path: inProcess.path,
      owner: inProcess.owner,
      fields: inProcess.fields,
    }),
    comparable(viaHttp),
  );
  assert.equal(inProcess.md5, md5(bytes));
  assert.equal(inProcess.size, bytes.length);
  assert.deepEqual(inProcess.fields, { description: 'holiday', note: 'a & b = c' });
});
