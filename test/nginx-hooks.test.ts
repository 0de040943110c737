// The user's hooks on POST /upload (multipart and the resumable mode), with a real HTTP hook receiver,
// a command hook (HOOKS_DIR) and module hooks: pre-create before a byte is stored, notices per file,
// pre-finish before the request's one form.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { HookHandler, HookRequest } from '../hooks/types.ts';
import { md5, patternBytes, writeTestFile } from './helpers/files.ts';
import { startHookReceiver } from './helpers/hook-receiver.ts';
import { bearer, TEST_JWT_SECRET, tokenFor } from './helpers/jwt.ts';
import { curl, startCaptureApp, storeFiles } from './helpers/multipart.ts';
import { startTestServer } from './helpers/server.ts';
import { tus } from './helpers/tus.ts';
import { tmpDir } from './helpers/tmp.ts';

/** A command hook for post-finish that saves each payload as one JSON file in `out`. */
function commandHook(dir: string, out: string): void {
  const file = path.join(dir, 'post-finish');
  fs.writeFileSync(
    file,
    `#!/bin/sh\nset -eu\npayload=$(cat)\nf="${out}/$(date +%s%N)-$$.json"\nprintf '%s' "$payload" > "$f.tmp"\nmv ` +
      `"$f.tmp" "$f"\necho '{}'\n`,
  );
  fs.chmodSync(file, 0o755);
}

const readDir = (dir: string): HookRequest[] =>
  fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as HookRequest);

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const ofType = (received: Array<{ request: HookRequest }>, type: string) =>
  received.filter((r) => r.request.Type === type).map((r) => r.request);

test("multipart: pre-create refuses a file part → the hook's answer, nothing of the request kept, post-terminate for \
the part already stored", async (t) => {
  const receiver = await startHookReceiver(t);
  receiver.answer = (r) =>
    r.Type === 'pre-create' && r.Event.Upload.MetaData.filename === 'bad.txt'
      ? {
          RejectUpload: true,
          HTTPResponse: { StatusCode: 403, Body: 'bad.txt is not welcome', Header: { 'X-Why': 'policy' } },
        }
      : {};
  const s = await startTestServer(t, { hooksHttp: receiver.url });
  const dir = tmpDir(t);
  const good = writeTestFile(dir, 'good.txt', 50_000, 1);
  const bad = writeTestFile(dir, 'bad.txt', 50_000, 2);
  const r = await curl([
    '-F',
    `file1=@${good.path}`,
    '-F',
    `file2=@${bad.path}`,
    '-F',
    'terminal=yes',
    `${s.url}/upload`,
  ]);
  assert.equal(r.status, 403, r.body);
  assert.equal(r.body, 'bad.txt is not welcome');
  assert.equal(r.headers['x-why'], 'policy');
  assert.deepEqual(storeFiles(s.config.storeDir), [], 'nothing of the request kept');
  const list = (await (await fetch(`${s.url}/api/uploads`)).json()) as unknown[];
  assert.equal(list.length, 0, 'nothing recorded');
  await receiver.until((rs) => ofType(rs, 'post-terminate').length === 1);
  const [created] = ofType(receiver.received, 'post-create');
  const [terminated] = ofType(receiver.received, 'post-terminate');
  assert.equal(terminated!.Event.Upload.ID, created!.Event.Upload.ID);
  assert.equal(created!.Event.Upload.MetaData.filename, 'good.txt');
  assert.equal(ofType(receiver.received, 'post-finish').length, 0);
  // The refused part was asked before it was created: pre-create with no storage yet.
  const pre = ofType(receiver.received, 'pre-create');
  assert.deepEqual(
    pre.map((p) => p.Event.Upload.MetaData.filename),
    ['good.txt', 'bad.txt'],
  );
  assert.equal(pre[1]!.Event.Upload.Storage, null);
  assert.equal(pre[1]!.Event.HTTPRequest.Method, 'POST');
});

test("multipart: notices for each file (HTTP and command hooks) \
with the tus path's payload; Event.Auth of the caller", async (t) => {
  const receiver = await startHookReceiver(t);
  const dir = tmpDir(t);
  const hooksDir = path.join(dir, 'hooks');
  const out = path.join(dir, 'out');
  fs.mkdirSync(hooksDir);
  fs.mkdirSync(out);
  commandHook(hooksDir, out);
  const s = await startTestServer(t, { hooksHttp: receiver.url, hooksDir, authJwtSecret: TEST_JWT_SECRET });
  const a = writeTestFile(dir, 'a.txt', 70_000, 3);
  const b = writeTestFile(dir, 'b.bin', 12_345, 4);
  const auth = `Authorization: ${bearer(tokenFor('ann', 'upload')).Authorization}`;
  const r = await curl([
    '-H',
    auth,
    '-F',
    `file1=@${a.path};type=text/plain`,
    '-F',
    `file2=@${b.path}`,
    '-F',
    'name=a.txt',
    `${s.url}/upload`,
  ]);
  assert.equal(r.status, 200, r.body);
  await receiver.until((rs) => ofType(rs, 'post-finish').length === 2);
  await until(() => readDir(out).length === 2, 'two command hook post-finish notices');
  const finished = ofType(receiver.received, 'post-finish').sort((x, y) =>
    x.Event.Upload.MetaData.fieldname!.localeCompare(y.Event.Upload.MetaData.fieldname!),
  );
  assert.deepEqual(
    finished.map((f) => f.Event.Upload.MetaData),
    [
      { filename: 'a.txt', filetype: 'text/plain', fieldname: 'file1' },
      { filename: 'b.bin', filetype: 'application/octet-stream', fieldname: 'file2' },
    ],
  );
  assert.deepEqual(
    finished.map((f) => [f.Event.Upload.Size, f.Event.Upload.Digests?.md5]),
    [
      [a.bytes.length, a.md5],
      [b.bytes.length, b.md5],
    ],
  );
  for (const f of finished) {
    assert.equal(f.Event.Upload.Storage?.Path, path.join(s.config.storeDir, f.Event.Upload.ID));
    assert.ok(fs.existsSync(f.Event.Upload.Storage!.Path));
    assert.equal(f.Event.Upload.Owner, 'ann');
    assert.equal(f.Event.Auth?.Subject, 'ann');
    assert.equal(f.Event.HTTPRequest.URI, '/upload');
    assert.equal(f.Event.HTTPRequest.Header.authorization, undefined, 'no credentials in a stored notice');
  }
  assert.equal(ofType(receiver.received, 'post-create').length, 2);
  assert.equal(ofType(receiver.received, 'pre-create').length, 2);
  assert.deepEqual(
    readDir(out)
      .map((p) => p.Event.Upload.ID)
      .sort(),
    finished.map((f) => f.Event.Upload.ID).sort(),
  );
});

test('multipart: a rejecting pre-finish module hook removes the files and no form is posted; an accepting one lets one \
form per request through', async (t) => {
  const app = await startCaptureApp(t);
  const dir = tmpDir(t);
  const moduleFile = path.join(dir, 'gate.mjs');
  fs.writeFileSync(
    moduleFile,
    `export default {\n  'pre-finish': (r) => r.Event.Upload.MetaData.filename.startsWith('no-') ? { ` +
      `RejectUpload: true, HTTPResponse: { StatusCode: 422, Body: 'not this one' } } : {},\n};\n`,
  );
  const s = await startTestServer(t, { hooksModules: [moduleFile], completionUrl: app.url });
  const yes = writeTestFile(dir, 'yes.txt', 40_000, 5);
  const no = writeTestFile(dir, 'no-thanks.txt', 40_000, 6);
  const refused = await curl(['-F', `file1=@${yes.path}`, '-F', `file2=@${no.path}`, `${s.url}/upload`]);
  assert.equal(refused.status, 422, refused.body);
  assert.equal(refused.body, 'not this one');
  assert.deepEqual(storeFiles(s.config.storeDir), [], 'the files are removed');
  assert.equal(app.forms.length, 0, 'no form posted');
  const ok = await curl(['-F', `file1=@${yes.path}`, '-F', `file2=@${yes.path}`, `${s.url}/upload`]);
  assert.equal(ok.status, 200, ok.body);
  // complete-form is not run per file on this path: the request's one form only.
  assert.equal(app.forms.length, 1);
  assert.equal(app.forms[0]!.params.get('file1.md5'), yes.md5);
  assert.equal(app.forms[0]!.params.get('file2.md5'), yes.md5);
});

test('multipart: a pre-finish hook that fails answers 500 and keeps nothing', async (t) => {
  const app = await startCaptureApp(t);
  const dir = tmpDir(t);
  const moduleFile = path.join(dir, 'broken.mjs');
  fs.writeFileSync(moduleFile, `export default { 'pre-finish': () => { throw new Error('database down'); } };\n`);
  const s = await startTestServer(t, { hooksModules: [moduleFile], completionUrl: app.url });
  const f = writeTestFile(dir, 'x.txt', 1000, 7);
  const r = await curl(['-F', `file1=@${f.path}`, `${s.url}/upload`]);
  assert.equal(r.status, 500, r.body);
  assert.match(r.body, /ERR_HOOK_FAILED/);
  assert.doesNotMatch(r.body, /\/tmp|\/work/, 'no path in the answer');
  assert.deepEqual(storeFiles(s.config.storeDir), []);
  assert.equal(app.forms.length, 0);
});

test('multipart: a cleanup status from the app → post-terminate for each file, no post-finish', async (t) => {
  const receiver = await startHookReceiver(t);
  const app = await startCaptureApp(t, 409, { error: 'duplicate' });
  const s = await startTestServer(t, { hooksHttp: receiver.url, completionUrl: app.url });
  const f = writeTestFile(tmpDir(t), 'dup.txt', 3000, 8);
  const r = await curl(['-F', `file1=@${f.path}`, '-F', `file2=@${f.path}`, `${s.url}/upload`]);
  assert.equal(r.status, 409);
  await receiver.until((rs) => ofType(rs, 'post-terminate').length === 2);
  assert.equal(ofType(receiver.received, 'post-finish').length, 0);
  assert.deepEqual(storeFiles(s.config.storeDir), []);
});

const SIZE = 200_000;
const bytes = patternBytes(SIZE, 9);
async function segment(url: string, session: string, a: number, b: number, name = 'seg.bin') {
  const r = await fetch(`${url}/upload`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/octet-stream',
      'Content-Disposition': `attachment; filename="${name}"`,
      'X-Content-Range': `bytes ${a}-${b}/${SIZE}`,
      'Session-ID': session,
    },
    body: new Uint8Array(bytes.subarray(a, b + 1)),
  });
  return { status: r.status, body: await r.text() };
}

test('resumable: pre-create once when a session starts (may \
refuse: nothing stored), post-finish when it completes', async (t) => {
  const receiver = await startHookReceiver(t);
  receiver.answer = (r) =>
    r.Type === 'pre-create' && r.Event.Upload.MetaData.filename === 'secret.bin'
      ? { RejectUpload: true, HTTPResponse: { StatusCode: 451, Body: 'refused' } }
      : {};
  const s = await startTestServer(t, { hooksHttp: receiver.url });
  const refused = await segment(s.url, 's-refused', 0, 99_999, 'secret.bin');
  assert.equal(refused.status, 451);
  assert.equal(refused.body, 'refused');
  assert.deepEqual(storeFiles(s.config.storeDir), []);
  assert.equal((await segment(s.url, 's-ok', 100_000, SIZE - 1)).status, 201);
  assert.equal((await segment(s.url, 's-ok', 0, 99_999)).status, 200);
  await receiver.until((rs) => ofType(rs, 'post-finish').length === 1);
  const pre = ofType(receiver.received, 'pre-create');
  assert.equal(pre.length, 2, 'once per session, not per segment');
  assert.equal(pre[1]!.Event.Upload.Size, SIZE);
  const [fin] = ofType(receiver.received, 'post-finish');
  assert.equal(fin!.Event.Upload.Digests?.md5, md5(bytes));
  assert.equal(fin!.Event.Upload.MetaData.filename, 'seg.bin');
  assert.equal(ofType(receiver.received, 'post-create').length, 1);
});

test('multipart: a part a pre-create hook gives the id of a tus upload created at the same moment is refused, and that \
upload is kept', async (t) => {
  // Both creations are held in the hook until both have asked, so both pass the existence check
  // before either creates: the store's exclusive open decides, and the loser must not remove the winner.
  const fixedId = 'd'.repeat(32);
  let waiting: Array<() => void> = [];
  const barrier: HookHandler = {
    name: 'barrier',
    events: ['pre-create'],
    async invokeHook() {
      await new Promise<void>((resolve) => {
        waiting.push(resolve);
        if (waiting.length === 2) for (const go of waiting.splice(0)) go();
      });
      return { ChangeFileInfo: { ID: fixedId } };
    },
  };
  const s = await startTestServer(t, {}, { hooks: [barrier] });
  const file = writeTestFile(tmpDir(t), 'part.bin', 2048);
  const [multipart, creation] = await Promise.all([
    curl(['-F', `file1=@${file.path}`, `${s.url}/upload`]),
    tus('POST', s.endpoint, { 'Upload-Length': '5' }),
  ]);
  waiting = [];
  const summary = `multipart ${multipart.status} ${multipart.body} | tus ${creation.status} ${creation.body}`;
  const head = await tus('HEAD', `${s.endpoint}${fixedId}`);
  assert.equal(head.status, 200, `the upload under the id survives: ${summary}`);
  if (creation.status === 201) {
    assert.equal(multipart.status, 500, summary);
    assert.match(multipart.body, /ERR_HOOK_FAILED/, summary);
    assert.equal(head.headers['upload-length'], '5', summary);
    assert.equal(head.headers['upload-offset'], '0', summary);
  } else {
    assert.match(creation.body, /^ERR_HOOK_FAILED: /, summary);
    assert.equal(head.headers['upload-offset'], '2048', summary);
  }
});
