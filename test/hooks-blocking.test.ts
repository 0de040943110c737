// Blocking events: a hook's rejection reaches the client with its status and body; a pre-create hook
// changes metadata (seen in the completion form, so in the catalog) and the upload id; a failing or
// hung hook rejects (fail closed) or lets the request pass (HOOKS_FAIL_OPEN); a hung command is killed.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { startHookReceiver } from './helpers/hook-receiver.ts';
import { startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';
import { create, metadata, patch, tus } from './helpers/tus.ts';

const EXAMPLES = path.resolve(import.meta.dirname, '../hooks/examples');

function script(dir: string, event: string, body: string): void {
  fs.writeFileSync(path.join(dir, event), `#!/bin/sh\n${body}\n`);
  fs.chmodSync(path.join(dir, event), 0o755);
}

/** Alive and not a zombie (a killed orphan may wait for a reaper that a container's pid 1 is not). */
function running(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]![0] !== 'Z';
  } catch {
    return false;
  }
}

const createRaw = (
  endpoint: string,
  length: number,
  meta: Record<string, string>,
  headers: Record<string, string> = {},
) => tus('POST', endpoint, { 'Upload-Length': String(length), 'Upload-Metadata': metadata(meta), ...headers });

test('an HTTP hook rejects pre-create: the client gets its status, body and headers; nothing is stored', async (t) => {
  const receiver = await startHookReceiver(t);
  receiver.answer = (r) =>
    r.Event.Upload.Size > 100
      ? {
          RejectUpload: true,
          HTTPResponse: {
            StatusCode: 413,
            Body: '{"message":"too big"}',
            Header: { 'Content-Type': 'application/json' },
          },
        }
      : {};
  const s = await startTestServer(t, { hooksHttp: receiver.url, hooksEnabledEvents: ['pre-create'] });
  const res = await createRaw(s.endpoint, 1000, { filename: 'big.bin' });
  assert.equal(res.status, 413);
  assert.equal(res.body, '{"message":"too big"}');
  assert.equal(fs.readdirSync(s.config.storeDir).length, 0);
  assert.equal((await createRaw(s.endpoint, 10, { filename: 'small.bin' })).status, 201);
});

test('the example command hook rejects pre-create by size and by name', async (t) => {
  const s = await startTestServer(t, { hooksDir: path.join(EXAMPLES, 'command'), hooksEnabledEvents: ['pre-create'] });
  process.env.MAX_BYTES = '1000';
  t.after(() => delete process.env.MAX_BYTES);
  const big = await createRaw(s.endpoint, 5000, { filename: 'a.txt' });
  assert.equal(big.status, 413);
  assert.match(JSON.parse(big.body).message, /5000 bytes/);
  const exe = await createRaw(s.endpoint, 10, { filename: 'setup.exe' });
  assert.equal(exe.status, 415);
  assert.equal((await createRaw(s.endpoint, 10, { filename: 'notes.txt' })).status, 201);
});

test('the example module hook: token, size and type checks; a path in the filename is cut to its base name in the \
completion form', async (t) => {
  process.env.UPLOAD_TOKEN = 'sesame';
  process.env.UPLOAD_TYPES = 'image/*,application/pdf';
  process.env.UPLOAD_MAX_BYTES = '100000';
  t.after(() => ['UPLOAD_TOKEN', 'UPLOAD_TYPES', 'UPLOAD_MAX_BYTES'].forEach((k) => delete process.env[k]));
  const s = await startTestServer(t, { hooksModules: [path.join(EXAMPLES, 'validate-upload.ts')] });
  const auth = { Authorization: 'Bearer sesame' };
  assert.equal((await createRaw(s.endpoint, 10, { filename: 'a.png', filetype: 'image/png' })).status, 401);
  assert.equal((await createRaw(s.endpoint, 200_000, { filename: 'a.png', filetype: 'image/png' }, auth)).status, 413);
  const wrongType = await createRaw(s.endpoint, 10, { filename: 'a.sh', filetype: 'text/x-sh' }, auth);
  assert.equal(wrongType.status, 415);
  assert.match(JSON.parse(wrongType.body).message, /text\/x-sh/);

  const ok = await createRaw(
    s.endpoint,
    4,
    { filename: '../../etc/photo.png', filetype: 'image/png', description: 'holiday' },
    auth,
  );
  assert.equal(ok.status, 201, ok.body);
  const url = new URL(ok.headers.location!, s.endpoint).toString();
  const done = await patch(url, 0, 'abcd', auth);
  assert.equal(done.status, 200, done.body);
  const list = (await (await fetch(`${s.url}/api/uploads`)).json()) as Array<Record<string, unknown>>;
  assert.equal(list.length, 1);
  assert.equal(list[0]!.name, 'photo.png');
  assert.deepEqual(list[0]!.fields, { description: 'holiday' });
});

test('metadata a hook adds in pre-create is in the \
completion form; an HTTP hook may choose the upload id', async (t) => {
  const receiver = await startHookReceiver(t);
  receiver.answer = (r) => ({
    ChangeFileInfo: {
      ID: `chosen-${r.Event.Upload.MetaData.filename}`,
      MetaData: { ...r.Event.Upload.MetaData, description: 'added by hook' },
    },
  });
  const s = await startTestServer(t, { hooksHttp: receiver.url, hooksEnabledEvents: ['pre-create'] });
  const url = await create(s.endpoint, 3, { filename: 'x1' });
  assert.ok(url.endsWith('/files/chosen-x1'), url);
  assert.equal((await patch(url, 0, 'abc')).status, 200);
  const list = (await (await fetch(`${s.url}/api/uploads`)).json()) as Array<Record<string, unknown>>;
  assert.deepEqual(list[0]!.fields, { description: 'added by hook' });
  assert.equal(list[0]!.name, 'x1');
});

test('a hung command hook is killed at the timeout; the upload is refused with 504 by default', async (t) => {
  const dir = tmpDir(t);
  const pidFile = path.join(dir, 'sleep.pid');
  // The hook's child (sleep) must die too: the whole process group is killed.
  script(dir, 'pre-create', `sleep 30 &\necho $! > ${pidFile}\nwait`);
  const s = await startTestServer(t, { hooksDir: dir, hooksEnabledEvents: ['pre-create'], hooksTimeoutMs: 500 });
  const started = Date.now();
  const res = await createRaw(s.endpoint, 10, { filename: 'a' });
  const took = Date.now() - started;
  assert.equal(res.status, 504);
  assert.match(res.body, /ERR_HOOK_TIMEOUT: hook command failed on pre-create .*timed out after 500 ms/);
  assert.ok(took < 3000, `answered after ${took} ms`);
  const pid = Number(fs.readFileSync(pidFile, 'utf8'));
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(!running(pid), "the hook's sleep is still running");
  assert.equal(fs.readdirSync(s.config.storeDir).length, 0);
});

test('with HOOKS_FAIL_OPEN a hung or failing hook lets the upload pass', async (t) => {
  const dir = tmpDir(t);
  script(dir, 'pre-create', 'sleep 30');
  script(dir, 'pre-finish', 'echo broken >&2; exit 3');
  const s = await startTestServer(t, {
    hooksDir: dir,
    hooksEnabledEvents: ['pre-create', 'pre-finish'],
    hooksTimeoutMs: 300,
    hooksFailOpen: true,
  });
  const url = await create(s.endpoint, 3, { filename: 'a' });
  const done = await patch(url, 0, 'abc');
  assert.equal(done.status, 200, done.body);
  assert.equal(done.headers['tuspass-completion'], 'delivered');
  assert.ok(
    s.logs.some((l) =>
      /ERR_HOOK_FAILED: hook command failed on pre-finish .*exited with code 3.*letting the request pass/.test(l),
    ),
    s.logs.join('\n'),
  );
});

test('a failing pre-finish hook answers 500 and keeps the upload; the completion form is not posted', async (t) => {
  const dir = tmpDir(t);
  script(dir, 'pre-finish', 'exit 1');
  const s = await startTestServer(t, { hooksDir: dir, hooksEnabledEvents: ['pre-finish'] });
  const url = await create(s.endpoint, 3, { filename: 'a' });
  const done = await patch(url, 0, 'abc');
  assert.equal(done.status, 500);
  assert.match(done.body, /ERR_HOOK_FAILED: .*HOOKS_DIR\/pre-finish exited with code 1/);
  // The answer names the hook by its setting; where it lives on this machine stays in the log.
  assert.ok(!done.body.includes(dir), done.body);
  assert.ok(fs.existsSync(s.store.filePath(url.split('/').pop()!)));
  assert.deepEqual(await (await fetch(`${s.url}/api/uploads`)).json(), []);
});

test('an HTTP hook answering 500 is retried HOOKS_HTTP_RETRY times, then the upload is refused', async (t) => {
  const receiver = await startHookReceiver(t);
  receiver.answer = () => [500, 'oops'];
  const s = await startTestServer(t, {
    hooksHttp: receiver.url,
    hooksEnabledEvents: ['pre-create'],
    hooksHttpRetry: 2,
    hooksHttpBackoffMs: 50,
  });
  const res = await createRaw(s.endpoint, 10, { filename: 'a' });
  assert.equal(res.status, 500);
  assert.match(res.body, /ERR_HOOK_FAILED: hook http failed on pre-create .*HOOKS_HTTP answered 500/);
  assert.ok(!res.body.includes(new URL(receiver.url).host), `the receiver's address is not in the answer: ${res.body}`);
  assert.equal(receiver.received.length, 3);
});

test('pre-terminate: a module hook refuses a DELETE; pre-finish: a rejection removes the upload', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'guard.ts');
  fs.writeFileSync(
    file,
    `
export const preTerminate = () => ({
  RejectTermination: true,
  HTTPResponse: { StatusCode: 423, Body: 'kept for audit' },
});
export const preFinish = (r: { Event: { Upload: { MetaData: Record<string, string> } } }) =>
  r.Event.Upload.MetaData.filename === 'bad'
    ? { RejectUpload: true, HTTPResponse: { StatusCode: 422, Body: 'virus found' } }
    : {};
`,
  );
  const s = await startTestServer(t, { hooksModules: [file] });
  const kept = await create(s.endpoint, 10, { filename: 'k' });
  const del = await tus('DELETE', kept);
  assert.equal(del.status, 423);
  assert.equal(del.body, 'kept for audit');
  assert.equal((await tus('HEAD', kept)).status, 200);

  const bad = await create(s.endpoint, 3, { filename: 'bad' });
  const res = await patch(bad, 0, 'abc');
  assert.equal(res.status, 422);
  assert.equal(res.body, 'virus found');
  assert.ok(!fs.existsSync(s.store.filePath(bad.split('/').pop()!)));
  assert.deepEqual(await (await fetch(`${s.url}/api/uploads`)).json(), []);
});

test('a module hook that throws: the answer names it by its file name, not by its path on this machine', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'picky-hook.mjs');
  fs.writeFileSync(file, "export async function preCreate() { throw new Error('no thanks'); }\n");
  const s = await startTestServer(t, { hooksModules: [file] });
  const res = await tus('POST', s.endpoint, { 'Upload-Length': '10' });
  assert.equal(res.status, 500);
  assert.match(res.body, /ERR_HOOK_FAILED: hook module:picky-hook\.mjs failed on pre-create .*no thanks/);
  assert.ok(!res.body.includes(dir), res.body);
  assert.ok(
    s.logs.some((l) => l.includes(file)),
    'the log keeps the path',
  );
});

test('a module hook that throws no Error (null, undefined, a string, a symbol) fails as any failing hook: 500 \
ERR_HOOK_FAILED, or passes with HOOKS_FAIL_OPEN', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'throws.mjs');
  fs.writeFileSync(
    file,
    `const THROWN = { null: null, undefined: undefined, text: 'plain words', symbol: Symbol('s') };
export async function preCreate(request) { throw THROWN[request.Event.Upload.MetaData.filename]; }
`,
  );
  for (const failOpen of [false, true]) {
    const s = await startTestServer(t, { hooksModules: [file], hooksFailOpen: failOpen });
    for (const thrown of ['null', 'undefined', 'text', 'symbol']) {
      const res = await tus('POST', s.endpoint, {
        'Upload-Length': '10',
        'Upload-Metadata': metadata({ filename: thrown }),
      });
      if (failOpen) assert.equal(res.status, 201, `${thrown}: ${res.status} ${res.body}`);
      else {
        assert.equal(res.status, 500, `${thrown}: ${res.body}`);
        assert.match(res.body, /^ERR_HOOK_FAILED: hook module:throws\.mjs failed on pre-create /, thrown);
      }
    }
  }
});

test("what a failing hook printed or answered (a non-JSON answer, a 4xx page, a command's output) is in the log only: \
the client's 500 says why in our words", async (t) => {
  const INTERNAL = 'Traceback at /srv/hooks/app.py talking to 10.0.0.5:5432';
  const receiver = await startHookReceiver(t);
  for (const answer of [
    [200, INTERNAL],
    [404, `<h1>${INTERNAL}</h1>`],
  ] as const) {
    receiver.answer = () => [answer[0], answer[1]];
    const s = await startTestServer(t, {
      hooksHttp: receiver.url,
      hooksEnabledEvents: ['pre-create'],
      hooksHttpRetry: 0,
    });
    const res = await createRaw(s.endpoint, 10, { filename: 'a' });
    assert.equal(res.status, 500, res.body);
    assert.match(
      res.body,
      new RegExp(
        '^ERR_HOOK_FAILED: hook http failed on pre-create for upload [0-9a-f]{32}: ' +
          'HOOKS_HTTP( answered 404|: answer is not JSON)\\n$',
      ),
    );
    assert.ok(
      s.logs.some((l) => l.includes(INTERNAL)),
      `the log keeps what the hook said: ${s.logs.join('\n')}`,
    );
  }
  const dir = tmpDir(t);
  script(dir, 'pre-create', `echo '${INTERNAL}'`);
  const s = await startTestServer(t, { hooksDir: dir, hooksEnabledEvents: ['pre-create'] });
  const res = await createRaw(s.endpoint, 10, { filename: 'a' });
  assert.equal(res.status, 500, res.body);
  assert.match(
    res.body,
    /^ERR_HOOK_FAILED: hook command failed on pre-create .*HOOKS_DIR\/pre-create: answer is not JSON\n$/,
  );
  assert.ok(
    s.logs.some((l) => l.includes(INTERNAL)),
    s.logs.join('\n'),
  );
});
