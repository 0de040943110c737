// Structured logs: a real `tuspass start` child with LOG_FORMAT=json — every stderr
// line is JSON, each upload's events name it and a request id, no credential reaches the log; the
// text format is one readable line per event; X-Request-Id is honoured when sane, replaced when not.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { md5, patternBytes } from './helpers/files.ts';
import { startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';
import { patch, tus } from './helpers/tus.ts';
import { watchChild } from './helpers/child-crash.ts';

const BIN = path.resolve('bin/tuspass.js');
const SECRET_TOKEN = 'eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.TOPSECRETsignature';

interface Child {
  url: string;
  stdout: () => string;
  stderr: () => string;
  stop(): Promise<number | null>;
}

async function startChild(t: TestContext, env: Record<string, string>): Promise<Child> {
  const dataDir = tmpDir(t);
  const child: ChildProcess = spawn(
    process.execPath,
    [BIN, 'start', '--port', '0', '--data-dir', dataDir, '--min-free-space', '1MiB'],
    {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  t.after(() => child.kill('SIGKILL'));
  watchChild(t, child);
  let out = '';
  let err = '';
  child.stderr!.on('data', (c) => (err += c));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (c) => {
      out += c;
      const m = /tus uploads on (http:\/\/[^ ]+)\/files\//.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}${err}`)));
  });
  return {
    url,
    stdout: () => out,
    stderr: () => err,
    stop: () => {
      const exited = new Promise<number | null>((r) => child.once('exit', r));
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Each line of `text` as a JSON record; a line that is not JSON fails the test. */
function jsonLines(text: string, stream: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        assert.fail(`a ${stream} line is not JSON: ${line}`);
      }
    });
}

async function createUpload(
  url: string,
  length: number,
  headers: Record<string, string> = {},
): Promise<{ url: string; id: string; requestId: string }> {
  const res = await tus('POST', `${url}/files/`, { 'Upload-Length': String(length), ...headers });
  assert.equal(res.status, 201, res.body);
  const location = new URL(res.headers.location!, url).toString();
  return { url: location, id: location.split('/').pop()!, requestId: res.headers['x-request-id']! };
}

test('LOG_FORMAT=json: every stderr line is JSON; created, finished, terminated and refused name the upload and a \
request id; no credential logged', async (t) => {
  const s = await startChild(t, { LOG_FORMAT: 'json', LOG_LEVEL: 'info' });
  const auth = { Authorization: `Bearer ${SECRET_TOKEN}`, Cookie: `session=${SECRET_TOKEN}` };

  // Finished, with our own request id on the creation and a token in the PATCH's query.
  const bytes = patternBytes(300_000);
  const done = await createUpload(s.url, bytes.length, { ...auth, 'X-Request-Id': 'client-req-42' });
  assert.equal(done.requestId, 'client-req-42', 'a sane X-Request-Id is kept and echoed');
  const last = await patch(`${done.url}?token=${SECRET_TOKEN}`, 0, bytes, auth);
  assert.equal(last.status, 200, last.body);
  const finishRequestId = last.headers['x-request-id']!;
  assert.match(finishRequestId, /^[0-9a-f-]{36}$/, 'an id is generated when none was sent');

  // Terminated.
  const gone = await createUpload(s.url, 10, auth);
  assert.equal((await tus('DELETE', gone.url, auth)).status, 204);

  // Refused: a wrong offset (409), an unknown upload with a token in the query (404), a hostile request id.
  const refused = await createUpload(s.url, 10);
  const conflict = await patch(refused.url, 5, 'hello', { 'X-Request-Id': 'bad id\twith "quotes"' });
  assert.equal(conflict.status, 409);
  assert.notEqual(conflict.headers['x-request-id'], 'bad id\twith "quotes"', 'an insane request id is replaced');
  assert.match(conflict.headers['x-request-id']!, /^[0-9a-f-]{36}$/);
  const missing = await tus(
    'HEAD',
    `${s.url}/files/0123456789abcdef0123456789abcdef?access_token=${SECRET_TOKEN}`,
    auth,
  );
  assert.equal(missing.status, 404);

  await new Promise((r) => setTimeout(r, 300));
  assert.equal(await s.stop(), 0);
  const text = s.stderr();
  const records = jsonLines(text, 'stderr');
  // stdout too: where it listens, that it stops — a container's log (both streams) is all JSON.
  const said = jsonLines(s.stdout(), 'stdout');
  assert.deepEqual(
    said.map((r) => r.event),
    ['server.listening', 'server.completion_url', 'server.stopping', 'server.stopped'],
    s.stdout(),
  );
  assert.equal(said[0]!.url, s.url);
  assert.ok(!text.includes('TOPSECRET') && !text.includes('c2VjcmV0LXBheWxvYWQ'), `no token in the log:\n${text}`);
  for (const r of records) {
    assert.equal(typeof r.time, 'string');
    assert.equal(typeof r.level, 'string');
    assert.equal(typeof r.msg, 'string');
  }
  const of = (event: string, id: string) => records.filter((r) => r.event === event && r.upload_id === id);

  const created = of('upload.created', done.id);
  assert.equal(created.length, 1, text);
  assert.equal(created[0]!.request_id, 'client-req-42');
  assert.equal(created[0]!.size, bytes.length);
  const finished = of('upload.finished', done.id);
  assert.equal(finished.length, 1, text);
  assert.equal(finished[0]!.request_id, finishRequestId);
  assert.equal(finished[0]!.md5, md5(bytes));
  assert.equal(finished[0]!.size, bytes.length);
  assert.equal(typeof finished[0]!.duration_s, 'number');
  assert.equal(typeof finished[0]!.mb_per_s, 'number');
  const delivered = of('completion.delivered', done.id);
  assert.equal(delivered.length, 1, text);
  assert.equal(delivered[0]!.request_id, finishRequestId);

  const terminated = of('upload.terminated', gone.id);
  assert.equal(terminated.length, 1, text);
  assert.match(String(terminated[0]!.request_id), /^[0-9a-f-]{36}$/);

  const refusals = records.filter((r) => r.event === 'request.refused');
  const conflictLine = refusals.find((r) => r.upload_id === refused.id && r.status === 409);
  assert.ok(conflictLine, text);
  assert.equal(conflictLine.code, 'ERR_OFFSET_MISMATCH');
  assert.equal(conflictLine.method, 'PATCH');
  assert.equal(conflictLine.request_id, conflict.headers['x-request-id']);
  const notFound = refusals.find((r) => r.status === 404 && r.method === 'HEAD');
  assert.ok(notFound, text);
  assert.equal(notFound.path, '/files/0123456789abcdef0123456789abcdef', 'the path without its query');
  assert.equal(notFound.code, 'ERR_UPLOAD_NOT_FOUND');
  // Every line about an upload carries a request id (the event lines above, and any other).
  for (const r of records.filter((x) => x.upload_id && x.event !== 'upload.expired'))
    assert.ok(r.request_id, `no request id: ${JSON.stringify(r)}`);
});

test('LOG_FORMAT=json: a refused configuration and a directory \
that cannot be made are one JSON line each, exit 78', async (t) => {
  for (const [args, event] of [
    [['--port', 'abc', '--bogus'], 'config.invalid'],
    [['--port', '0', '--data-dir', '/proc/tuspass-json'], 'config.invalid'],
  ] as const) {
    const r = spawnSync(process.execPath, [BIN, 'start', ...args], {
      env: { ...process.env, LOG_FORMAT: 'json', DATA_DIR: tmpDir(t) },
      encoding: 'utf8',
      timeout: 30_000,
      killSignal: 'SIGKILL',
    });
    assert.equal(r.status, 78, r.stderr);
    const [record, ...more] = jsonLines(r.stderr, 'stderr');
    assert.deepEqual(more, [], r.stderr);
    assert.equal(record!.level, 'fatal');
    assert.equal(record!.event, event);
    assert.ok(Array.isArray(record!.problems) && (record!.problems as string[]).length > 0, r.stderr);
    assert.equal(r.stdout, '');
  }
});

test('LOG_FORMAT=text: one readable line per event (time, level, \
message, fields); LOG_LEVEL=warn keeps only warnings', async (t) => {
  const s = await startChild(t, { LOG_FORMAT: 'text' });
  const up = await createUpload(s.url, 5, { 'X-Request-Id': 'text-req-1' });
  assert.equal((await patch(up.url, 0, 'hello')).status, 200);
  assert.equal(await s.stop(), 0);
  const lines = s.stderr().split('\n').filter(Boolean);
  const created = lines.find((l) => l.includes(`upload ${up.id} created`));
  assert.ok(created, s.stderr());
  const line =
    String.raw`^\d\d:\d\d:\d\d\.\d{3} INFO  upload [0-9a-f]{32} created \(5 bytes\) event=upload\.created ` +
    'upload_id=[0-9a-f]{32} request_id=text-req-1 size=5$';
  assert.match(created, new RegExp(line));
  assert.ok(
    lines.some((l) =>
      /INFO  upload [0-9a-f]{32} finished: 5 bytes in .* md5 5d41402abc4b2a76b9719d911017c592 /.test(l),
    ),
    s.stderr(),
  );
  for (const l of lines) assert.doesNotMatch(l, /^\{/, 'no JSON in text format');

  const quiet = await startChild(t, { LOG_FORMAT: 'text', LOG_LEVEL: 'warn' });
  const q = await createUpload(quiet.url, 5);
  assert.equal((await patch(q.url, 0, 'hello')).status, 200);
  assert.equal(await quiet.stop(), 0);
  assert.equal(quiet.stderr(), '', 'info lines are below LOG_LEVEL=warn');
});

test('the injected log function of startTuspass gets one readable line per event, message first', async (t) => {
  const s = await startTestServer(t);
  const res = await tus('POST', s.endpoint, { 'Upload-Length': '5', 'X-Request-Id': 'inject-1' });
  const id = res.headers.location!.split('/').pop()!;
  assert.equal((await patch(new URL(res.headers.location!, s.endpoint).toString(), 0, 'hello')).status, 200);
  const created = s.logs.find((l) => l.startsWith(`upload ${id} created`));
  assert.ok(created, s.logs.join('\n'));
  assert.match(created, /event=upload\.created upload_id=[0-9a-f]{32} request_id=inject-1 size=5/);
  assert.ok(
    s.logs.some((l) => l.startsWith(`upload ${id} finished`) && l.includes('md5=5d41402abc4b2a76b9719d911017c592')),
    s.logs.join('\n'),
  );
});

test('scrubbing: tokens in free-text lines are replaced', async () => {
  const { scrub, pathForLog } = await import('../core/logger.ts');
  assert.equal(scrub('tus GET /files/x?token=abc&y=1'), 'tus GET /files/x?token=[redacted]&y=1');
  assert.equal(scrub('upstream said Authorization: Bearer abc.def.ghi'), 'upstream said Authorization: [redacted]');
  assert.equal(scrub('Bearer abc.def'), 'Bearer [redacted]');
  assert.equal(scrub('url#access_token=zzz'), 'url#access_token=[redacted]');
  assert.equal(scrub('Tuspass-Signature: t=1,v2=abcdef'), 'Tuspass-Signature: [redacted]');
  assert.equal(pathForLog('/files/abc?token=x#y'), '/files/abc');
});

test('errorText: any thrown value reads as words in a log line (library error objects, causes, codes), never [object \
Object]', async () => {
  const { errorText } = await import('../core/logger.ts');
  const { ERRORS: TUS_ERRORS } = await import('@tus/utils');
  const aborted = Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
  // @tus/server's write error: a plain object, its cause the request's abort.
  const text = errorText({ ...TUS_ERRORS.FILE_WRITE_ERROR, cause: aborted });
  assert.equal(text, '500 Something went wrong receiving the file: aborted (ECONNRESET)');
  assert.equal(errorText(TUS_ERRORS.ABORTED), `${TUS_ERRORS.ABORTED.status_code} ${TUS_ERRORS.ABORTED.body.trim()}`);
  assert.equal(errorText({ some: 'thing' }), '{"some":"thing"}');
  assert.equal(errorText('plain'), 'plain');
  assert.equal(errorText(undefined), 'undefined');
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assert.equal(errorText(cyclic), 'a Object object');
  assert.match(
    errorText(new Error('outer', { cause: aborted }), { stack: true }),
    /^Error: outer\n {4}at .*: Error: aborted\n {4}at .* \(ECONNRESET\)$/s,
  );
  for (const e of [{ ...TUS_ERRORS.FILE_WRITE_ERROR, cause: {} }, Object.create(null), [1, 2], new (class Odd {})()])
    assert.ok(!errorText(e).includes('[object'), errorText(e));
});

test('JSON lines to a closed stderr pipe: the process still exits at once, and with its pipe open none of its lines is \
lost', async () => {
  // Lines logged in one turn and then process.exit: they are written by the exit handler. With the
  // reader gone (a log collector that died) that write fails with EPIPE, and must end logging, not
  // retry for ever (as sonic-boom's flushSync does, core/logger.ts).
  const script = `
    const { createLog } = await import(${JSON.stringify(path.resolve('core/logger.ts'))});
    const log = createLog({ format: 'json', level: 'info' });
    process.stdin.once('data', () => {
      for (let i = 0; i < 20000; i++) {
        log('line ' + i, { event: 'test.line', upload_id: 'u' + i, token: 'never-logged' });
      }
      process.exit(0);
    });
    process.stdout.write('ready\\n');`;
  const run = (closeEarly: boolean) =>
    new Promise<{ code: number | null; lines: string[]; ms: number }>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      let err = '';
      let started = 0;
      child.stderr!.on('data', (c) => (err += c));
      child.stdout!.once('data', () => {
        if (closeEarly) child.stderr!.destroy();
        started = Date.now();
        child.stdin!.write('go\n');
      });
      child.once('error', reject);
      child.once('close', (code) => {
        clearTimeout(killer);
        resolve({ code, lines: err.split('\n').filter(Boolean), ms: Date.now() - started });
      });
    });
  const closed = await run(true);
  assert.equal(closed.code, 0, `exited by itself, not killed after 20 s (${closed.ms} ms)`);
  const open = await run(false);
  assert.equal(open.code, 0);
  assert.equal(open.lines.length, 20000, 'every line written before the exit');
  const last = JSON.parse(open.lines.at(-1)!) as Record<string, unknown>;
  assert.equal(last.msg, 'line 19999');
  assert.equal(last.token, '[redacted]');
});
