// Signatures bound to purpose and time: the replay of a signed hook payload to
// /complete/, forms outside the window, a queued form re-signed at each attempt, the hook example
// receiver verifying with the hook key, and the docs' Python and Node snippets against our signer.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { parseCompletionForm } from '../server/complete-form/read.ts';
import { startCompletionServer } from '../server/start/completion-server.ts';
import { checkSignature, sign, SIGNATURE_HEADER, verify } from '../core/signature.ts';
import { startHookReceiver } from './helpers/hook-receiver.ts';
import { recordsWhenPresent, startTestServer } from './helpers/server.ts';
import { metadata, PATCH_TYPE, tus } from './helpers/tus.ts';
import { tmpDir } from './helpers/tmp.ts';

const SECRET = 'test-secret-0123456789';
const md5 = (b: Buffer) => crypto.createHash('md5').update(b).digest('hex');

test('each purpose has its own key; signatures carry their time and expire both ways', () => {
  const body = 'file1.path=%2Fx&file1.size=1';
  const form = sign(SECRET, 'completion-form', body);
  const hook = sign(SECRET, 'hook-payload', body);
  assert.match(form, /^t=\d{10},v1=[0-9a-f]{64}$/);
  assert.ok(verify(SECRET, 'completion-form', body, form));
  assert.ok(verify(SECRET, 'hook-payload', body, hook));
  assert.ok(!verify(SECRET, 'completion-form', body, hook), 'the hook key does not verify a form');
  assert.ok(!verify(SECRET, 'hook-payload', body, form), 'the form key does not verify a hook payload');
  // The plain HMAC of the old contract (v1) with the secret itself is no signature any more.
  const legacy = crypto.createHmac('sha256', SECRET).update(body).digest('hex');
  assert.deepEqual(checkSignature(SECRET, 'completion-form', body, `sha256=${legacy}`), {
    ok: false,
    reason: 'malformed',
  });
  const now = Date.now();
  const at = (ms: number) => sign(SECRET, 'completion-form', body, now + ms);
  assert.deepEqual(checkSignature(SECRET, 'completion-form', body, at(-6 * 60_000), { nowMs: now }), {
    ok: false,
    reason: 'expired',
  });
  assert.deepEqual(checkSignature(SECRET, 'completion-form', body, at(6 * 60_000), { nowMs: now }), {
    ok: false,
    reason: 'future',
  });
  assert.ok(checkSignature(SECRET, 'completion-form', body, at(-4 * 60_000), { nowMs: now }).ok);
  assert.deepEqual(
    checkSignature(SECRET, 'completion-form', body, at(-4 * 60_000), { nowMs: now, toleranceMs: 60_000 }),
    { ok: false, reason: 'expired' },
  );
  // The time is signed: another t with the same v1 fails.
  const v1 = form.split(',v1=')[1];
  assert.deepEqual(checkSignature(SECRET, 'completion-form', body, `t=${Math.floor(now / 1000) + 1},v1=${v1}`), {
    ok: false,
    reason: 'mismatch',
  });
  for (const bad of ['', 't=1', `v1=${v1}`, `t=x,v1=${v1}`, `t=1,t=2,v1=${v1}`, `t=${Math.floor(now / 1000)},v1=zz`]) {
    assert.equal(verify(SECRET, 'completion-form', body, bad), false, bad);
  }
});

test('replay: a signed pre-create hook payload whose file name \
reads as a form, posted to /complete/, is refused', async (t) => {
  const receiver = await startHookReceiver(t);
  const s = await startTestServer(t, { hooksHttp: receiver.url, completionSecret: SECRET });
  // Someone else's finished upload: the forged record would point at it.
  const victimBytes = Buffer.from('the victim upload');
  const created = await tus(
    'POST',
    s.endpoint,
    {
      'Upload-Length': String(victimBytes.length),
      ...PATCH_TYPE,
      'Upload-Metadata': metadata({ filename: 'mine.txt' }),
    },
    victimBytes,
  );
  assert.equal(created.status, 201);
  const victimPath = path.join(s.config.storeDir, created.headers.location!.split('/').pop()!);
  await recordsWhenPresent(s.url, 1);
  // The attacker's file name: the payload's JSON, read as urlencoded, names the victim's file.
  const filename =
    `x&file1.path=${victimPath}&file1.size=${victimBytes.length}&file1.md5=${'0'.repeat(32)}&file1.name=FORGED.exe` +
    '&file1.id=forged&file1.content_type=application/x-msdownload&z=';
  const attack = await tus('POST', s.endpoint, { 'Upload-Length': '3', 'Upload-Metadata': metadata({ filename }) });
  assert.equal(attack.status, 201);
  await receiver.until((r) =>
    r.some((h) => h.request.Type === 'pre-create' && h.request.Event.Upload.MetaData.filename === filename),
  );
  const captured = receiver.received.find(
    (h) => h.request.Type === 'pre-create' && h.request.Event.Upload.MetaData.filename === filename,
  )!;
  // The attack is real: the signed payload parses as a completion form for the victim's file, as FORGED.exe.
  const parsed = parseCompletionForm(captured.body);
  assert.equal(parsed.name, 'FORGED.exe');
  assert.equal(parsed.path, victimPath);
  const signature = captured.headers['tuspass-signature'] as string;
  assert.ok(
    verify(SECRET, 'hook-payload', captured.body, signature),
    'the payload is genuinely signed (with the hook key)',
  );
  const replay = await fetch(`${s.url}/complete/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', [SIGNATURE_HEADER]: signature },
    body: captured.body,
  });
  assert.equal(replay.status, 401);
  assert.equal(((await replay.json()) as { error: { code: string } }).error.code, 'ERR_SIGNATURE_INVALID');
  const records = (await (await fetch(`${s.url}/api/uploads`)).json()) as Array<{ name: string }>;
  assert.deepEqual(
    records.map((r) => r.name),
    ['mine.txt'],
  );
});

test('a form older than the window (or dated ahead) is refused; within it, recorded', async (t) => {
  const s = await startTestServer(t, { completionSecret: SECRET });
  const bytes = Buffer.from('twelve bytes');
  const file = path.join(s.config.storeDir, 'written-by-test');
  fs.writeFileSync(file, bytes);
  const body = new URLSearchParams({
    'file1.name': 'a.bin',
    'file1.path': file,
    'file1.size': String(bytes.length),
    'file1.md5': md5(bytes),
    'file1.id': 'written-by-test',
  }).toString();
  const post = (at: number) =>
    fetch(`${s.url}/complete/`, {
      method: 'POST',
      headers: { [SIGNATURE_HEADER]: sign(SECRET, 'completion-form', body, at) },
      body,
    });
  for (const at of [Date.now() - 5 * 60_000 - 10_000, Date.now() + 5 * 60_000 + 10_000]) {
    const res = await post(at);
    assert.equal(res.status, 401, `dated ${new Date(at).toISOString()}`);
  }
  assert.ok(
    s.logs.some((l) => /signature expired/.test(l)) && s.logs.some((l) => /signature future/.test(l)),
    'the log says why',
  );
  assert.equal((await post(Date.now() - 4 * 60_000)).status, 200);
});

test('a queued form delivered later than the window after \
queueing is accepted: it is signed again at each attempt', async (t) => {
  const dataDir = tmpDir(t);
  const toleranceMs = 1000;
  const service = await startCompletionServer(
    (await import('../server/config/config.ts')).configFor({
      dataDir,
      completionSecret: SECRET,
      completionPort: 0,
      signatureToleranceMs: toleranceMs,
    }),
    { log: () => {} },
  );
  t.after(() => service.close());
  // The app is "down" (503) until opened; every attempt is kept to compare signatures.
  let open = false;
  const attempts: Array<{ signature: string; body: string; at: number }> = [];
  const gate = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks).toString('utf8');
      attempts.push({ signature: String(req.headers['tuspass-signature']), body, at: Date.now() });
      if (!open) return void res.writeHead(503).end();
      const answer = await fetch(`${service.url}/complete/`, {
        method: 'POST',
        headers: { [SIGNATURE_HEADER]: String(req.headers['tuspass-signature']) },
        body,
      });
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(await answer.text());
    });
  });
  await new Promise<void>((resolve) => gate.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => gate.close(() => resolve())));
  const s = await startTestServer(
    t,
    {
      dataDir,
      completionSecret: SECRET,
      signatureToleranceMs: toleranceMs,
      completionUrl: `http://127.0.0.1:${(gate.address() as AddressInfo).port}/complete/`,
      retryMinMs: 200,
      retryMaxMs: 400,
    },
    { completion: false },
  );
  const finished = await tus('POST', s.endpoint, { 'Upload-Length': '5', ...PATCH_TYPE }, 'queue');
  assert.equal(finished.status, 201);
  assert.equal(finished.headers['tuspass-completion'], 'pending');
  const first = attempts[0]!;
  await new Promise((r) => setTimeout(r, toleranceMs + 1600));
  // The first attempt's signature is now outside the window: replayed as it was, it is refused.
  const stale = await fetch(`${service.url}/complete/`, {
    method: 'POST',
    headers: { [SIGNATURE_HEADER]: first.signature },
    body: first.body,
  });
  assert.equal(stale.status, 401);
  open = true;
  const records = await recordsWhenPresent(service.url, 1, 10_000);
  assert.equal(records.length, 1, 'the queued form was delivered and accepted');
  const last = attempts.at(-1)!;
  assert.equal(last.body, first.body, 'the same form');
  const tOf = (sig: string) => Number(/t=(\d+)/.exec(sig)![1]);
  assert.ok(
    tOf(last.signature) >= tOf(first.signature) + 2,
    `re-signed: t ${tOf(first.signature)} then ${tOf(last.signature)}`,
  );
});

test('the example hook receiver verifies with the hook key: a real \
hook passes, a form-key or stale signature does not', async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'hooks/examples/http-receiver.ts', '0'], {
    env: { ...process.env, HOOK_SECRET: SECRET },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => child.kill());
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /(http:\/\/\S+\/hooks)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`receiver exited ${code}`)));
  });
  const s = await startTestServer(t, { hooksHttp: url, completionSecret: SECRET });
  // pre-create blocks on the receiver: a 201 means it verified the payload and answered.
  const created = await tus('POST', s.endpoint, { 'Upload-Length': '2', ...PATCH_TYPE }, 'ok');
  assert.equal(created.status, 201, created.body);
  const payload = JSON.stringify({
    Type: 'pre-create',
    Event: {
      Upload: { ID: '', Size: 1, Offset: 0, MetaData: {} },
      HTTPRequest: { Method: 'POST', URI: '/files', RemoteAddr: '', Header: {} },
    },
  });
  const send = (signature: string) =>
    fetch(url, { method: 'POST', headers: { [SIGNATURE_HEADER]: signature }, body: payload });
  assert.equal((await send(sign(SECRET, 'hook-payload', payload))).status, 200);
  assert.equal((await send(sign(SECRET, 'completion-form', payload))).status, 401, 'the form key is not the hook key');
  assert.equal((await send(sign(SECRET, 'hook-payload', payload, Date.now() - 10 * 60_000))).status, 401, 'stale');
  assert.equal((await send(sign('another-secret-0123456789', 'hook-payload', payload))).status, 401);
});

/** A fenced code block of the docs, by language, so the test runs exactly what readers copy. */
function docSnippet(lang: string): string {
  const text = fs.readFileSync('docs/completion-form.md', 'utf8');
  const fence = '```';
  const m = new RegExp(`${fence}${lang}\\n([\\s\\S]*?)${fence}`).exec(text);
  assert.ok(m, `docs/completion-form.md has a ${lang} snippet`);
  return m[1]!;
}

test("the docs' Python and Node snippets verify tuspass's form signatures and refuse the rest", (t) => {
  const body = 'file1.name=a.bin&file1.path=%2Fdata%2Fuploads%2Fab&file1.size=3&description=caf%C3%A9';
  const cases: Array<[string, boolean]> = [
    [sign(SECRET, 'completion-form', body), true],
    [sign(SECRET, 'hook-payload', body), false],
    [sign(SECRET, 'completion-form', body, Date.now() - 10 * 60_000), false],
    [sign(SECRET, 'completion-form', `${body}x`), false],
    ['garbage', false],
  ];
  const env = { ...process.env, SECRET, BODY: body, CASES: JSON.stringify(cases.map(([h]) => h)) };
  const pythonCode = [
    'import os, json',
    'SECRET = os.environ["SECRET"]',
    docSnippet('python'),
    'print(json.dumps([verify_tuspass(os.environ["BODY"].encode(), h) for h in json.loads(os.environ["CASES"])]))',
  ].join('\n');
  const python = spawnSync('python3', ['-c', pythonCode], { env, encoding: 'utf8' });
  if (python.error && (python.error as NodeJS.ErrnoException).code === 'ENOENT')
    return t.skip('python3 is not installed');
  assert.equal(python.status, 0, python.stderr);
  assert.deepEqual(
    JSON.parse(python.stdout),
    cases.map(([, ok]) => ok),
    'python',
  );
  const nodeCode = [
    'const SECRET = process.env.SECRET;',
    docSnippet('js'),
    'console.log(JSON.stringify(JSON.parse(process.env.CASES).map((h) => ' +
      'verifyTuspass(Buffer.from(process.env.BODY), h))))',
  ].join('\n');
  const node = spawnSync(process.execPath, ['-e', nodeCode], { env, encoding: 'utf8' });
  assert.equal(node.status, 0, node.stderr);
  assert.deepEqual(
    JSON.parse(node.stdout),
    cases.map(([, ok]) => ok),
    'node',
  );
});
