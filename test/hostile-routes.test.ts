// Attacks on tuspass's own routes: its DELETE (other spellings of an id, someone
// else's token, method override, a body never sent, races with HEAD, concatenation, the expiry sweep,
// a PATCH mid-body and a second DELETE, hooks that hang or throw, an id reused through a pre-create
// hook), the one error format (requests that reach @tus/server in ways its error map might miss), the
// hook context module hooks get, HOOKS_BUILTIN, and empty setting values. Real server, raw sockets.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { inspect } from 'node:util';
import { ERRORS as TUS_SERVER_ERRORS } from '@tus/utils';
import { load, SETTINGS, ConfigError } from '../server/config/config.ts';
import type { HookHandler } from '../hooks/types.ts';
import { bearer, TEST_JWT_SECRET, tokenFor } from './helpers/jwt.ts';
import { openRaw, parseResponse, readResponse, type RawConnection, type RawResponse } from './helpers/raw-http.ts';
import { recordsWhenPresent, startTestServer, type TestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';
import { create, metadata, patch, PATCH_TYPE, tus, type TusAnswer } from './helpers/tus.ts';

const idOf = (url: string) => new URL(url).pathname.split('/').pop()!;
const hostOf = (s: TestServer) => new URL(s.url).host;

/** Wordings of @tus/server's own answers: none may reach a client. */
const TUS_SERVER_WORDS = [
  ...Object.values(TUS_SERVER_ERRORS).map((e) => e.body.trim()),
  'Tus-Resumable Required',
  'Invalid ',
  'Not found',
];

/** The one format: status below 500 (unless `serverFault`), `ERR_CODE: ` body (none for HEAD, OPTIONS, 204),
 * Tus-Resumable. */
function assertTusAnswer(
  what: string,
  a: { status: number; headers: Record<string, string>; body: string },
  method: string,
  serverFault = false,
): void {
  const where = `${what}: ${a.status} ${JSON.stringify(a.body.slice(0, 200))}`;
  if (!serverFault) assert.ok(a.status < 500, where);
  if (method === 'HEAD' || method === 'OPTIONS' || a.status === 204 || a.status < 300) {
    if (method === 'HEAD' || a.status === 204) assert.equal(a.body, '', where);
  } else assert.match(a.body, /^ERR_[A-Z_]+: /, where);
  assert.equal(a.headers['tus-resumable'], '1.0.0', where);
  for (const words of TUS_SERVER_WORDS)
    assert.ok(!a.body.includes(words), `${where}: @tus/server's wording "${words}"`);
}

const asAnswer = (r: RawResponse): TusAnswer => ({
  status: r.status,
  headers: r.headers,
  body: r.body.toString('utf8'),
});

/** One raw request on its own connection (closed after), for targets and headers no client would send. */
async function raw(s: TestServer, lines: string[], body = '', head = false): Promise<TusAnswer> {
  const conn = await openRaw(s.url);
  conn.socket.write(`${lines.join('\r\n')}\r\nHost: ${hostOf(s)}\r\nConnection: close\r\n\r\n${body}`);
  const res = await readResponse(conn, 5000, head);
  conn.socket.destroy();
  assert.ok(res, `an answer to ${lines[0]}`);
  return asAnswer(res);
}

async function healthy(s: TestServer): Promise<void> {
  const res = await fetch(`${s.url}/healthz`);
  assert.equal(res.status, 200, 'the server is still up');
}

const exists = (s: TestServer, id: string) => fs.existsSync(s.store.filePath(id));

/** An unfinished upload with `written` bytes of `length`. */
async function unfinished(
  s: TestServer,
  length = 10,
  written = 3,
  headers: Record<string, string> = {},
): Promise<string> {
  const res = await tus('POST', s.endpoint, { 'Upload-Length': String(length), ...headers });
  assert.equal(res.status, 201, res.body);
  const url = new URL(res.headers.location!, s.endpoint).toString();
  if (written) assert.equal((await patch(url, 0, 'x'.repeat(written), headers)).status, 204);
  return url;
}

/** Unhandled rejections in this process (the server runs in it) while `work` runs. */
async function noUnhandledRejection(work: () => Promise<void>): Promise<void> {
  const seen: unknown[] = [];
  const note = (e: unknown) => seen.push(e);
  process.on('unhandledRejection', note);
  try {
    await work();
    await new Promise((r) => setTimeout(r, 100));
  } finally {
    process.off('unhandledRejection', note);
  }
  assert.deepEqual(seen, [], 'no unhandled rejection');
}

async function metric(s: TestServer, name: string): Promise<number> {
  const text = await (await fetch(`${s.url}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  assert.ok(m, `${name} in /metrics`);
  return Number(m[1]);
}

/** Waits until the upload's file holds `bytes` (a body under way has reached the store). */
async function untilWritten(s: TestServer, id: string, bytes: number): Promise<void> {
  const until = Date.now() + 5000;
  while ((fs.statSync(s.store.filePath(id), { throwIfNoEntry: false })?.size ?? 0) < bytes && Date.now() < until)
    await new Promise((r) => setTimeout(r, 20));
}

/** A request cut by a DELETE was answered below 500 (@tus/server answers a creation that gave way with what it had,
 * 201), or its connection closed. */
async function cutAnswered(conn: RawConnection): Promise<void> {
  await Promise.race([conn.closed, new Promise((r) => setTimeout(r, 3000))]);
  const got = conn.received();
  if (got.length) {
    const answer = parseResponse(got, true);
    assert.ok(answer && answer.status < 500, got.toString('latin1').slice(0, 300));
  }
  conn.socket.destroy();
}

/** Nothing of the upload is left: file, info, digest state, owed bytes. */
async function assertRemoved(s: TestServer, id: string): Promise<void> {
  assert.ok(!exists(s, id), 'the file is gone');
  assert.ok(!fs.existsSync(`${s.store.filePath(id)}.json`), 'the info file is gone');
  assert.ok(!fs.existsSync(s.store.statePath(id)), 'the digest state is gone');
  assert.equal(await metric(s, 'tuspass_store_owed_bytes'), 0);
}

// ---------------------------------------------------------------- DELETE

test('DELETE under another spelling of the id: 404 (or 400 undecodable) in our format, nothing removed', async (t) => {
  const s = await startTestServer(t);
  const url = await unfinished(s);
  const id = idOf(url);
  const spellings = [
    `/files/${id.toUpperCase()}`,
    `/files/${id}/`,
    `/files/./${id}`,
    `/files/x/../${id}`,
    `/files/${id}/.`,
    `/files%2F${id}`,
    `/files/${id}%2F`,
    `/files/%2e%2e/files/${id}`,
    `/files//${id}`,
    `/FILES/${id}`,
    `/Files/${id}`,
    `/files/${id.slice(0, 5)}%${id.slice(5)}`,
    `/files/%${id}`,
    `/files/${id}%00`,
    `/files/${id};x`,
    `/files/%${id.charCodeAt(0).toString(16)}${id.slice(1)}`,
  ];
  for (const target of spellings) {
    const a = await raw(s, [`DELETE ${target} HTTP/1.1`, 'Tus-Resumable: 1.0.0']);
    assert.ok([404, 400].includes(a.status), `${target}: ${a.status} ${a.body}`);
    // `/files%2F…` is no tus route: the site's JSON 404.
    if (target.startsWith('/files%2F')) assert.match(a.body, /"ERR_NOT_FOUND"/);
    else assertTusAnswer(`DELETE ${target}`, a, 'DELETE');
    assert.ok(exists(s, id), `${target} removed nothing`);
  }
  assert.equal((await tus('HEAD', url)).status, 200);
  await healthy(s);
});

test("DELETE with someone else's token, directly or through a method override: 404 and nothing removed", async (t) => {
  const s = await startTestServer(t, { authJwtSecret: TEST_JWT_SECRET });
  const alice = bearer(tokenFor('alice', 'upload read'));
  const bob = bearer(tokenFor('bob', 'upload read'));
  const url = await unfinished(s, 10, 3, alice);
  const id = idOf(url);
  for (const [what, answer] of [
    ['bob DELETE', await tus('DELETE', url, bob)],
    ['bob POST override DELETE', await tus('POST', url, { ...bob, 'X-HTTP-Method-Override': 'DELETE' })],
    [
      'bob POST override delete (lower case, spaces)',
      await tus('POST', url, { ...bob, 'X-HTTP-Method-Override': ' delete ' }),
    ],
  ] as const) {
    assert.equal(answer.status, 404, `${what}: ${answer.body}`);
    assert.match(answer.body, /^ERR_UPLOAD_NOT_FOUND: /, what);
    assertTusAnswer(what, answer, 'DELETE');
    assert.ok(exists(s, id), `${what} removed nothing`);
  }
  const anonymous = await tus('DELETE', url);
  assert.equal(anonymous.status, 401, anonymous.body);
  assertTusAnswer('anonymous DELETE', anonymous, 'DELETE');
  assert.ok(exists(s, id));
  // A read-only token of the owner may not delete either.
  const readOnly = await tus('DELETE', url, bearer(tokenFor('alice', 'read')));
  assert.equal(readOnly.status, 403, readOnly.body);
  assertTusAnswer('read-only DELETE', readOnly, 'DELETE');
  assert.ok(exists(s, id));
  // The owner may, through the override as directly.
  const own = await tus('POST', url, { ...alice, 'X-HTTP-Method-Override': 'DELETE' });
  assert.equal(own.status, 204, own.body);
  assert.ok(!exists(s, id));
  await healthy(s);
});

test('DELETE announcing a body it never sends: answered at once, the lock free for the next request', async (t) => {
  const s = await startTestServer(t, { networkTimeoutMs: 60_000 });
  const url = await unfinished(s);
  const id = idOf(url);
  const conn = await openRaw(s.url);
  conn.socket.write(
    `DELETE /files/${id} HTTP/1.1\r\nHost: ${hostOf(s)}\r\nTus-Resumable: 1.0.0\r\nContent-Length: 1000000\r\n\r\nabc`,
  );
  const res = await readResponse(conn, 3000);
  assert.ok(res);
  assert.equal(res.status, 204, res.body.toString());
  assert.ok(!exists(s, id));
  // Nothing waits on that connection's body: the id is free (a HEAD answers at once, a new upload under no lock).
  const started = Date.now();
  assert.equal((await tus('HEAD', url)).status, 404);
  assert.ok(Date.now() - started < 1000);
  conn.socket.destroy();
  // The same with a chunked body that never ends.
  const url2 = await unfinished(s);
  const conn2 = await openRaw(s.url);
  conn2.socket.write(
    `DELETE /files/${idOf(url2)} HTTP/1.1\r\nHost: ${hostOf(s)}\r\nTus-Resumable: 1.0.0\r\nTransfer-Encoding: ` +
      'chunked\r\n\r\n5\r\nabcde\r\n',
  );
  const res2 = await readResponse(conn2, 3000);
  assert.equal(res2?.status, 204);
  conn2.socket.destroy();
  await healthy(s);
});

test('DELETE racing a HEAD: each answers in the format, never a 500', async (t) => {
  const s = await startTestServer(t);
  await noUnhandledRejection(async () => {
    for (let i = 0; i < 20; i++) {
      const url = await unfinished(s, 10, 3);
      const [del, head] = await Promise.all([tus('DELETE', url), tus('HEAD', url)]);
      assert.equal(del.status, 204, del.body);
      assert.ok([200, 404].includes(head.status), `HEAD ${head.status}`);
      assertTusAnswer('HEAD raced', head, 'HEAD');
      if (head.status === 200) assert.equal(head.headers['upload-offset'], '3');
      assert.ok(!exists(s, idOf(url)));
    }
  });
  await healthy(s);
});

test('DELETE of a partial racing a final that lists it: the \
final has all its bytes, or is refused in the format', async (t) => {
  const s = await startTestServer(t);
  await noUnhandledRejection(async () => {
    for (let i = 0; i < 15; i++) {
      const made = await tus('POST', s.endpoint, { 'Upload-Length': '3', 'Upload-Concat': 'partial' });
      assert.equal(made.status, 201, made.body);
      const partialUrl = new URL(made.headers.location!, s.endpoint).toString();
      assert.equal((await patch(partialUrl, 0, 'abc')).status, 204);
      const [del, final] = await Promise.all([
        tus('DELETE', partialUrl),
        tus('POST', s.endpoint, { 'Upload-Concat': `final;${partialUrl}` }),
      ]);
      assertTusAnswer('DELETE of the partial', del, 'DELETE');
      assertTusAnswer('final raced', final, 'POST');
      assert.ok([204, 404].includes(del.status), `DELETE ${del.status} ${del.body}`);
      if (final.status === 201) {
        const finalUrl = new URL(final.headers.location!, s.endpoint).toString();
        const head = await tus('HEAD', finalUrl);
        assert.equal(head.headers['upload-offset'], '3');
        assert.equal(fs.readFileSync(s.store.filePath(idOf(finalUrl)), 'utf8'), 'abc');
      } else assert.equal(final.status, 404, final.body);
    }
  });
  await healthy(s);
});

test('DELETE racing the expiry sweep: one of them removes the upload, neither throws', async (t) => {
  const s = await startTestServer(t, { expireAfterMs: 150 });
  await noUnhandledRejection(async () => {
    for (let i = 0; i < 10; i++) {
      // Created with its bytes in one request: a separate PATCH may itself come after the 150 ms (a
      // loaded machine) and be refused 410. Once the bytes are written, the wait only makes sure.
      const made = await tus('POST', s.endpoint, { 'Upload-Length': '10', ...PATCH_TYPE }, 'xxx');
      assert.equal(made.status, 201, made.body);
      assert.equal(made.headers['upload-offset'], '3');
      const url = new URL(made.headers.location!, s.endpoint).toString();
      await new Promise((r) => setTimeout(r, 200));
      const [del] = await Promise.all([tus('DELETE', url), s.store.deleteExpired()]);
      assert.ok([204, 404, 410].includes(del.status), `${del.status} ${del.body}`);
      assertTusAnswer('DELETE raced with the sweep', del, 'DELETE');
      assert.ok(!exists(s, idOf(url)));
      assert.ok(!fs.existsSync(`${s.store.filePath(idOf(url))}.json`));
    }
  });
  await healthy(s);
});

test('DELETE while a PATCH is mid-body: the PATCH stops, file, info and digest state go, the owed bytes leave the \
ledger', async (t) => {
  const s = await startTestServer(t, { networkTimeoutMs: 60_000, digests: ['sha1'] });
  const length = 1_000_000;
  const url = await unfinished(s, length, 0);
  const id = idOf(url);
  assert.equal(await metric(s, 'tuspass_store_owed_bytes'), length);
  await noUnhandledRejection(async () => {
    const conn = await openRaw(s.url);
    conn.socket.write(
      `PATCH /files/${id} HTTP/1.1\r\nHost: ${hostOf(s)}\r\nTus-Resumable: 1.0.0\r\nContent-Type: ` +
        `application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: ${length}\r\n\r\n`,
    );
    conn.socket.write(Buffer.alloc(200_000, 7));
    await untilWritten(s, id, 100_000);
    const started = Date.now();
    const del = await tus('DELETE', url);
    assert.equal(del.status, 204, del.body);
    assert.ok(Date.now() - started < 5000, 'the PATCH gave way');
    await cutAnswered(conn);
  });
  await assertRemoved(s, id);
  assert.equal((await tus('HEAD', url)).status, 404);
  await healthy(s);
});

test('two DELETEs at once: one 204, the other 404, no unhandled rejection', async (t) => {
  const s = await startTestServer(t);
  await noUnhandledRejection(async () => {
    for (let i = 0; i < 15; i++) {
      const url = await unfinished(s, 10, i % 2 ? 3 : 0);
      const answers = await Promise.all([
        tus('DELETE', url),
        tus('DELETE', url),
        tus('POST', url, { 'X-HTTP-Method-Override': 'DELETE' }),
      ]);
      for (const a of answers) assertTusAnswer('DELETE twice', a, 'DELETE');
      assert.deepEqual(answers.map((a) => a.status).sort(), [204, 404, 404]);
    }
  });
  await healthy(s);
});

test('DELETE whose pre-terminate hook hangs past HOOKS_TIMEOUT or throws: refused in the format, upload kept, lock \
released', async (t) => {
  const terminator: HookHandler = {
    name: 'terminator',
    events: ['pre-terminate'],
    async invokeHook(request) {
      const offset = request.Event.Upload.Offset;
      if (offset === 1) await new Promise(() => undefined); // hangs forever, ignores the signal
      if (offset === 2) throw new Error('the terminator fell over');
      return {};
    },
  };
  const s = await startTestServer(t, { hooksTimeoutMs: 300 }, { hooks: [terminator] });
  await noUnhandledRejection(async () => {
    for (const [written, code] of [
      [1, 'ERR_HOOK_TIMEOUT'],
      [2, 'ERR_HOOK_FAILED'],
    ] as const) {
      const url = await unfinished(s, 10, written);
      const del = await tus('DELETE', url);
      assert.match(del.body, new RegExp(`^${code}: `), del.body);
      assertTusAnswer(`DELETE with a hook ${code}`, del, 'DELETE', true);
      assert.ok(exists(s, idOf(url)));
      // The lock was let go: the upload goes on.
      const started = Date.now();
      const head = await tus('HEAD', url);
      assert.equal(head.status, 200);
      assert.equal((await patch(url, written, 'y')).status, 204);
      assert.ok(Date.now() - started < 2000);
    }
  });
  await healthy(s);
});

test('DELETE, then the same id made again through a \
pre-create hook: a new upload, nothing of the old one', async (t) => {
  const fixedId = 'a'.repeat(32);
  const chooser: HookHandler = {
    name: 'chooser',
    events: ['pre-create'],
    async invokeHook(request) {
      return request.Event.Upload.MetaData.name === 'fixed' ? { ChangeFileInfo: { ID: fixedId } } : {};
    },
  };
  const s = await startTestServer(t, { digests: ['sha1'] }, { hooks: [chooser] });
  const fixed = { 'Upload-Metadata': metadata({ name: 'fixed' }) };
  const first = await tus('POST', s.endpoint, { 'Upload-Length': '10', ...fixed });
  assert.equal(first.status, 201, first.body);
  const url = new URL(first.headers.location!, s.endpoint).toString();
  assert.equal(idOf(url), fixedId);
  assert.equal((await patch(url, 0, 'old')).status, 204);
  // While it exists, a second creation under its id must not take it over.
  const clash = await tus('POST', s.endpoint, { 'Upload-Length': '5', ...fixed });
  assert.match(clash.body, /^ERR_HOOK_FAILED: /, clash.body);
  assertTusAnswer('creation under an existing id', clash, 'POST', true);
  assert.equal((await tus('HEAD', url)).headers['upload-offset'], '3');
  assert.equal((await tus('DELETE', url)).status, 204);
  const again = await tus('POST', s.endpoint, { 'Upload-Length': '3', ...fixed });
  assert.equal(again.status, 201, again.body);
  const head = await tus('HEAD', url);
  assert.equal(head.headers['upload-offset'], '0');
  assert.equal(head.headers['upload-length'], '3');
  const done = await patch(url, 0, 'new');
  assert.ok([200, 204].includes(done.status), done.body);
  assert.equal(fs.readFileSync(s.store.filePath(fixedId), 'utf8'), 'new');
  // The digests are of the new bytes only: the old upload's digest state went with it.
  const [record] = await recordsWhenPresent(s.url, 1);
  assert.equal(record?.md5, crypto.createHash('md5').update('new').digest('hex'));
  assert.equal(record?.sha1, crypto.createHash('sha1').update('new').digest('hex'));
  await healthy(s);
});

test('DELETE with a body that holds another request: the body is a body, the next request on the connection answered \
once', async (t) => {
  const s = await startTestServer(t);
  const url = await unfinished(s);
  const other = await unfinished(s);
  const id = idOf(url);
  const smuggled = `DELETE /files/${idOf(other)} HTTP/1.1\r\nHost: ${hostOf(s)}\r\nTus-Resumable: 1.0.0\r\n\r\n`;
  const conn = await openRaw(s.url);
  conn.socket.write(
    `DELETE /files/${id} HTTP/1.1\r\nHost: ${hostOf(s)}\r\nTus-Resumable: 1.0.0\r\nContent-Length: ` +
      `${smuggled.length}\r\n\r\n${smuggled}`,
  );
  conn.socket.write(
    `HEAD /files/${id} HTTP/1.1\r\nHost: ${hostOf(s)}\r\nTus-Resumable: 1.0.0\r\nConnection: close\r\n\r\n`,
  );
  await Promise.race([conn.closed, new Promise((r) => setTimeout(r, 3000))]);
  const all = conn.received();
  const first = parseResponse(all, true);
  assert.equal(first?.status, 204);
  const second = parseResponse(all.subarray(first!.length), true, true);
  assert.equal(second?.status, 404, 'the HEAD that followed');
  assert.equal(second!.length, all.length - first!.length, 'no third answer: the body was not a request');
  conn.socket.destroy();
  assert.ok(!exists(s, id));
  assert.ok(exists(s, idOf(other)), 'the upload named in the body is untouched');
  await healthy(s);
});

test('DELETE while a creation-with-upload POST is mid-body (id chosen by a hook): the POST stops, nothing of the \
upload comes back', async (t) => {
  const fixedId = 'b'.repeat(32);
  const chooser: HookHandler = {
    name: 'chooser',
    events: ['pre-create'],
    async invokeHook() {
      return { ChangeFileInfo: { ID: fixedId } };
    },
  };
  const s = await startTestServer(t, { networkTimeoutMs: 60_000, digests: ['sha1'] }, { hooks: [chooser] });
  const length = 1_000_000;
  await noUnhandledRejection(async () => {
    const conn = await openRaw(s.url);
    conn.socket.write(
      `POST /files/ HTTP/1.1\r\nHost: ${hostOf(s)}\r\nTus-Resumable: 1.0.0\r\nUpload-Length: ` +
        `${length}\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: ${length}\r\n\r\n`,
    );
    conn.socket.write(Buffer.alloc(200_000, 7));
    await untilWritten(s, fixedId, 100_000);
    const del = await tus('DELETE', `${s.endpoint}${fixedId}`);
    assert.equal(del.status, 204, del.body);
    // More bytes after the removal must not bring any of it back.
    conn.socket.write(Buffer.alloc(100_000, 8));
    await cutAnswered(conn);
    await new Promise((r) => setTimeout(r, 200));
  });
  await assertRemoved(s, fixedId);
  await healthy(s);
});

// The existence check of a hook-chosen id (upload-events.ts) runs before @tus/server takes the id's
// lock: two creations that a hook gives one id at the same moment both pass it; the store's create()
// opening the file with 'wx' (store/new-upload.ts) refuses the second.
test('two creations given one id by a hook at the same \
moment: one upload, never one emptied by the other', async (t) => {
  const fixedId = 'c'.repeat(32);
  const chooser: HookHandler = {
    name: 'chooser',
    events: ['pre-create'],
    async invokeHook() {
      return { ChangeFileInfo: { ID: fixedId } };
    },
  };
  const s = await startTestServer(t, {}, { hooks: [chooser] });
  const answers = await Promise.all([
    tus('POST', s.endpoint, { 'Upload-Length': '3', ...PATCH_TYPE }, 'abc'),
    tus('POST', s.endpoint, { 'Upload-Length': '5' }),
  ]);
  const summary = answers.map((a) => `${a.status} ${a.body}`).join(' | ');
  // One creation made the upload; the other is refused as a creation under an existing id is.
  const made = answers.findIndex((a) => a.status === 201);
  assert.ok(made >= 0, summary);
  assert.match(answers[1 - made]!.body, /^ERR_HOOK_FAILED: /, summary);
  const head = await tus('HEAD', `${s.endpoint}${fixedId}`);
  assert.equal(head.headers['upload-length'], made === 0 ? '3' : '5', summary);
  assert.equal(head.headers['upload-offset'], made === 0 ? '3' : '0', summary);
  await healthy(s);
});

// ---------------------------------------------------------------- the one error format

/** Raw creation requests: each must be answered in the format, below 500. */
function oddCreations(): Array<[name: string, headers: string[], body?: string]> {
  return [
    ['metadata key with spaces', ['Upload-Length: 5', 'Upload-Metadata: a b c']],
    ['metadata key only (empty value)', ['Upload-Length: 5', 'Upload-Metadata: name']],
    ['metadata key and a space, empty value', ['Upload-Length: 5', 'Upload-Metadata: name ']],
    ['metadata empty', ['Upload-Length: 5', 'Upload-Metadata: ']],
    ['metadata only commas', ['Upload-Length: 5', 'Upload-Metadata: ,,,']],
    ['metadata non-base64', ['Upload-Length: 5', 'Upload-Metadata: name ***']],
    [
      'metadata base64 of invalid UTF-8',
      ['Upload-Length: 5', `Upload-Metadata: name ${Buffer.from([0xff, 0xfe]).toString('base64')}`],
    ],
    ['metadata non-ASCII key', ['Upload-Length: 5', 'Upload-Metadata: n\u00e4me YQ==']],
    [
      "metadata 1,500 pairs (within node's 16 KiB of headers)",
      ['Upload-Length: 5', `Upload-Metadata: ${Array.from({ length: 1500 }, (_, i) => `k${i}`).join(',')}`],
    ],
    ['metadata __proto__ key', ['Upload-Length: 5', 'Upload-Metadata: __proto__ YQ==,constructor YQ==']],
    ['two Upload-Metadata headers', ['Upload-Length: 5', 'Upload-Metadata: a YQ==', 'Upload-Metadata: b YQ==']],
    ['defer and length', ['Upload-Length: 5', 'Upload-Defer-Length: 1']],
    ['defer 0', ['Upload-Defer-Length: 0']],
    ['defer empty', ['Upload-Defer-Length: ']],
    ['length negative', ['Upload-Length: -5']],
    ['length float', ['Upload-Length: 5.0']],
    ['length hex', ['Upload-Length: 0x10']],
    ['length exponent', ['Upload-Length: 1e3']],
    ['length plus', ['Upload-Length: +5']],
    ['length empty', ['Upload-Length: ']],
    ['length with spaces inside', ['Upload-Length: 5 5']],
    ['length Infinity', ['Upload-Length: Infinity']],
    ['two Upload-Length headers, same', ['Upload-Length: 5', 'Upload-Length: 5']],
    ['two Upload-Length headers, different', ['Upload-Length: 5', 'Upload-Length: 500000']],
    ['Upload-Offset on a creation', ['Upload-Length: 5', 'Upload-Offset: 01']],
    ['Tus-Resumable twice', ['Upload-Length: 5', 'Tus-Resumable: 1.0.0']],
    ['Tus-Version odd', ['Upload-Length: 5', 'Tus-Version: 0.2.0']],
    ['Tus-Version twice', ['Upload-Length: 5', 'Tus-Version: 1.0.0', 'Tus-Version: 1.0.0']],
    ['X-Forwarded-Proto twice', ['Upload-Length: 5', 'X-Forwarded-Proto: https', 'X-Forwarded-Proto: http']],
    ['Upload-Concat partial twice', ['Upload-Length: 5', 'Upload-Concat: partial', 'Upload-Concat: partial']],
    ['Upload-Concat partial with a defer', ['Upload-Defer-Length: 1', 'Upload-Concat: partial']],
    ['Upload-Concat final; nothing', ['Upload-Concat: final;  ']],
    ['Upload-Concat final with a dot-segment part', ['Upload-Concat: final;/files/../files/x']],
    [
      'Content-Type offset+octet-stream, no body',
      ['Upload-Length: 5', 'Content-Type: application/offset+octet-stream', 'Content-Length: 0'],
    ],
    ['body but no Content-Type', ['Upload-Length: 5', 'Content-Length: 5'], 'abcde'],
    ['body with another Content-Type', ['Upload-Length: 5', 'Content-Type: text/plain', 'Content-Length: 5'], 'abcde'],
    [
      'chunked creation-with-upload past Upload-Length',
      ['Upload-Length: 5', 'Content-Type: application/offset+octet-stream', 'Transfer-Encoding: chunked'],
      `${(2000).toString(16)}\r\n${'x'.repeat(2000)}\r\n0\r\n\r\n`,
    ],
    [
      'chunked deferred creation-with-upload past MAX_SIZE',
      ['Upload-Defer-Length: 1', 'Content-Type: application/offset+octet-stream', 'Transfer-Encoding: chunked'],
      `${(2000).toString(16)}\r\n${'x'.repeat(2000)}\r\n0\r\n\r\n`,
    ],
    [
      'Content-Length past Upload-Length',
      ['Upload-Length: 5', 'Content-Type: application/offset+octet-stream', 'Content-Length: 10'],
      'x'.repeat(10),
    ],
    [
      'Content-Length past MAX_SIZE, deferred',
      ['Upload-Defer-Length: 1', 'Content-Type: application/offset+octet-stream', 'Content-Length: 5000'],
      'x'.repeat(5000),
    ],
  ];
}

test('creations that reach @tus/server in odd ways: every \
answer in the format, below 500, the server up', async (t) => {
  const s = await startTestServer(t, { maxSize: 1000 });
  const failures: string[] = [];
  for (const [name, headers, body] of oddCreations()) {
    const answer = await raw(s, ['POST /files/ HTTP/1.1', 'Tus-Resumable: 1.0.0', ...headers], body ?? '');
    try {
      assertTusAnswer(name, answer, 'POST');
    } catch (e) {
      failures.push((e as Error).message.split('\n')[0]!);
    }
  }
  await healthy(s);
  assert.deepEqual(failures, []);
  // A chunked body past the limit is the same refusal as a Content-Length past it (StreamLimiter's error mapped).
  for (const [name, headers, body] of oddCreations().filter(([n]) => n.startsWith('chunked'))) {
    const answer = await raw(s, ['POST /files/ HTTP/1.1', 'Tus-Resumable: 1.0.0', ...headers], body);
    assert.equal(answer.status, 413, name);
    assert.match(answer.body, /^ERR_SIZE_EXCEEDED: /, name);
  }
  // Headers past node's limit (16 KiB) are refused by node's HTTP parser before any route runs,
  // answered from the table all the same (server/http/client-errors.ts); the server stays up. The second
  // value is 64 KiB of capital letters (base64 of 0x01 bytes, "AQEB…"), which a pattern looking for
  // a request line (`METHOD target HTTP/1.x`) must not take seconds over.
  const many = Array.from({ length: 10_000 }, (_, i) => `k${i} YQ==`).join(',');
  for (const value of [many, `name ${Buffer.alloc(48 * 1024, 1).toString('base64')}`]) {
    const answer = await raw(s, [
      'POST /files/ HTTP/1.1',
      'Tus-Resumable: 1.0.0',
      'Upload-Length: 5',
      `Upload-Metadata: ${value}`,
    ]);
    assert.equal(answer.status, 431);
    assert.match(answer.body, /^ERR_HEADERS_TOO_LARGE: /);
    assert.equal(answer.headers['tus-resumable'], '1.0.0');
  }
  // A request node cannot parse at all: 400 in the same form.
  for (const lines of [
    ['PATCH /files/x HTTP/1.1', 'Bad Header Line'],
    ['GARBAGE', 'Host: x'],
    ['POST /files/ HTTP/1.1', 'Content-Length: 1', 'Content-Length: 2'],
  ]) {
    const answer = await raw(s, lines);
    assert.equal(answer.status, 400, lines.join(' | '));
    assert.match(answer.body, /^ERR_REQUEST_MALFORMED: /, lines.join(' | '));
  }
  // The same refusal of a HEAD has no body: its bytes would be read as the next answer.
  const conn = await openRaw(s.url);
  conn.socket.write(`HEAD /files/x HTTP/1.1\r\nHost: ${hostOf(s)}\r\nBad Header Line\r\n\r\n`);
  await conn.closed;
  const wire = conn.received().toString('latin1');
  assert.match(wire, /^HTTP\/1\.1 400 /);
  assert.match(wire, /\r\ncontent-length: 0\r\n/i);
  assert.ok(wire.endsWith('\r\n\r\n'), `nothing after the head: ${JSON.stringify(wire)}`);
  await healthy(s);
});

test("final concatenations (tuspass's own handler) with odd headers: in the format, below 500, nothing made of \
refused ones", async (t) => {
  const s = await startTestServer(t, { maxSize: 1000 });
  const partial = async () => {
    const made = await tus('POST', s.endpoint, { 'Upload-Length': '3', 'Upload-Concat': 'partial' });
    const part = new URL(made.headers.location!, s.endpoint).pathname;
    assert.equal((await patch(new URL(part, s.endpoint).toString(), 0, 'abc')).status, 204);
    return part;
  };
  const cases: Array<[string, string[]]> = [
    ['metadata non-base64', ['Upload-Metadata: name ***']],
    ['metadata repeated key', ['Upload-Metadata: a YQ==,a YQ==']],
    ['with Upload-Defer-Length', ['Upload-Defer-Length: 1']],
    ['with Upload-Length', ['Upload-Length: 3']],
    ['Tus-Version garbage', ['Tus-Version: 9']],
    ['X-Forwarded-Proto ftp', ['X-Forwarded-Proto: ftp']],
    ['with Upload-Offset', ['Upload-Offset: 0']],
    ['with a body', ['Content-Type: application/offset+octet-stream', 'Content-Length: 3']],
  ];
  const failures: string[] = [];
  for (const [name, headers] of cases) {
    const part = await partial();
    const before = fs.readdirSync(s.config.storeDir).length;
    const answer = await raw(
      s,
      ['POST /files/ HTTP/1.1', 'Tus-Resumable: 1.0.0', `Upload-Concat: final;${part}`, ...headers],
      headers.some((h) => h.startsWith('Content-Length')) ? 'xyz' : '',
    );
    try {
      assertTusAnswer(`final ${name}`, answer, 'POST');
      if (answer.status !== 201)
        assert.equal(fs.readdirSync(s.config.storeDir).length, before, `final ${name}: nothing made`);
    } catch (e) {
      failures.push((e as Error).message.split('\n')[0]!);
    }
  }
  await healthy(s);
  assert.deepEqual(failures, []);
});

test('OPTIONS, HEAD, GET and PATCH with odd headers: in the format, below 500', async (t) => {
  const s = await startTestServer(t, { maxSize: 1000 });
  const url = await unfinished(s, 10, 3);
  const target = new URL(url).pathname;
  const cases: Array<[string, string[], string?]> = [
    ['OPTIONS with a wrong Tus-Resumable', ['OPTIONS /files/ HTTP/1.1', 'Tus-Resumable: 0.0.1']],
    ['OPTIONS with a bad Upload-Length', ['OPTIONS /files/ HTTP/1.1', 'Upload-Length: abc']],
    [
      'OPTIONS preflight of a DELETE from a foreign origin',
      [
        `OPTIONS ${target} HTTP/1.1`,
        'Origin: https://evil.example',
        'Access-Control-Request-Method: DELETE',
        'Access-Control-Request-Headers: tus-resumable, x-http-method-override',
      ],
    ],
    ['OPTIONS with Upload-Metadata garbage', ['OPTIONS /files/ HTTP/1.1', 'Upload-Metadata: ***']],
    ['OPTIONS with Tus-Version garbage', ['OPTIONS /files/ HTTP/1.1', 'Tus-Version: x']],
    ['OPTIONS with X-Forwarded-Proto ftp', ['OPTIONS /files/ HTTP/1.1', 'X-Forwarded-Proto: ftp']],
    ['OPTIONS with a body', ['OPTIONS /files/ HTTP/1.1', 'Content-Length: 3'], 'abc'],
    ['POST override OPTIONS', ['POST /files/ HTTP/1.1', 'X-HTTP-Method-Override: OPTIONS', 'Tus-Resumable: 1.0.0']],
    [
      'POST override HEAD on the collection',
      ['POST /files/ HTTP/1.1', 'X-HTTP-Method-Override: HEAD', 'Tus-Resumable: 1.0.0'],
    ],
    ['POST override TRACE', ['POST /files/ HTTP/1.1', 'X-HTTP-Method-Override: TRACE', 'Tus-Resumable: 1.0.0']],
    [
      'POST override twice',
      [
        `POST ${target} HTTP/1.1`,
        'X-HTTP-Method-Override: DELETE',
        'X-HTTP-Method-Override: HEAD',
        'Tus-Resumable: 1.0.0',
      ],
    ],
    ['HEAD with Upload-Metadata garbage', [`HEAD ${target} HTTP/1.1`, 'Tus-Resumable: 1.0.0', 'Upload-Metadata: ***']],
    [
      'PATCH with Upload-Length garbage',
      [
        `PATCH ${target} HTTP/1.1`,
        'Tus-Resumable: 1.0.0',
        'Content-Type: application/offset+octet-stream',
        'Upload-Offset: 3',
        'Upload-Length: 1e3',
        'Content-Length: 1',
      ],
      'y',
    ],
    [
      'PATCH with Upload-Length on a known length',
      [
        `PATCH ${target} HTTP/1.1`,
        'Tus-Resumable: 1.0.0',
        'Content-Type: application/offset+octet-stream',
        'Upload-Offset: 3',
        'Upload-Length: 20',
        'Content-Length: 1',
      ],
      'y',
    ],
    [
      'chunked PATCH past Upload-Length',
      [
        `PATCH ${target} HTTP/1.1`,
        'Tus-Resumable: 1.0.0',
        'Content-Type: application/offset+octet-stream',
        'Upload-Offset: 3',
        'Transfer-Encoding: chunked',
      ],
      `${(2000).toString(16)}\r\n${'x'.repeat(2000)}\r\n0\r\n\r\n`,
    ],
    [
      'PATCH with two Upload-Offset headers',
      [
        `PATCH ${target} HTTP/1.1`,
        'Tus-Resumable: 1.0.0',
        'Content-Type: application/offset+octet-stream',
        'Upload-Offset: 3',
        'Upload-Offset: 3',
        'Content-Length: 1',
      ],
      'y',
    ],
    [
      'PATCH with Content-Type and parameters',
      [
        `PATCH ${target} HTTP/1.1`,
        'Tus-Resumable: 1.0.0',
        'Content-Type: application/offset+octet-stream; charset=x',
        'Upload-Offset: 3',
        'Content-Length: 1',
      ],
      'y',
    ],
    [
      'PATCH with a bad checksum header',
      [
        `PATCH ${target} HTTP/1.1`,
        'Tus-Resumable: 1.0.0',
        'Content-Type: application/offset+octet-stream',
        'Upload-Offset: 4',
        'Upload-Checksum: sha1',
        'Content-Length: 1',
      ],
      'y',
    ],
    ['DELETE with Upload-Offset garbage', [`DELETE ${target} HTTP/1.1`, 'Tus-Resumable: 1.0.0', 'Upload-Offset: x']],
    ['GET with Range garbage', [`GET ${target} HTTP/1.1`, 'Tus-Resumable: 1.0.0', 'Range: bytes=9-1']],
    ['unknown method', [`PROPFIND ${target} HTTP/1.1`, 'Tus-Resumable: 1.0.0']],
  ];
  const failures: string[] = [];
  for (const [name, lines, body] of cases) {
    const method = lines[0]!.split(' ')[0]!;
    const answer = await raw(s, lines, body ?? '', method === 'HEAD');
    try {
      if (method === 'OPTIONS' && answer.status < 300) assert.equal(answer.headers['tus-resumable'], '1.0.0', name);
      else
        assertTusAnswer(
          name,
          answer,
          method === 'POST' && /Override: (OPTIONS|HEAD)/.test(lines.join())
            ? lines.find((l) => l.startsWith('X-HTTP'))!.split(': ')[1]!
            : method,
        );
    } catch (e) {
      failures.push((e as Error).message.split('\n')[0]!);
    }
  }
  await healthy(s);
  assert.deepEqual(failures, []);
});

// ---------------------------------------------------------------- hooks and settings

test("a module hook's factory gets { log, queue, removeUpload }: no server configuration to read", async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'peek.mjs');
  fs.writeFileSync(
    file,
    `export default (context) => {
  const secret = JSON.stringify(context).includes('test-secret');
  globalThis.__hostileRoutesContext = { keys: Object.keys(context).sort(), config: context.config, secret };
  return { 'pre-create': () => ({}) };
};\n`,
  );
  const s = await startTestServer(t, { hooksModules: [file] });
  const seen = (globalThis as { __hostileRoutesContext?: { keys: string[]; config: unknown; secret: boolean } })
    .__hostileRoutesContext;
  assert.ok(seen, 'the factory ran');
  assert.deepEqual(seen.keys, ['log', 'queue', 'removeUpload']);
  assert.equal(seen.config, undefined);
  assert.equal(seen.secret, false, 'no secret reachable from the context');
  assert.match(
    fs.readFileSync(path.join(import.meta.dirname, '..', 'docs', 'hooks.md'), 'utf8'),
    /`\{ log, queue, removeUpload \}`/,
  );
  await healthy(s);
});

test('HOOKS_BUILTIN: an unknown name stops the start naming the setting; none posts no completion form; a name twice \
posts it once', async (t) => {
  const dataDir = tmpDir(t);
  for (const [env, argv, named] of [
    [{ HOOKS_BUILTIN: 'bogus' }, [], 'HOOKS_BUILTIN'],
    [{ HOOKS_BUILTIN: 'complete-form,bogus' }, [], 'HOOKS_BUILTIN'],
    [{}, ['--hooks-builtin', 'bogus'], '--hooks-builtin'],
  ] as const) {
    assert.throws(
      () => load({ DATA_DIR: dataDir, ...env }, argv),
      (e: unknown) => e instanceof ConfigError && e.message.includes(named) && e.message.includes('bogus'),
    );
  }
  // A receiver counting the forms it is sent.
  let forms = 0;
  const receiver = http.createServer((req, res) => {
    forms++;
    req.resume();
    req.on('end', () => res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}'));
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  t.after(() => receiver.close());
  const completionUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/complete/`;
  for (const [builtin, expected] of [
    ['none', 0],
    ['complete-form', 1],
    ['complete-form, complete-form', 1],
  ] as const) {
    const { config } = load({ DATA_DIR: tmpDir(t), HOOKS_BUILTIN: builtin });
    forms = 0;
    const s = await startTestServer(t, { hooksBuiltin: config.hooksBuiltin, completionUrl }, { completion: false });
    const url = await create(s.endpoint, 3);
    const done = await patch(url, 0, 'abc');
    assert.ok([200, 204].includes(done.status), done.body);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(forms, expected, `HOOKS_BUILTIN=${builtin}`);
    await s.close();
  }
});

test('a setting given as an empty (or blank) string: its default (environment), refused naming it (flag), never \
something else', () => {
  const dataDir = tmpDir({ after: () => undefined } as never);
  const base = load({ DATA_DIR: dataDir }).config;
  const problems: string[] = [];
  for (const s of SETTINGS)
    for (const empty of ['', ' ', '\t \t']) {
      const env = s.env === 'DATA_DIR' ? { [s.env]: empty } : { DATA_DIR: dataDir, [s.env]: empty };
      const expected = s.env === 'DATA_DIR' ? load({}).config : base;
      try {
        const { config } = load(env);
        assert.equal(inspect(config[s.key], { depth: 8 }), inspect(expected[s.key], { depth: 8 }));
      } catch (e) {
        problems.push(`${s.env}=${JSON.stringify(empty)}: ${(e as Error).message.split('\n')[0]}`);
      }
      // A flag given nothing is refused, whatever it would parse to: `--host=` is no address.
      for (const argv of [[`${s.flag}=${empty}`], [s.flag, empty]]) {
        try {
          load({ DATA_DIR: dataDir }, argv);
          problems.push(`${argv.join(' ')}: accepted`);
        } catch (e) {
          if (!(e instanceof ConfigError && e.message.includes(`${s.flag}: needs a value`)))
            problems.push(`${argv.join(' ')}: ${(e as Error).message.split('\n')[0]}`);
        }
      }
    }
  assert.deepEqual(problems, []);
});

test('a page on another origin cannot get a DELETE or an \
overriding POST past its preflight (CORS_ORIGINS unset)', async (t) => {
  const s = await startTestServer(t);
  const url = await unfinished(s);
  const target = new URL(url).pathname;
  for (const [method, headers] of [
    ['DELETE', 'tus-resumable'],
    ['POST', 'tus-resumable, x-http-method-override'],
  ]) {
    const answer = await raw(s, [
      `OPTIONS ${target} HTTP/1.1`,
      'Origin: https://evil.example',
      `Access-Control-Request-Method: ${method}`,
      `Access-Control-Request-Headers: ${headers}`,
    ]);
    assert.ok(answer.status < 500, `${answer.status}`);
    const allowed = answer.headers['access-control-allow-origin'];
    assert.ok(
      allowed === undefined || (allowed !== '*' && allowed !== 'https://evil.example'),
      `${method} preflight allowed ${allowed}`,
    );
  }
  // Without a preflight a form can only send a simple request: no Tus-Resumable, so nothing is done.
  const simple = await raw(s, [
    `POST ${target} HTTP/1.1`,
    'Origin: https://evil.example',
    'Content-Type: application/x-www-form-urlencoded',
    'Content-Length: 0',
  ]);
  assert.notEqual(simple.status, 204);
  assert.ok(exists(s, idOf(url)));
});
