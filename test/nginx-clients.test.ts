// Real clients of the nginx upload module's endpoint: a requests-toolbelt script like django-nginx-upload's push
// client (Debian's /usr/bin/python3 with python3-requests-toolbelt) and a plain HTML form in Chromium.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { writeTestFile } from './helpers/files.ts';
import { openPage } from './helpers/page-browser.ts';
import { recordsWhenPresent, startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';
import { TEST_JWT_SECRET } from './helpers/jwt.ts';

const PYTHON = '/usr/bin/python3';

// django-nginx-upload's push client, in short: MultipartEncoder (name, terminal=yes, file1 as text/plain)
// wrapped in a MultipartEncoderMonitor, streamed to <url>/upload, printing the answer's message.
const PUSH_SCRIPT = `
import os, sys, requests
from requests_toolbelt import MultipartEncoder, MultipartEncoderMonitor
url, path = sys.argv[1], sys.argv[2]
seen = []
encoder = MultipartEncoder(fields={
    'name': os.path.basename(path),
    'terminal': 'yes',
    'file1': (os.path.basename(path), open(path, 'rb'), 'text/plain'),
})
monitor = MultipartEncoderMonitor(encoder, lambda m: seen.append(m.bytes_read))
r = requests.post(url + '/upload', data=monitor, headers={'Content-Type': monitor.content_type})
print('[Return status %d %s]' % (r.status_code, r.json()['message']))
print('progress-callbacks %d last %d of %d' % (len(seen), seen[-1], encoder.len))
`;

function python(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(PYTHON, args, { timeout: 60_000 }, (e, stdout, stderr) =>
      resolve({ code: e ? Number((e as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

test('a requests-toolbelt push client (MultipartEncoder + Monitor) posts name, terminal, file1 to /upload and reads \
"message"', async (t) => {
  const s = await startTestServer(t);
  const dir = tmpDir(t);
  const script = path.join(dir, 'push.py');
  fs.writeFileSync(script, PUSH_SCRIPT);
  const f = writeTestFile(dir, 'notes.txt', 3 * 1024 * 1024 + 17);
  const r = await python([script, s.url, f.path]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^\[Return status 200 Upload Complete\]$/m);
  const progress = /progress-callbacks (\d+) last (\d+) of (\d+)/.exec(r.stdout)!;
  assert.ok(Number(progress[1]) > 1, 'streamed in pieces, not read whole');
  assert.equal(progress[2], progress[3]);
  const [record] = await recordsWhenPresent(s.url, 1);
  assert.equal(record!.md5, f.md5);
  assert.equal(record!.name, 'notes.txt');
  assert.equal(record!.content_type, 'text/plain');
  assert.deepEqual(record!.fields, { name: 'notes.txt', terminal: 'yes' });
});

test('refused, push.py still prints the answer\'s "message" (a \
401 without a token): every JSON error carries one', async (t) => {
  const s = await startTestServer(t, { authJwtSecret: TEST_JWT_SECRET });
  const dir = tmpDir(t);
  const script = path.join(dir, 'push.py');
  fs.writeFileSync(script, PUSH_SCRIPT);
  const r = await python([script, s.url, writeTestFile(dir, 'notes.txt', 1000).path]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^\[Return status 401 .*token.*\]$/m);
  const answer = await fetch(`${s.url}/upload`, { method: 'POST' });
  const json = (await answer.json()) as { message?: string; error?: { code: string; message: string } };
  assert.equal(json.error?.code, 'ERR_AUTH_REQUIRED');
  assert.equal(json.message, json.error?.message, 'the message beside the code');
});

test("the table link of django-nginx-upload's page, /table (and /table/), leads to the page's table", async (t) => {
  const s = await startTestServer(t);
  for (const link of ['/table', '/table/']) {
    const res = await fetch(`${s.url}${link}`, { redirect: 'manual' });
    assert.equal(res.status, 302, link);
    assert.equal(res.headers.get('location'), '/#completed', link);
  }
  const page = await fetch(`${s.url}/table`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /id="completed"/);
});

test('a plain HTML form (django-nginx-upload’s page) submitted \
in Chromium ends on the table with the file listed', async (t) => {
  // django-nginx-upload's form, as the app's own page on the app's origin (another port here), which the
  // operator lists in CORS_ORIGINS: POST multipart to /upload with a hidden terminal=no.
  let action = '';
  const app = http.createServer((_req, res) => {
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.end(`<!doctype html><form method="POST" enctype="multipart/form-data" action="${action}">
    <input type="hidden" name="terminal" value="no"><input type="text" name="description" value="from a form">
    <input type="file" name="file1"><input type="submit" name="submit" value="Upload"></form>`);
  });
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => app.close(() => resolve())));
  const appOrigin = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
  const s = await startTestServer(t, { corsOrigins: [appOrigin] });
  action = `${s.url}/upload`;
  const f = writeTestFile(tmpDir(t), 'form-upload.bin', 200_000);
  const { page } = await openPage(t, s.url);
  await page.goto(`${appOrigin}/`);
  await page.setInputFiles('input[type=file]', f.path);
  await Promise.all([page.waitForURL(/\/#completed$/), page.click('input[type=submit]')]);
  await page.locator('#completed').getByText('form-upload.bin').first().waitFor({ timeout: 10_000 });
  const [record] = await recordsWhenPresent(s.url, 1);
  assert.equal(record!.md5, f.md5);
  assert.deepEqual(record!.fields, { terminal: 'no', description: 'from a form', submit: 'Upload' });
});
