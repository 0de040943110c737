// What the creation engine's adapter (server/upload/tus/engine/) relies on in @tus/server,
// @tus/file-store and srvx, each checked against the installed versions through real requests on a
// real @tus/server (a recording datastore and locker, no tuspass code in the way), then through
// tuspass itself. An upgrade that changes one of them fails here, named, before it fails somewhere
// far from the cause.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import ts from 'typescript';
import { FileStore } from '@tus/file-store';
import { MemoryLocker, Server, type ServerOptions } from '@tus/server';
import { DataStore, EVENTS, Upload, type Lock, type Locker } from '@tus/utils';
import { DIRECTORY_STEP } from '../server/backends/store/file-store.ts';
import { ENGINE_VERSIONS, EngineFileStore } from '../server/upload/tus/engine/index.ts';
import { nodeRequestOf } from '../server/upload/tus/engine/web-request.ts';
import { startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';
import { tus } from './helpers/tus.ts';

const ROOT = path.resolve(import.meta.dirname, '..');

/** What one request did inside @tus/server, in order. */
interface Trace {
  calls: string[];
  /** The node request the test server received, and the web request the callbacks got. */
  node?: http.IncomingMessage;
  webToNode?: http.IncomingMessage;
  /** Upload-Concat as namingFunction's web request saw it. */
  concatSeen?: string | null;
  /** The Upload given to onUploadCreate and the one given to store.create. */
  uploadAtCreateHook?: Upload;
  uploadAtStore?: Upload;
  /** writeHead's arguments for the answer. */
  writeHead?: unknown[];
  /** What tus.handle() rejected with, if anything. */
  rejected?: unknown;
  /** What POST_CREATE was emitted with. */
  postCreate?: { node: http.IncomingMessage; upload: Upload; url: string };
  /** Settled when tus.handle() has: 'resolved' or 'rejected'. */
  handled?: Promise<'resolved' | 'rejected'>;
  body?: Buffer;
}

class RecordingStore extends DataStore {
  expirationMs = 0;
  constructor(private readonly trace: () => Trace) {
    super();
    this.extensions = ['creation', 'creation-with-upload', 'creation-defer-length', 'expiration'];
  }
  override getExpiration(): number {
    return this.expirationMs;
  }
  override async create(upload: Upload): Promise<Upload> {
    this.trace().calls.push(`store.create ${upload.id}`);
    this.trace().uploadAtStore = upload;
    return upload;
  }
  override async write(readable: Readable, id: string, offset: number): Promise<number> {
    this.trace().calls.push(`store.write ${id} ${offset}`);
    const chunks: Buffer[] = [];
    for await (const chunk of readable) chunks.push(chunk as Buffer);
    this.trace().body = Buffer.concat(chunks);
    return offset + this.trace().body!.length;
  }
  override async getUpload(id: string): Promise<Upload> {
    this.trace().calls.push(`store.getUpload ${id}`);
    return new Upload({ id, offset: this.trace().body?.length ?? 0, size: 100 });
  }
}

class RecordingLocker implements Locker {
  private readonly inner = new MemoryLocker();
  constructor(private readonly trace: () => Trace) {}
  newLock(id: string): Lock {
    const lock = this.inner.newLock(id);
    return {
      lock: async (signal, cancel) => {
        this.trace().calls.push(`lock ${id}`);
        await lock.lock(signal, cancel);
      },
      unlock: async () => {
        this.trace().calls.push(`unlock ${id}`);
        await lock.unlock();
      },
    };
  }
}

/**
 * A bare @tus/server on a node server, with every callback the adapter uses recording into the
 * request's trace; `before` runs on the node request before it is handed over (as the adapter's
 * route handler does).
 */
async function bareEngine(
  t: TestContext,
  options: Partial<ServerOptions> = {},
  before?: (req: http.IncomingMessage) => void,
) {
  let trace: Trace = { calls: [] };
  const current = () => trace;
  const store = new RecordingStore(current);
  const server = new Server({
    path: '/files',
    datastore: store,
    locker: new RecordingLocker(current),
    namingFunction(req) {
      trace.calls.push('namingFunction');
      trace.webToNode = nodeRequestOf(req);
      trace.concatSeen = req.headers.get('upload-concat');
      return 'u1';
    },
    onUploadCreate(_req, upload) {
      trace.calls.push('onUploadCreate');
      trace.uploadAtCreateHook = upload;
      return Promise.resolve({});
    },
    onUploadFinish() {
      trace.calls.push('onUploadFinish');
      return Promise.resolve({});
    },
    onResponseError(_req, err) {
      trace.calls.push('onResponseError');
      throw err;
    },
    ...options,
  });
  server.on(EVENTS.POST_CREATE, (req: Request, upload: Upload, url: string) => {
    trace.calls.push('POST_CREATE');
    trace.postCreate = { node: nodeRequestOf(req), upload, url };
  });
  const node = http.createServer((req, res) => {
    trace.node = req;
    before?.(req);
    const writeHead = res.writeHead;
    res.writeHead = function (this: http.ServerResponse, ...args: unknown[]) {
      trace.writeHead = args;
      return (writeHead as (...a: unknown[]) => http.ServerResponse).apply(this, args);
    } as typeof res.writeHead;
    const mine = trace;
    mine.handled = server.handle(req, res).then(
      () => 'resolved' as const,
      (e: unknown) => {
        mine.rejected = e;
        if (!res.headersSent) res.writeHead(599).end();
        return 'rejected' as const;
      },
    );
  });
  await new Promise<void>((resolve) => node.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => node.close(resolve)));
  const url = `http://127.0.0.1:${(node.address() as AddressInfo).port}/files`;
  const send = async (headers: Record<string, string>, body?: Buffer) => {
    trace = { calls: [] };
    const init = {
      method: 'POST',
      headers: { 'Tus-Resumable': '1.0.0', ...headers },
      body: body && new Uint8Array(body),
    };
    const res = await fetch(url, init);
    return { status: res.status, headers: res.headers, text: await res.text(), trace };
  };
  /**
   * Sends a creation-with-upload whose connection goes after `sent` of `length` bytes; the trace once handle() settled.
   */
  const cut = async (length: number, sent: number): Promise<Trace> => {
    trace = { calls: [] };
    const socket = net.connect(Number(new URL(url).port), '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write(
      `POST /files HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\nUpload-Length: ${length}\r\nContent-Type: \
application/offset+octet-stream\r\nContent-Length: ${length}\r\n\r\n`,
    );
    socket.write(Buffer.alloc(sent, 0x61));
    // The body has reached the store before the connection goes.
    while (!trace.calls.some((c) => c.startsWith('store.write'))) await new Promise((r) => setTimeout(r, 5));
    socket.destroy();
    while (!trace.handled) await new Promise((r) => setTimeout(r, 5));
    await trace.handled;
    return trace;
  };
  return { send, cut, store };
}

test('PostHandler: namingFunction, then onUploadCreate, then the lock and store.create, POST_CREATE, then the \
unlock', async (t) => {
  const engine = await bareEngine(t);
  const { status, trace } = await engine.send({ 'Upload-Length': '100' });
  assert.equal(status, 201);
  assert.deepEqual(trace.calls, [
    'namingFunction',
    'onUploadCreate',
    'lock u1',
    'store.create u1',
    'POST_CREATE',
    'unlock u1',
  ]);
  // POST_CREATE(req, upload, url): the adapter keeps the upload and its Location by request.
  assert.equal(trace.postCreate?.node, trace.node);
  assert.equal(trace.postCreate?.upload, trace.uploadAtStore);
  assert.match(trace.postCreate?.url ?? '', /\/files\/u1$/);
});

test('PostHandler: onUploadCreate receives the very Upload that store.create receives next (the adapter finds the \
creation by it)', async (t) => {
  const engine = await bareEngine(t);
  const { trace } = await engine.send({ 'Upload-Length': '100' });
  assert.ok(trace.uploadAtStore);
  assert.equal(trace.uploadAtCreateHook, trace.uploadAtStore);
});

test('PostHandler: a creation-with-upload writes its body with store.write(body, id, 0) under the lock, after \
store.create; its completion goes to onUploadFinish after the unlock', async (t) => {
  const engine = await bareEngine(t);
  const body = Buffer.from('x'.repeat(100));
  const { status, trace } = await engine.send(
    { 'Upload-Length': '100', 'Content-Type': 'application/offset+octet-stream' },
    body,
  );
  assert.equal(status, 201);
  assert.deepEqual(trace.calls, [
    'namingFunction',
    'onUploadCreate',
    'lock u1',
    'store.create u1',
    'POST_CREATE',
    'store.write u1 0',
    'unlock u1',
    'onUploadFinish',
  ]);
  assert.deepEqual(trace.body, body);
});

test('PostHandler: store.getUpload is called after the write only when the store has the expiration extension and a \
period (the adapter answers it from memory)', async (t) => {
  const engine = await bareEngine(t);
  const withBody = { 'Upload-Length': '100', 'Content-Type': 'application/offset+octet-stream' };
  let { trace } = await engine.send(withBody, Buffer.from('abc'));
  assert.ok(!trace.calls.some((c) => c.startsWith('store.getUpload')), 'no read-back without an expiry');
  engine.store.expirationMs = 60_000;
  ({ trace } = await engine.send(withBody, Buffer.from('abc')));
  assert.deepEqual(trace.calls.slice(-2), ['unlock u1', 'store.getUpload u1']);
});

test('PostHandler: a creation-with-upload whose connection goes mid-body ends its body there and resolves handle() as \
if answered (the adapter notes the request as dropped and removes the upload)', {
  timeout: 30_000,
}, async (t) => {
  const engine = await bareEngine(t);
  const trace = await engine.cut(100_000, 1000);
  assert.equal(await trace.handled, 'resolved');
  assert.ok(trace.calls.includes('store.write u1 0'), trace.calls.join(', '));
  assert.ok(trace.body!.length < 100_000, 'the store saw only the bytes that came');
  assert.ok(!trace.calls.includes('onUploadFinish'));
});

test('PostHandler: namingFunction gets the parsed Upload-Metadata; maxSize(req, id) and generateUrl(req, { path, id \
}) get the web request, after it', async (t) => {
  const seen: unknown[] = [];
  const engine = await bareEngine(t, {
    namingFunction(_req, metadata) {
      seen.push(['namingFunction', metadata]);
      return 'u1';
    },
    maxSize(req, id) {
      seen.push(['maxSize', nodeRequestOf(req).method, id]);
      return 0;
    },
    generateUrl(req, { path, id }) {
      seen.push(['generateUrl', nodeRequestOf(req).method, path, id]);
      return `http://example.test${path}/${id}`;
    },
  });
  const metadata = `filename ${Buffer.from('a.txt').toString('base64')},empty`;
  const { headers } = await engine.send({ 'Upload-Length': '1', 'Upload-Metadata': metadata });
  assert.deepEqual(seen, [
    ['namingFunction', { filename: 'a.txt', empty: null }],
    ['maxSize', 'POST', 'u1'],
    ['generateUrl', 'POST', '/files', 'u1'],
  ]);
  assert.equal(headers.get('location'), 'http://example.test/files/u1');
});

test('PostHandler: what onUploadFinish returns is applied to the answer — its status too, which the adapter drops \
below 300 so a finishing POST stays 201', async (t) => {
  const engine = await bareEngine(t, {
    onUploadFinish: () =>
      Promise.resolve({ status_code: 200, body: 'from the hook\n', headers: { 'X-From-Hook': 'yes' } }),
  });
  const { status, headers, text } = await engine.send({ 'Upload-Length': '0' });
  assert.equal(status, 200, 'a status the callback returns replaces 201');
  assert.equal(headers.get('location'), null, 'and with it the Location');
  assert.equal(text, 'from the hook\n');
  assert.equal(headers.get('x-from-hook'), 'yes');
});

test('srvx: the web Request given to the callbacks carries the node request handled (runtime.node.req)', async (t) => {
  const engine = await bareEngine(t);
  const { trace } = await engine.send({ 'Upload-Length': '1' });
  assert.ok(trace.node);
  assert.equal(trace.webToNode, trace.node);
});

test("srvx: the web request's headers are built from rawHeaders when the handler runs, so a header taken out of both \
is not seen; @tus/server still refuses Upload-Concat", async (t) => {
  // Left in: @tus/server refuses any Upload-Concat (its check names an extension "concatentation").
  const plain = await bareEngine(t);
  const refused = await plain.send({ 'Upload-Length': '1', 'Upload-Concat': 'partial' });
  assert.notEqual(refused.status, 201, 'a partial creation reaching @tus/server with its header is refused');
  assert.ok(!refused.trace.calls.includes('namingFunction'));
  // Taken out of req.headers alone: still seen — the web request's headers come from rawHeaders.
  const headersOnly = await bareEngine(t, {}, (req) => {
    delete req.headers['upload-concat'];
  });
  assert.notEqual((await headersOnly.send({ 'Upload-Length': '1', 'Upload-Concat': 'partial' })).status, 201);
  // Taken out the way the adapter does: created, and namingFunction never sees it.
  const stripped = await bareEngine(t, {}, (req) => {
    delete req.headers['upload-concat'];
    const raw = req.rawHeaders;
    for (let i = raw.length - 2; i >= 0; i -= 2) if (raw[i]!.toLowerCase() === 'upload-concat') raw.splice(i, 2);
  });
  const made = await stripped.send({ 'Upload-Length': '1', 'Upload-Concat': 'partial' });
  assert.equal(made.status, 201);
  assert.equal(made.trace.concatSeen, null);
});

test('srvx: the answer is written with writeHead(status, statusText, [name, value, …]) (the adapter rewrites \
Upload-Expires in that array)', async (t) => {
  const engine = await bareEngine(t);
  const { trace } = await engine.send({ 'Upload-Length': '1' });
  const args = trace.writeHead!;
  assert.equal(args[0], 201);
  const raw = args.find(Array.isArray) as string[] | undefined;
  assert.ok(raw, `an array of raw headers among writeHead's arguments: ${JSON.stringify(args)}`);
  const names = raw.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
  assert.ok(names.includes('location'), `Location in the raw headers: ${names.join(', ')}`);
});

test('onResponseError: an error thrown from a callback reaches it, and rethrown, rejects handle() with that same \
error (the adapter answers it)', async (t) => {
  const failure = Object.assign(new Error('refused by the test'), { status_code: 418, body: 'no\n' });
  const engine = await bareEngine(t, {
    namingFunction() {
      throw failure;
    },
  });
  const { status, trace } = await engine.send({ 'Upload-Length': '1' });
  assert.equal(status, 599, 'nothing answered by @tus/server itself');
  assert.deepEqual(trace.calls, ['onResponseError']);
  assert.equal(trace.rejected, failure);
});

test('FileStore: its constructor calls the private directory step the adapter replaces, as a method of the \
instance', (t) => {
  const proto = FileStore.prototype as unknown as Record<string, unknown>;
  assert.equal(typeof proto[DIRECTORY_STEP], 'function', `FileStore.prototype.${DIRECTORY_STEP}`);
  const seen: string[] = [];
  class Spy extends FileStore {}
  Object.defineProperty(Spy.prototype, DIRECTORY_STEP, {
    value(this: { directory: string }) {
      seen.push(this.directory);
    },
  });
  const dir = path.join(tmpDir(t), 'never-made');
  new Spy({ directory: dir });
  assert.deepEqual(seen, [dir], 'called once, with the directory set');
  assert.equal(fs.existsSync(dir), false, 'the constructor makes the directory through that step only');
});

test("FileStore: with the adapter's base, a directory that cannot be made fails in the constructor, not later in a \
callback", (t) => {
  const file = path.join(tmpDir(t), 'a-file');
  fs.writeFileSync(file, '');
  class Store extends EngineFileStore {}
  assert.throws(() => new Store({ directory: path.join(file, 'store') }), /ENOTDIR|EEXIST/);
  const made = path.join(tmpDir(t), 'made');
  new Store({ directory: made });
  assert.ok(fs.statSync(made).isDirectory(), 'made before the constructor returns');
});

test('versions: package.json asks for the ranges the adapter was checked against, and the installed packages are in \
them', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
  };
  for (const [name, range] of Object.entries(ENGINE_VERSIONS)) {
    assert.equal(pkg.dependencies[name], range, `${name} in package.json`);
    const installed = (
      JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }
    ).version;
    assert.ok(inCaretRange(installed, range), `${name} ${installed} within ${range}`);
  }
});

test('through tuspass: a partial creation, a creation-with-upload and an OPTIONS pass through the adapter as the \
protocol asks', async (t) => {
  const s = await startTestServer(t, { expireAfterMs: 3_600_000 });
  const partial = await tus('POST', s.endpoint, { 'Upload-Length': '3', 'Upload-Concat': 'partial' });
  assert.equal(partial.status, 201);
  assert.equal(
    (await tus('HEAD', partial.headers.location!)).headers['upload-concat'],
    'partial',
    'the role reached the store',
  );
  const withBody = await tus(
    'POST',
    s.endpoint,
    { 'Upload-Length': '10', 'Content-Type': 'application/offset+octet-stream' },
    Buffer.from('abcde'),
  );
  assert.equal(withBody.status, 201);
  assert.equal(withBody.headers['upload-offset'], '5');
  assert.ok(withBody.headers['upload-expires'], 'Upload-Expires for an unfinished upload with an expiry');
  assert.equal((await tus('HEAD', withBody.headers.location!)).headers['upload-offset'], '5');
  const options = await tus('OPTIONS', s.endpoint);
  assert.match(
    options.headers['tus-extension']!,
    /\bconcatenation\b/,
    "OPTIONS advertises the store's extensions, concatenation included",
  );
});

/**
 * Where @tus/server and @tus/file-store may be imported: the adapter's folder, and the store's base
 * class (FileStore with its directory step replaced), which sits with the store it is the base of
 * (backends/ may not import upload/) and is checked by the tests above.
 */
const ADAPTER = [
  path.join('server', 'upload', 'tus', 'engine') + path.sep,
  path.join('server', 'backends', 'store', 'file-store.ts'),
];

test('no side channel: only the adapter imports @tus/server and @tus/file-store in the server', () => {
  const outside: string[] = [];
  const visit = (dir: string) => {
    for (const entry of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const rel = path.join(dir, entry.name);
      if (entry.isDirectory()) visit(rel);
      else if (entry.name.endsWith('.ts') && !ADAPTER.some((place) => rel.startsWith(place))) {
        const { importedFiles } = ts.preProcessFile(fs.readFileSync(path.join(ROOT, rel), 'utf8'), true, true);
        for (const { fileName } of importedFiles)
          if (/^@tus\/(server|file-store)(\/|$)/.test(fileName)) outside.push(`${rel} -> ${fileName}`);
      }
    }
  };
  visit('server');
  assert.deepEqual(
    outside,
    [],
    'the rest of the server reaches @tus/server and @tus/file-store through server/upload/tus/engine/',
  );
});

/** Whether `version` is in a caret range (`^x.y.z`): same major (same minor below 1.0), not lower. */
function inCaretRange(version: string, range: string): boolean {
  const want = /^\^(\d+)\.(\d+)\.(\d+)$/.exec(range);
  const have = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  assert.ok(want && have, `${range} / ${version}`);
  const [w, h] = [want.slice(1).map(Number), have.slice(1).map(Number)];
  if (h[0] !== w[0] || (w[0] === 0 && h[1] !== w[1])) return false;
  for (let i = 0; i < 3; i++) if (h[i] !== w[i]) return h[i]! > w[i]!;
  return true;
}
