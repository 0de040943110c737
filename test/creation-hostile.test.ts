// tus creation (server/upload/tus/creation-handler.ts) against hostile and broken clients, header by
// header: each refusal's status and code, and that a refused creation leaves nothing behind — no
// file, no info, no place in its owner's count, no post-create notice, no completion form.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import type { HookHandler } from '../hooks/types.ts';
import { md5, patternBytes } from './helpers/files.ts';
import { parseResponse, rawExchange } from './helpers/raw-http.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { exchange } from './helpers/draft-http.ts';
import { b64, PATCH_TYPE, patch, tus } from './helpers/tus.ts';

/** Every upload hook the server runs, in order: `<type> <id>`. */
function hookLog(): { seen: string[]; handler: HookHandler } {
  const seen: string[] = [];
  return {
    seen,
    handler: {
      name: 'recorder',
      events: ['pre-create', 'post-create', 'pre-finish', 'post-finish', 'post-terminate'],
      async invokeHook(req) {
        seen.push(`${req.Type} ${req.Event.Upload.ID}`);
        return {};
      },
    },
  };
}

const storeFiles = (s: TestServer) => fs.readdirSync(s.config.storeDir).filter((n) => !n.startsWith('.'));

/** One raw creation on its own connection: its answer (the head lines as written, the body as given). */
async function rawCreation(s: TestServer, lines: string[], body = '') {
  const { host } = new URL(s.endpoint);
  const head = ['POST /files/ HTTP/1.1', `Host: ${host}`, 'Tus-Resumable: 1.0.0', ...lines];
  if (body && !lines.some((l) => /^(content-length|transfer-encoding):/i.test(l)))
    head.push(`Content-Length: ${Buffer.byteLength(body)}`);
  const { raw } = await rawExchange(s.endpoint, `${head.join('\r\n')}\r\nConnection: close\r\n\r\n${body}`);
  const answer = parseResponse(raw, true);
  assert.ok(answer, `an answer to ${lines.join(' | ')}: ${raw.toString('latin1').slice(0, 200)}`);
  return { status: answer.status, headers: answer.headers, body: answer.body.toString() };
}

test('creation headers a client gets wrong: each refused with its status and code, nothing created, no hook past \
pre-create', async (t) => {
  const hooks = hookLog();
  const s = await startTestServer(t, { maxSize: 1_000_000 }, { hooks: [hooks.handler] });
  const cases: Array<[name: string, lines: string[], status: number, code: string]> = [
    [
      'Upload-Length 2^53 (past what is counted exactly)',
      ['Upload-Length: 9007199254740992'],
      400,
      'ERR_LENGTH_INVALID',
    ],
    ['Upload-Length of 30 digits', [`Upload-Length: ${'9'.repeat(30)}`], 400, 'ERR_LENGTH_INVALID'],
    ['Upload-Length past MAX_SIZE', ['Upload-Length: 1000001'], 413, 'ERR_MAX_SIZE_EXCEEDED'],
    ['Upload-Length negative', ['Upload-Length: -1'], 400, 'ERR_LENGTH_INVALID'],
    ['Upload-Length 1e3', ['Upload-Length: 1e3'], 400, 'ERR_LENGTH_INVALID'],
    ['Upload-Length 0x10', ['Upload-Length: 0x10'], 400, 'ERR_LENGTH_INVALID'],
    ['Upload-Length with a leading zero', ['Upload-Length: 010'], 400, 'ERR_LENGTH_INVALID'],
    ['Upload-Length 5.0', ['Upload-Length: 5.0'], 400, 'ERR_LENGTH_INVALID'],
    ['neither Upload-Length nor Upload-Defer-Length', [], 400, 'ERR_LENGTH_REQUIRED'],
    [
      'Upload-Length with Upload-Defer-Length',
      ['Upload-Length: 5', 'Upload-Defer-Length: 1'],
      400,
      'ERR_LENGTH_REQUIRED',
    ],
    ['Upload-Defer-Length 0', ['Upload-Defer-Length: 0'], 400, 'ERR_LENGTH_REQUIRED'],
    ['Upload-Defer-Length 2', ['Upload-Defer-Length: 2'], 400, 'ERR_LENGTH_REQUIRED'],
    ['metadata key twice', ['Upload-Length: 5', 'Upload-Metadata: a YQ==,a Yg=='], 400, 'ERR_METADATA_INVALID'],
    [
      'metadata key twice, one without value',
      ['Upload-Length: 5', 'Upload-Metadata: a,a YQ=='],
      400,
      'ERR_METADATA_INVALID',
    ],
    ['metadata value not base64', ['Upload-Length: 5', 'Upload-Metadata: a Y*=='], 400, 'ERR_METADATA_INVALID'],
    ['metadata value cut base64', ['Upload-Length: 5', 'Upload-Metadata: a YQ='], 400, 'ERR_METADATA_INVALID'],
    ['metadata padding inside', ['Upload-Length: 5', 'Upload-Metadata: a YQ==YQ=='], 400, 'ERR_METADATA_INVALID'],
    ['metadata two spaces', ['Upload-Length: 5', 'Upload-Metadata: a  YQ=='], 400, 'ERR_METADATA_INVALID'],
    [
      'metadata space after a comma',
      ['Upload-Length: 5', 'Upload-Metadata: a YQ==, b YQ=='],
      400,
      'ERR_METADATA_INVALID',
    ],
    ['metadata trailing comma', ['Upload-Length: 5', 'Upload-Metadata: a YQ==,'], 400, 'ERR_METADATA_INVALID'],
    ['metadata non-ASCII key', ['Upload-Length: 5', 'Upload-Metadata: n\u00e4me YQ=='], 400, 'ERR_METADATA_INVALID'],
    [
      'checksum malformed on a creation-with-upload',
      ['Upload-Length: 5', 'Content-Type: application/offset+octet-stream', 'Upload-Checksum: sha1 ***'],
      400,
      'ERR_CHECKSUM_HEADER',
    ],
  ];
  for (const [name, lines, status, code] of cases) {
    const answer = await rawCreation(s, lines, name.includes('creation-with-upload') ? 'abcde' : '');
    assert.equal(answer.status, status, `${name}: ${answer.body}`);
    assert.match(answer.body, new RegExp(`^${code}: `), name);
    assert.equal(answer.headers.location, undefined, name);
  }
  assert.deepEqual(storeFiles(s), [], 'nothing created');
  assert.deepEqual(
    hooks.seen.filter((h) => !h.startsWith('pre-create')),
    [],
    'no upload announced',
  );
});

test('metadata keys that name object properties (__proto__, constructor, toString) are keys like any \
other', async (t) => {
  const s = await startTestServer(t);
  const header = `__proto__ ${b64('a')},constructor ${b64('b')},toString,hasOwnProperty ${b64('d')}`;
  const made = await tus('POST', s.endpoint, { 'Upload-Length': '3', 'Upload-Metadata': header });
  assert.equal(made.status, 201, made.body);
  const head = await tus('HEAD', made.headers.location!);
  const back = Object.fromEntries(
    head.headers['upload-metadata']!.split(',').map((pair) => {
      const [key, value] = pair.split(' ');
      return [key, value === undefined ? null : Buffer.from(value, 'base64').toString()];
    }),
  );
  assert.deepEqual({ ...back }, { ['__proto__']: 'a', constructor: 'b', toString: null, hasOwnProperty: 'd' });
});

test('a creation-with-upload body longer than its Upload-Length: 413 ERR_SIZE_EXCEEDED, nothing kept, nothing \
announced — with Content-Length (refused unread) and chunked (refused at the first byte too many)', async (t) => {
  const hooks = hookLog();
  const s = await startTestServer(t, {}, { hooks: [hooks.handler] });
  const chunked = (text: string) => `${text.length.toString(16)}\r\n${text}\r\n0\r\n\r\n`;
  for (const [name, lines, body] of [
    [
      'Content-Length past Upload-Length',
      ['Upload-Length: 5', 'Content-Type: application/offset+octet-stream'],
      '0123456789',
    ],
    [
      'chunked past Upload-Length',
      ['Upload-Length: 5', 'Content-Type: application/offset+octet-stream', 'Transfer-Encoding: chunked'],
      chunked('0123456789'),
    ],
    [
      'chunked past an Upload-Length of 0',
      ['Upload-Length: 0', 'Content-Type: application/offset+octet-stream', 'Transfer-Encoding: chunked'],
      chunked('x'),
    ],
  ] as const) {
    const answer = await rawCreation(s, [...lines], body);
    assert.equal(answer.status, 413, `${name}: ${answer.body}`);
    assert.match(answer.body, /^ERR_SIZE_EXCEEDED: /, name);
    assert.equal(answer.headers.location, undefined, `${name}: no upload to resume`);
  }
  assert.deepEqual(storeFiles(s), [], 'nothing kept');
  assert.equal(hooks.seen.filter((h) => /^(pre|post)-finish/.test(h)).length, 0, hooks.seen.join('\n'));
  assert.deepEqual(await (await fetch(`${s.url}/api/uploads`)).json(), [], 'no record in the catalog');
  assert.deepEqual(s.store.space.ownerTotals('address:127.0.0.1'), { owed: 0, open: 0 });
});

test('creation-with-upload: the body is taken with Content-Type parameters too; a body sent without that type is not \
appended; Upload-Length: 0 with an empty body finishes in the POST', async (t) => {
  const s = await startTestServer(t);
  const bytes = patternBytes(5000, 4);
  const typed = await tus(
    'POST',
    s.endpoint,
    { 'Upload-Length': String(bytes.length), 'Content-Type': 'Application/Offset+Octet-Stream; charset=binary' },
    bytes,
  );
  assert.equal(typed.status, 201, typed.body);
  assert.equal(typed.headers['upload-offset'], String(bytes.length));
  const untyped = await tus('POST', s.endpoint, { 'Upload-Length': '5', 'Content-Type': 'text/plain' }, 'abcde');
  assert.equal(untyped.status, 201, untyped.body);
  assert.equal(untyped.headers['upload-offset'], undefined, 'no body appended, so no offset to tell');
  assert.equal((await tus('HEAD', untyped.headers.location!)).headers['upload-offset'], '0');
  const empty = await tus('POST', s.endpoint, { 'Upload-Length': '0', ...PATCH_TYPE }, Buffer.alloc(0));
  assert.equal(empty.status, 201, empty.body);
  assert.equal(empty.headers['upload-offset'], '0');
  assert.equal(empty.headers['upload-expires'], undefined, 'a finished upload does not expire');
  const records = (await (await fetch(`${s.url}/api/uploads`)).json()) as Array<{ md5: string; size: number }>;
  assert.deepEqual(records.map((r) => r.md5).sort(), [md5(bytes), md5('')].sort());
});

test('a chunked creation-with-upload of deferred length past MAX_SIZE: 413, nothing kept', async (t) => {
  const s = await startTestServer(t, { maxSize: 1000 });
  const body = 'x'.repeat(1500);
  const answer = await rawCreation(
    s,
    ['Upload-Defer-Length: 1', 'Content-Type: application/offset+octet-stream', 'Transfer-Encoding: chunked'],
    `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`,
  );
  assert.equal(answer.status, 413, answer.body);
  assert.match(answer.body, /^ERR_SIZE_EXCEEDED: /);
  assert.deepEqual(storeFiles(s), []);
});

test('a request declaring a length its body cannot fit is refused 413 before the length is written: no upload is left \
complete without having been announced', async (t) => {
  const { seen, handler } = hookLog();
  const s = await startTestServer(t, {}, { hooks: [handler] });
  // tus: a deferred upload at offset 0, then a PATCH declaring Upload-Length 0 with 5 bytes.
  const made = await tus('POST', s.endpoint, { 'Upload-Defer-Length': '1' });
  assert.equal(made.status, 201);
  const url = new URL(made.headers.location!, s.endpoint).toString();
  const refused = await patch(url, 0, 'hello', { 'Upload-Length': '0' });
  assert.equal(refused.status, 413, refused.body);
  assert.match(refused.body, /ERR_SIZE_EXCEEDED/);
  const head = await tus('HEAD', url);
  assert.equal(head.headers['upload-defer-length'], '1', 'the refused length is not kept');
  assert.equal(head.headers['upload-offset'], '0');
  // The draft: a creation that is not the last request, Upload-Length 0 and a 5-byte body.
  const draft = await exchange(
    'POST',
    s.endpoint,
    {
      'Upload-Draft-Interop-Version': 8,
      'Upload-Complete': '?0',
      'Upload-Length': 0,
    },
    Buffer.from('hello'),
  );
  assert.equal(draft.final.status, 413);
  assert.deepEqual(await s.store.unannounced(), [], 'no upload is complete on disk without having been announced');
  assert.equal(seen.filter((h) => h.startsWith('pre-finish') || h.startsWith('post-finish')).length, 0);
  // The same upload then takes its length with a body that fits, and finishes.
  const right = await patch(url, 0, 'hello', { 'Upload-Length': '5' });
  assert.equal(right.status, 200, right.body);
  assert.ok(seen.includes(`pre-finish ${url.split('/').pop()}`));
});
