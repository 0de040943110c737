// Each transport (module, command, HTTP) gets each of the seven events from a real upload, with the
// tusd v2 payload; notices carry an id, blocking events none; HTTP hook requests are signed.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { verify } from '../core/signature.ts';
import { HOOK_EVENTS, isBlocking, type HookRequest } from '../hooks/types.ts';
import { md5, patternBytes } from './helpers/files.ts';
import { startHookReceiver } from './helpers/hook-receiver.ts';
import { startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';
import { PATCH_TYPE, TUS, create, patch, tus } from './helpers/tus.ts';

interface Seen {
  request: HookRequest;
  noticeId: string;
}

/** A command hook for every event that saves its payload and notice id as one JSON file. */
function commandHooks(dir: string, out: string): void {
  for (const event of HOOK_EVENTS) {
    const file = path.join(dir, event);
    fs.writeFileSync(
      file,
      `#!/bin/sh\nset -eu\npayload=$(cat)\nf="${out}/$(date +%s%N)-$$.json"\nprintf ` +
        `'{"noticeId":"%s","request":%s}' "\${HOOK_NOTICE_ID:-}" "$payload" > "$f.tmp"\nmv "$f.tmp" "$f"\necho ` +
        `'{}'\n`,
    );
    fs.chmodSync(file, 0o755);
  }
}

/** A module hook for every event that appends its payload and notice id to a JSON-lines file. */
function moduleHook(file: string, out: string): void {
  const body = HOOK_EVENTS.map(
    (e) =>
      `  '${e}': (request, context) => { fs.appendFileSync(${JSON.stringify(out)}, JSON.stringify({ noticeId: ` +
      `context.noticeId ?? '', request }) + '\\n'); },`,
  ).join('\n');
  fs.writeFileSync(file, `import fs from 'node:fs';\nexport default {\n${body}\n};\n`);
}

const readDir = (dir: string): Seen[] =>
  fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as Seen);
const readLines = (file: string): Seen[] =>
  fs.existsSync(file)
    ? fs
        .readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Seen)
    : [];

async function slowPatch(url: string, offset: number, body: Buffer, chunks: number): Promise<number> {
  const size = Math.ceil(body.length / chunks);
  async function* slowly() {
    for (let i = 0; i < body.length; i += size) {
      yield body.subarray(i, i + size);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const res = await request(url, {
    method: 'PATCH',
    headers: { ...TUS, ...PATCH_TYPE, 'Upload-Offset': String(offset), 'Content-Length': String(body.length) },
    body: Readable.from(slowly()),
  });
  await res.body.text();
  return res.statusCode;
}

async function until(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('module, command and HTTP hooks each get all seven events of real uploads, in tusd v2 shape', async (t) => {
  const dir = tmpDir(t);
  const hooksDir = path.join(dir, 'hooks');
  const commandOut = path.join(dir, 'command-out');
  fs.mkdirSync(hooksDir);
  fs.mkdirSync(commandOut);
  commandHooks(hooksDir, commandOut);
  const moduleFile = path.join(dir, 'record-hooks.mjs');
  const moduleOut = path.join(dir, 'module-out.jsonl');
  moduleHook(moduleFile, moduleOut);
  const receiver = await startHookReceiver(t);

  const s = await startTestServer(t, {
    hooksDir,
    hooksHttp: receiver.url,
    hooksModules: [moduleFile],
    hooksEnabledEvents: [...HOOK_EVENTS],
  });

  // pre-create, post-create; post-receive (throttled: emitted ~1 s after data arrived); pre-finish, post-finish.
  const bytes = patternBytes(64 * 1024);
  const url = await create(s.endpoint, bytes.length, { filename: 'report.pdf', filetype: 'application/pdf' });
  const id = url.split('/').pop()!;
  // @tus/server emits post-receive only while a PATCH is still streaming: send 16 KiB over ~1.6 s.
  assert.equal(await slowPatch(url, 0, bytes.subarray(0, 16 * 1024), 16), 204);
  const last = await patch(url, 16 * 1024, bytes.subarray(16 * 1024));
  assert.equal(last.status, 200, last.body);
  // pre-terminate, post-terminate on a second upload.
  const doomed = await create(s.endpoint, 10, { filename: 'doomed.txt' });
  const doomedId = doomed.split('/').pop()!;
  assert.equal((await tus('DELETE', doomed)).status, 204);

  const all = (seen: Seen[]) => HOOK_EVENTS.every((e) => seen.some((x) => x.request.Type === e));
  const fromHttp = (): Seen[] =>
    receiver.received.map((r) => ({ request: r.request, noticeId: String(r.headers['hook-notice-id'] ?? '') }));
  const types = (seen: Seen[]) => seen.map((x) => x.request.Type);
  const waitingFor =
    `every transport to see every event: http ${types(fromHttp())}; command ${types(readDir(commandOut))}; ` +
    `module ${types(readLines(moduleOut))}; logs ${s.logs.join(' / ')}`;
  await until(() => all(fromHttp()) && all(readDir(commandOut)) && all(readLines(moduleOut)), waitingFor);

  for (const [transport, seen] of [
    ['http', fromHttp()],
    ['command', readDir(commandOut)],
    ['module', readLines(moduleOut)],
  ] as const) {
    for (const event of HOOK_EVENTS) {
      const hits = seen.filter((x) => x.request.Type === event);
      const what = `${transport} ${event}`;
      assert.ok(hits.length >= 1, what);
      const { request, noticeId } = hits[0]!;
      const upload = request.Event.Upload;
      assert.equal(upload.ID, event.endsWith('terminate') ? doomedId : id, what);
      assert.equal(typeof upload.SizeIsDeferred, 'boolean', what);
      assert.equal(upload.IsPartial, false, what);
      assert.ok('PartialUploads' in upload, what);
      assert.ok(request.Event.HTTPRequest.Method, what);
      assert.equal(typeof request.Event.HTTPRequest.Header, 'object', what);
      // Blocking events are answered, not queued: only notices carry an id.
      if (isBlocking(event)) assert.equal(noticeId, '', what);
      else assert.match(noticeId, /^[0-9a-f-]{36}$/, what);
      if (event.endsWith('terminate')) continue;
      assert.equal(upload.MetaData.filename, 'report.pdf', what);
      assert.equal(upload.Size, bytes.length, what);
    }
    const finish = seen.find((x) => x.request.Type === 'post-finish')!.request.Event.Upload;
    assert.equal(finish.Offset, bytes.length, transport);
    assert.equal(finish.Digests?.md5, md5(bytes), transport);
    assert.equal(finish.Storage?.Path, s.store.filePath(id), transport);
    assert.equal(
      seen.find((x) => x.request.Type === 'pre-create')!.request.Event.HTTPRequest.Method,
      'POST',
      transport,
    );
    assert.equal(
      seen.find((x) => x.request.Type === 'pre-terminate')!.request.Event.HTTPRequest.Method,
      'DELETE',
      transport,
    );
    const progress = seen.find((x) => x.request.Type === 'post-receive')!.request.Event.Upload;
    assert.ok(
      progress.Offset > 0 && progress.Offset <= bytes.length,
      `${transport} post-receive offset ${progress.Offset}`,
    );
  }
  // Every HTTP hook request is signed with the completion secret.
  for (const r of receiver.received)
    assert.ok(
      verify(s.config.completionSecret!, 'hook-payload', r.body, r.headers['tuspass-signature'] as string),
      r.request.Type,
    );
});

test("tusd's default events: pre-finish and pre-terminate are off unless enabled", async (t) => {
  const receiver = await startHookReceiver(t);
  const s = await startTestServer(t, { hooksHttp: receiver.url });
  const url = await create(s.endpoint, 3, { filename: 'a.txt' });
  assert.equal((await patch(url, 0, 'abc')).status, 200);
  await receiver.until((r) => r.some((x) => x.request.Type === 'post-finish'));
  const types = new Set(receiver.received.map((r) => r.request.Type));
  assert.ok(types.has('pre-create') && types.has('post-create'));
  assert.ok(!types.has('pre-finish'));
});

test('a post-receive hook answering StopUpload ends the PATCH with its response', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'stop.mjs');
  fs.writeFileSync(
    file,
    `export const postReceive = () => ({ StopUpload: true, HTTPResponse: { StatusCode: 400, Body: 'project ` +
      `closed' } });\n`,
  );
  const s = await startTestServer(t, { hooksModules: [file], progressHooksIntervalMs: 200 });
  const bytes = patternBytes(64 * 1024);
  const url = await create(s.endpoint, bytes.length, { filename: 'a.bin' });
  const size = 2048;
  async function* slowly() {
    for (let i = 0; i < bytes.length; i += size) {
      yield bytes.subarray(i, i + size);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const res = await request(url, {
    method: 'PATCH',
    headers: { ...TUS, ...PATCH_TYPE, 'Upload-Offset': '0', 'Content-Length': String(bytes.length) },
    body: Readable.from(slowly()),
  }).catch((e: Error) => e);
  if (res instanceof Error) assert.fail(`PATCH failed: ${res.message}`);
  assert.equal(res.statusCode, 400);
  assert.equal(await res.body.text(), 'project closed');
});
