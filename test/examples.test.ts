// The apps of examples/, run end to end: the Django app (Debian's python3-django, /usr/bin/python3)
// and the Express app each receive tuspass's completion form from a real upload server — tus
// uploads, the nginx upload module's multipart POSTs — verify its signature, record the files and
// answer; tuspass hands their answer to the client. A form signed with another secret is refused.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { md5, patternBytes } from './helpers/files.ts';
import { freePort } from './helpers/ports.ts';
import { startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';
import { create, patch } from './helpers/tus.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PYTHON = '/usr/bin/python3';
const SECRET = 'example-secret-0123456789abcdef';

/** Starts a process and resolves once its output matches `ready` (the match); stopped when the test ends. */
async function startApp(
  t: TestContext,
  command: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv },
  ready: RegExp,
): Promise<RegExpExecArray> {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let output = '';
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk;
      const m = ready.exec(output);
      if (m) resolve(m);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${command} ${args.join(' ')} exited ${code}:\n${output}`)));
  });
}

/** tuspass's upload server posting its forms to `completionUrl`, signed with `secret`. */
const uploadServer = (t: TestContext, dataDir: string, completionUrl: string, secret = SECRET) =>
  startTestServer(t, { dataDir, completionUrl, completionSecret: secret }, { completion: false });

/** A tus upload of `bytes`; the answer to its last PATCH (the app's answer, relayed). */
async function tusUpload(endpoint: string, bytes: Buffer, meta: Record<string, string>) {
  const url = await create(endpoint, bytes.length, meta);
  return patch(url, 0, bytes);
}

/** What push.py and django-nginx-upload's web form send: a multipart POST to /upload. */
function multipartPost(url: string, bytes: Buffer, name: string, terminal: 'yes' | 'no') {
  const form = new FormData();
  form.set('name', name);
  form.set('terminal', terminal);
  form.set('file1', new Blob([new Uint8Array(bytes)], { type: 'text/plain' }), name);
  return fetch(`${url}/upload`, { method: 'POST', body: form, redirect: 'manual' });
}

test("examples/django: the django-nginx-upload view and model receive tuspass's form — tus, push.py's POST and the \
web form's", { timeout: 120_000 }, async (t) => {
  const dataDir = tmpDir(t);
  const cwd = path.join(ROOT, 'examples', 'django');
  const env = {
    ...process.env,
    TUSPASS_SECRET: SECRET,
    TUSPASS_STORE_DIR: path.join(dataDir, 'uploads'),
    DJANGO_DB: path.join(tmpDir(t), 'db.sqlite3'),
    PYTHONDONTWRITEBYTECODE: '1',
    PYTHONUNBUFFERED: '1',
  };
  await promisify(execFile)(PYTHON, ['manage.py', 'migrate', '--noinput'], { cwd, env });
  const port = await freePort();
  await startApp(
    t,
    PYTHON,
    ['manage.py', 'runserver', `127.0.0.1:${port}`, '--noreload'],
    { cwd, env },
    /Quit the server with CONTROL-C/,
  );
  const app = `http://127.0.0.1:${port}`;
  const s = await uploadServer(t, dataDir, `${app}/complete/`);

  const scan = patternBytes(700_000, 3);
  const answer = await tusUpload(s.endpoint, scan, { filename: 'scan.tif', filetype: 'image/tiff' });
  assert.equal(answer.status, 200, answer.body);
  assert.deepEqual(JSON.parse(answer.body), { message: 'Upload Complete' });
  assert.equal(answer.headers['tuspass-completion'], 'delivered');

  const pushed = patternBytes(300_000, 4);
  const byScript = await multipartPost(s.url, pushed, 'notes.txt', 'yes');
  assert.equal(byScript.status, 200);
  assert.deepEqual(await byScript.json(), { message: 'Upload Complete' }, 'what push.py prints');
  const byForm = await multipartPost(s.url, Buffer.from('from the web form'), 'form.txt', 'no');
  assert.equal(byForm.status, 302, 'terminal=no: on to the table');
  assert.equal(byForm.headers.get('location'), '/table/');

  const table = await (await fetch(`${app}/table/`)).text();
  for (const [name, bytes] of [
    ['scan.tif', scan],
    ['notes.txt', pushed],
    ['form.txt', Buffer.from('from the web form')],
  ] as const) {
    assert.match(
      table,
      new RegExp(`<td>${name.replace('.', '\\.')}</td><td>${bytes.length}</td><td>${md5(bytes)}</td>`),
      `${name} recorded:\n${table}`,
    );
  }

  // Signed with another secret: the view refuses (403, a cleanup status), tuspass removes the upload.
  const stranger = await uploadServer(t, tmpDir(t), `${app}/complete/`, 'another-secret-0123456789');
  const refused = await tusUpload(stranger.endpoint, Buffer.from('forged'), { filename: 'forged.txt' });
  assert.equal(refused.status, 403, refused.body);
  assert.equal(refused.headers['tuspass-completion'], 'rejected');
  assert.doesNotMatch(await (await fetch(`${app}/table/`)).text(), /forged\.txt/);
});

test('examples/express: the Express app verifies the form, records the upload and its fields, answers the client', {
  timeout: 60_000,
}, async (t) => {
  const dataDir = tmpDir(t);
  fs.mkdirSync(path.join(dataDir, 'uploads'));
  const [, app] = await startApp(
    t,
    process.execPath,
    ['server.js'],
    {
      cwd: path.join(ROOT, 'examples', 'express'),
      env: { ...process.env, TUSPASS_SECRET: SECRET, TUSPASS_STORE_DIR: path.join(dataDir, 'uploads'), PORT: '0' },
    },
    /completion view on (http:\/\/[^/]+)\/complete\//,
  );
  const s = await uploadServer(t, dataDir, `${app}/complete/`);

  const bytes = patternBytes(500_000, 8);
  const answer = await tusUpload(s.endpoint, bytes, { filename: 'photo.jpg', description: 'holiday' });
  assert.equal(answer.status, 200, answer.body);
  const body = JSON.parse(answer.body) as {
    message: string;
    files: Array<{ name: string; md5: string; size: number }>;
  };
  assert.equal(body.message, 'Upload Complete');
  assert.deepEqual(
    body.files.map((f) => [f.name, f.size, f.md5]),
    [['photo.jpg', bytes.length, md5(bytes)]],
  );
  const multipart = await multipartPost(s.url, Buffer.from('two'), 'two.txt', 'yes');
  assert.equal(multipart.status, 200);

  const records = (await (await fetch(`${app}/uploads`)).json()) as Array<{
    name: string;
    md5: string;
    description: string;
    path: string;
  }>;
  assert.deepEqual(
    records.map((r) => [r.name, r.md5]),
    [
      ['photo.jpg', md5(bytes)],
      ['two.txt', md5(Buffer.from('two'))],
    ],
  );
  assert.equal(records[0]!.description, 'holiday', 'a pass-through field');
  assert.ok(fs.existsSync(records[0]!.path), 'the path is the file in the store');

  const stranger = await uploadServer(t, tmpDir(t), `${app}/complete/`, 'another-secret-0123456789');
  const refused = await tusUpload(stranger.endpoint, Buffer.from('forged'), { filename: 'forged.txt' });
  assert.equal(refused.status, 403, refused.body);
  assert.equal(((await (await fetch(`${app}/uploads`)).json()) as unknown[]).length, 2);
});
