// POST /upload with multipart bodies that stop short: cut at every kind of place (the preamble, a
// boundary line, part headers, a file's bytes, before the closing boundary, inside a second file),
// sent whole at the HTTP level (Content-Length, or chunked with its last chunk), or left unfinished
// by a client that half-closes or resets. Each time: the process is still up, the answer (when
// there is one) is 400 ERR_MULTIPART_INVALID, and nothing of the request is kept — no file in the
// store, no record, no form posted.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { patternBytes } from './helpers/files.ts';
import { startCaptureApp, storeFiles } from './helpers/multipart.ts';
import { openRaw, readResponse, type RawConnection, type RawResponse } from './helpers/raw-http.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { mountTmpfs } from './helpers/tmpfs.ts';

const B = 'cutBodyBoundary0123456789';
const PREAMBLE = 'a preamble, which every parser skips\r\n';
const HEAD1 =
  `--${B}\r\nContent-Disposition: form-data; name="file1"; filename="one.bin"\r\nContent-Type: ` +
  'application/octet-stream\r\n\r\n';
const DATA1 = patternBytes(200_000, 1);
const HEAD2 = `\r\n--${B}\r\nContent-Disposition: form-data; name="file2"; filename="two.bin"\r\n\r\n`;
const DATA2 = patternBytes(50_000, 2);
const CLOSING = `\r\n--${B}--\r\n`;
const FULL = Buffer.concat([Buffer.from(PREAMBLE + HEAD1), DATA1, Buffer.from(HEAD2), DATA2, Buffer.from(CLOSING)]);

const data1At = PREAMBLE.length + HEAD1.length;
const head2At = data1At + DATA1.length;
const data2At = head2At + HEAD2.length;

/** Where the body stops, by what is being read there. */
const CUTS: Array<[string, number]> = [
  ['no body at all', 0],
  ['inside the preamble', PREAMBLE.length >> 1],
  ['inside the first boundary line', PREAMBLE.length + 5],
  ["inside the first part's headers", PREAMBLE.length + HEAD1.indexOf('filename')],
  ["after the first part's headers, before its first byte", data1At],
  ["inside the first file's data, early", data1At + 1000],
  ["inside the first file's data, late", data1At + 180_000],
  ['inside the delimiter after the first file', head2At + 5],
  ["after a complete first file, inside the second part's headers", head2At + HEAD2.indexOf('name=')],
  ['after a complete first file, inside the second', data2At + 25_000],
  ['after the last byte of the last file', FULL.length - CLOSING.length],
  ['right before the closing boundary', FULL.length - CLOSING.length + 2],
  ["inside the closing boundary, before its '--'", FULL.length - 4],
];

/** The cuts past the first byte of a file (the reset is sent once the server has created that file). */
const IN_A_FILE = CUTS.filter(([, at]) => (at > data1At && at < head2At) || at > data2At + 1);

type Framing = 'content-length' | 'chunked';

function requestHead(s: TestServer, framing: Framing, length: number): string {
  const framingHeader = framing === 'chunked' ? 'Transfer-Encoding: chunked' : `Content-Length: ${length}`;
  return (
    `POST /upload HTTP/1.1\r\nHost: ${new URL(s.url).host}\r\nContent-Type: multipart/form-data; ` +
    `boundary=${B}\r\n${framingHeader}\r\nConnection: close\r\n\r\n`
  );
}

/** The body in chunked coding, in chunks of 64 KiB, with (or without) its last chunk. */
function chunked(body: Buffer, last: boolean): Buffer {
  const out: Buffer[] = [];
  for (let at = 0; at < body.length; at += 65536) {
    const chunk = body.subarray(at, at + 65536);
    out.push(Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n'));
  }
  if (last) out.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(out);
}

/** Waits until a log line matching `pattern` is the `count`-th one there (the server's own record that it is done). */
async function logged(s: TestServer, pattern: RegExp, count: number): Promise<void> {
  for (let i = 0; s.logs.filter((l) => pattern.test(l)).length < count; i++) {
    assert.ok(i < 1500, `no ${count}th log line matching ${pattern}; the log:\n${s.logs.slice(-20).join('\n')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const GONE = /the client closed the connection at byte (\d+) of the body/;

/** The byte the last "client closed" line names. */
const stoppedAt = (s: TestServer) => Number(GONE.exec(s.logs.filter((l) => GONE.test(l)).at(-1)!)![1]);

async function assertNothingKept(s: TestServer, what: string): Promise<void> {
  assert.equal((await fetch(`${s.url}/healthz`)).status, 200, `${what}: the server answers`);
  assert.deepEqual(storeFiles(s.config.storeDir), [], `${what}: no file of the request in the store`);
  assert.deepEqual(await (await fetch(`${s.url}/api/uploads`)).json(), [], `${what}: no record`);
}

function assertRefused(answer: RawResponse | undefined, what: string, codes = ['ERR_MULTIPART_INVALID']): void {
  assert.ok(answer, `${what}: an answer`);
  assert.equal(answer.status, 400, `${what}: ${answer.body.toString()}`);
  const code = /ERR_[A-Z_]+/.exec(answer.body.toString())?.[0];
  assert.ok(code && codes.includes(code), `${what}: ${answer.body.toString()}`);
}

function assertLogClean(s: TestServer, gone = 0): void {
  assert.equal(s.logs.filter((l) => GONE.test(l)).length, gone, 'one line for each request the client dropped');
  const log = s.logs.join('\n');
  assert.doesNotMatch(log, /\[object Object\]/);
  assert.doesNotMatch(log, /ERR_INTERNAL/);
}

for (const framing of ['content-length', 'chunked'] as const) {
  test(`a body whole at the HTTP level (${framing}) but cut inside the form → 400 ERR_MULTIPART_INVALID, nothing kept, \
the process up`, async (t: TestContext) => {
    const s = await startTestServer(t);
    for (const [where, at] of CUTS) {
      const body = FULL.subarray(0, at);
      const c = await openRaw(s.url);
      c.socket.write(requestHead(s, framing, body.length));
      c.socket.write(framing === 'chunked' ? chunked(body, true) : body);
      const answer = await readResponse(c, 30_000);
      c.socket.destroy();
      assertRefused(answer, where);
      // The cause is in the log line, in busboy's words.
      assert.match(
        s.logs.filter((l) => l.startsWith('upload: ERR_MULTIPART_INVALID')).at(-1) ?? '',
        /Unexpected end of (form|file)|Malformed part header/,
        where,
      );
      await assertNothingKept(s, where);
    }
    assertLogClean(s);
  });
}

for (const framing of ['content-length', 'chunked'] as const) {
  test(`a client that half-closes inside the body (${framing}) → no answer or a 400, one line with the byte it stopped \
at, nothing kept`, async (t: TestContext) => {
    const s = await startTestServer(t);
    let gone = 0;
    for (const [where, at] of CUTS) {
      const body = FULL.subarray(0, at);
      const c = await openRaw(s.url);
      // Content-Length promises the whole body; chunked never sends its last chunk.
      c.socket.write(requestHead(s, framing, FULL.length));
      c.socket.write(framing === 'chunked' ? chunked(body, false) : body);
      c.socket.end();
      await c.closed;
      // node's parser refuses a body that ends before its framing says (HPE_INVALID_EOF_STATE):
      // the connection may be answered as a whole (ERR_REQUEST_MALFORMED), or not at all.
      const answer = await readResponse(c, 30_000);
      if (answer) assertRefused(answer, where, ['ERR_MULTIPART_INVALID', 'ERR_REQUEST_MALFORMED']);
      await logged(s, GONE, ++gone);
      assert.ok(stoppedAt(s) <= at, `${where}: the line names a byte the client sent`);
      await assertNothingKept(s, where);
    }
    assertLogClean(s, gone);
  });
}

test('a client that resets the connection inside a file → one line with the byte it stopped at, nothing kept, the \
process up', async (t) => {
  const s = await startTestServer(t);
  let gone = 0;
  for (const framing of ['content-length', 'chunked'] as const) {
    for (const [where, at] of IN_A_FILE) {
      const created = s.logs.filter((l) => l.includes('event=upload.created')).length;
      const c = await openRaw(s.url);
      c.socket.write(requestHead(s, framing, FULL.length));
      c.socket.write(framing === 'chunked' ? chunked(FULL.subarray(0, at), false) : FULL.subarray(0, at));
      // Reset once the server has made the file the cut falls in (the first, or the second).
      await logged(s, /event=upload\.created/, created + (at > data2At ? 2 : 1));
      c.socket.resetAndDestroy();
      await logged(s, GONE, ++gone);
      await assertNothingKept(s, `${framing}, ${where}`);
    }
  }
  assertLogClean(s, gone);
});

const O = 'oddPartsBoundary';
const filePart = (disposition: string, data = 'abc', headers = '') =>
  `--${O}\r\nContent-Disposition: ${disposition}\r\n${headers}\r\n${data}\r\n`;
const plainFile = (n = 0) => filePart(`form-data; name="f${n}"; filename="a${n}.txt"`);
const field = (name: string, value = 'v') =>
  `--${O}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
const CLOSE = `--${O}--\r\n`;
const NESTED = `--inner\r\nContent-Disposition: form-data; name="x"; filename="y.txt"\r\n\r\nzz\r\n--inner--`;

interface OddCase {
  what: string;
  body: string;
  status: 200 | 400;
  /** The refusal's code, and the cause its log line names. */
  code?: 'ERR_MULTIPART_INVALID' | 'ERR_MULTIPART_NO_FILE';
  cause?: RegExp;
  /** Fields the posted form has. */
  form?: Record<string, string>;
}

const ODD: OddCase[] = [
  {
    what: 'a file part with no name',
    body: filePart('form-data; filename="a.txt"') + CLOSE,
    status: 200,
    form: { 'file1.name': 'a.txt', 'file1.size': '3' },
  },
  {
    what: 'a field with no name, longer than a field may be',
    body: `--${O}\r\nContent-Disposition: form-data\r\n\r\n${'v'.repeat(70_000)}\r\n${plainFile()}${CLOSE}`,
    status: 200,
    form: { 'f0.name': 'a0.txt' },
  },
  {
    what: 'a part with no Content-Disposition',
    body: `--${O}\r\nContent-Type: text/plain\r\n\r\nabc\r\n${plainFile()}${CLOSE}`,
    status: 200,
    form: { 'f0.name': 'a0.txt' },
  },
  {
    what: 'Content-Disposition: attachment',
    body: filePart('attachment; name="f"; filename="a.txt"') + CLOSE,
    status: 400,
    code: 'ERR_MULTIPART_NO_FILE',
  },
  {
    what: 'a part header line without a colon',
    body: filePart('form-data; name="f"; filename="a.txt"', 'abc', 'NoColonHere\r\n') + CLOSE,
    status: 400,
    code: 'ERR_MULTIPART_INVALID',
    cause: /Malformed part header/,
  },
  {
    what: 'a folded part header',
    body: `--${O}\r\nContent-Disposition: form-data; name="f";\r\n filename="a.txt"\r\n\r\nabc\r\n${CLOSE}`,
    status: 200,
    form: { 'f.name': 'a.txt' },
  },
  {
    what: 'bare LF line ends',
    body: `--${O}\nContent-Disposition: form-data; name="f"; filename="a.txt"\n\nabc\n--${O}--\n`,
    status: 400,
    code: 'ERR_MULTIPART_INVALID',
    cause: /Unexpected end of form/,
  },
  {
    what: 'a NUL in a part header',
    body: filePart('form-data; name="f\u0000"; filename="a.txt"') + CLOSE,
    status: 400,
    code: 'ERR_MULTIPART_INVALID',
    cause: /Malformed part header/,
  },
  {
    what: "filename*=UTF-8''…",
    body: filePart(`form-data; name="f"; filename*=UTF-8''%E2%82%AC%20rates.txt`) + CLOSE,
    status: 200,
    form: { 'f.name': '€ rates.txt' },
  },
  {
    what: 'an unterminated quoted filename',
    body: filePart('form-data; name="f"; filename="a.txt') + CLOSE,
    status: 400,
    code: 'ERR_MULTIPART_NO_FILE',
  },
  {
    what: 'no blank line between the part headers and the data',
    body: `--${O}\r\nContent-Disposition: form-data; name="f"; filename="a.txt"\r\nabc\r\n${CLOSE}`,
    status: 400,
    code: 'ERR_MULTIPART_INVALID',
    cause: /Malformed part header/,
  },
  {
    what: 'a part header line of 100 KB',
    body: filePart('form-data; name="f"; filename="a.txt"', 'abc', `X-Pad: ${'p'.repeat(100_000)}\r\n`) + CLOSE,
    status: 400,
    code: 'ERR_MULTIPART_INVALID',
    cause: /Malformed part header/,
  },
  {
    what: '100 header lines in one part',
    body:
      filePart(
        'form-data; name="f"; filename="a.txt"',
        'abc',
        Array.from({ length: 100 }, (_, i) => `X-H${i}: v\r\n`).join(''),
      ) + CLOSE,
    status: 200,
    form: { 'f.size': '3' },
  },
  {
    what: 'a nested multipart/mixed part with a filename',
    body:
      filePart('form-data; name="f"; filename="n.txt"', NESTED, 'Content-Type: multipart/mixed; boundary=inner\r\n') +
      CLOSE,
    status: 200,
    form: { 'f.name': 'n.txt', 'f.content_type': 'multipart/mixed', 'f.size': String(NESTED.length) },
  },
  {
    what: 'a nested multipart field beside a file',
    body:
      filePart('form-data; name="g"', NESTED, 'Content-Type: multipart/mixed; boundary=inner\r\n') +
      plainFile() +
      CLOSE,
    status: 200,
    form: { 'f0.name': 'a0.txt' },
  },
  {
    what: 'a nested part whose boundary begins with the outer one',
    body:
      filePart(
        'form-data; name="f"; filename="n.txt"',
        NESTED.replaceAll('inner', `${O}x`),
        `Content-Type: multipart/mixed; boundary=${O}x\r\n`,
      ) + CLOSE,
    status: 400,
    code: 'ERR_MULTIPART_INVALID',
    cause: /Malformed part header/,
  },
  {
    what: '64 files',
    body: Array.from({ length: 64 }, (_, i) => plainFile(i)).join('') + CLOSE,
    status: 200,
    form: { 'f63.name': 'a63.txt' },
  },
  {
    what: '65 files',
    body: Array.from({ length: 65 }, (_, i) => plainFile(i)).join('') + CLOSE,
    status: 400,
    code: 'ERR_MULTIPART_INVALID',
    cause: /too many files/,
  },
  {
    what: '257 fields',
    body: Array.from({ length: 257 }, (_, i) => field(`k${i}`)).join('') + plainFile() + CLOSE,
    status: 400,
    code: 'ERR_MULTIPART_INVALID',
    cause: /too many fields/,
  },
  {
    what: '321 parts',
    body: plainFile() + `--${O}\r\nX-Not-Form-Data: 1\r\n\r\nv\r\n`.repeat(320) + CLOSE,
    status: 400,
    code: 'ERR_MULTIPART_INVALID',
    cause: /too many parts/,
  },
  {
    what: 'bytes after the closing boundary',
    body: `${plainFile()}${CLOSE}junk\r\n--${O}\r\n`,
    status: 200,
    form: { 'f0.name': 'a0.txt' },
  },
];

test('odd part headers, nesting, many parts, nameless parts, huge header lines: well-framed 200 or 400, a refused \
request keeps nothing, the process up', async (t) => {
  const app = await startCaptureApp(t);
  const s = await startTestServer(t, { completionUrl: app.url });
  for (const c of ODD) {
    const before = storeFiles(s.config.storeDir).sort();
    const forms = app.forms.length;
    const conn = await openRaw(s.url);
    conn.socket.write(
      `POST /upload HTTP/1.1\r\nHost: ${new URL(s.url).host}\r\nContent-Type: multipart/form-data; ` +
        `boundary=${O}\r\nContent-Length: ${Buffer.byteLength(c.body)}\r\nConnection: close\r\n\r\n`,
    );
    conn.socket.write(c.body);
    const answer = await readResponse(conn, 30_000);
    conn.socket.destroy();
    assert.ok(answer, c.what);
    assert.equal(answer.status, c.status, `${c.what}: ${answer.body.toString()}`);
    assert.equal((await fetch(`${s.url}/healthz`)).status, 200, `${c.what}: the server answers`);
    if (c.status === 400) {
      assert.equal(JSON.parse(answer.body.toString()).error.code, c.code, c.what);
      if (c.cause) assert.match(s.logs.filter((l) => l.startsWith(`upload: ${c.code}`)).at(-1) ?? '', c.cause, c.what);
      assert.deepEqual(storeFiles(s.config.storeDir).sort(), before, `${c.what}: nothing kept`);
      assert.equal(app.forms.length, forms, `${c.what}: no form posted`);
      continue;
    }
    assert.equal(app.forms.length, forms + 1, c.what);
    const params = app.forms.at(-1)!.params;
    for (const [key, value] of Object.entries(c.form ?? {})) assert.equal(params.get(key), value, `${c.what}: ${key}`);
    assert.ok(![...params.keys()].some((k) => k.startsWith('undefined')), `${c.what}: no field named "undefined"`);
  }
  assertLogClean(s);
});

const MiB = 2 ** 20;

/** The next time the connection drains, receives or closes. */
function socketEvent(c: RawConnection): Promise<void> {
  const events = ['drain', 'data', 'close'] as const;
  return new Promise((resolve) => {
    const done = () => {
      for (const e of events) c.socket.off(e, done);
      resolve();
    };
    for (const e of events) c.socket.on(e, done);
  });
}

test('a chunked multipart body is refused 507 as it streams, once it would go into MIN_FREE_SPACE; nothing of the \
request is kept', async (t) => {
  // 96 MiB of which 80 are the reserve: about 16 MiB may be written.
  const dir = mountTmpfs(t, 96 * MiB);
  if (!dir) return;
  const reserve = 80 * MiB;
  const s = await startTestServer(t, { dataDir: path.join(dir, 'data'), minFreeSpace: reserve });
  const c = await openRaw(s.url);
  c.socket.write(requestHead(s, 'chunked', 0));
  // A first file that fits, then a second that does not; the rest of the body is sent only as
  // long as no answer has come, up to far more than the disk holds.
  const head = (n: number) =>
    Buffer.from(
      `${n > 1 ? '\r\n' : ''}--${B}\r\nContent-Disposition: form-data; name="file${n}"; filename="${n}.bin"\r\n\r\n`,
    );
  const block = patternBytes(MiB, 9);
  const pieces = [head(1), ...Array<Buffer>(4).fill(block), head(2), ...Array<Buffer>(200).fill(block)];
  const answered = () => c.received().length > 0 || c.isClosed();
  let sent = 0;
  for (const piece of pieces) {
    if (answered()) break;
    sent += piece.length;
    if (!c.socket.write(chunked(piece, false))) await socketEvent(c);
  }
  while (!answered()) await socketEvent(c);
  // The server stops reading the body and closes: the kernel resets a connection closed with
  // unread bytes, and a client still writing may lose the answer to that reset (a refusal on the
  // way cannot avoid unread bytes). The server's log line is its answer's record.
  const answer = c.received().length > 0 ? await readResponse(c, 30_000) : undefined;
  c.socket.destroy();
  if (answer) {
    assert.equal(answer.status, 507, answer.body.toString());
    assert.equal(JSON.parse(answer.body.toString()).error.code, 'ERR_STORAGE_FULL');
  }
  await logged(s, /^refused POST \/upload: 507 ERR_STORAGE_FULL .*level=warn/, 1);
  assert.deepEqual(storeFiles(s.config.storeDir), [], 'nothing kept, the first file neither');
  assert.deepEqual(await (await fetch(`${s.url}/api/uploads`)).json(), []);
  const free = fs.statfsSync(dir);
  assert.ok(free.bavail * free.bsize >= reserve, 'the reserve is free again');
  // Refused before the reserve was crossed: a body written until the check, or until the disk
  // said no, would have met ENOSPC at 96 MiB.
  assert.ok(
    s.logs.every((l) => !/space: the store's disk is full/.test(l)),
    'no write met a full disk',
  );
  assert.ok(sent < pieces.reduce((n, p) => n + p.length, 0), 'the client was still sending');

  // With a Content-Length past the room, the answer comes before a byte of the body is sent.
  const early = await openRaw(s.url);
  early.socket.write(requestHead(s, 'content-length', 50 * MiB));
  const refused = await readResponse(early, 30_000);
  early.socket.destroy();
  assert.equal(refused?.status, 507, refused?.body.toString());
  assert.deepEqual(storeFiles(s.config.storeDir), []);
});
