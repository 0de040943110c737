// Graceful shutdown of a real `tuspass start` process (SHUTDOWN_TIMEOUT), a second signal, and start-up
// errors that name the setting to change when a port is busy.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import { md5, patternBytes } from './helpers/files.ts';
import { tmpDir } from './helpers/tmp.ts';
import { create, patch, tus } from './helpers/tus.ts';
import { watchChild } from './helpers/child-crash.ts';

const BIN = path.resolve('bin/tuspass.js');
const SECRET = 'test-secret-0123456789';

interface Child {
  proc: ChildProcessWithoutNullStreams;
  url: string;
  output: () => string;
  exited: Promise<{ code: number | null; at: number }>;
}

async function startChild(t: TestContext, dataDir: string, env: Record<string, string> = {}): Promise<Child> {
  const proc = spawn(process.execPath, [BIN, 'start', '--port', '0'], {
    env: {
      ...process.env,
      DATA_DIR: dataDir,
      COMPLETION_SECRET: SECRET,
      MIN_FREE_SPACE: '0',
      LOG_FORMAT: 'text',
      ...env,
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  t.after(() => proc.kill('SIGKILL'));
  watchChild(t, proc);
  let out = '';
  proc.stdout.on('data', (c) => (out += c));
  proc.stderr.on('data', (c) => (out += c));
  const exited = new Promise<{ code: number | null; at: number }>((r) =>
    proc.once('exit', (code) => r({ code, at: performance.now() })),
  );
  const url = await new Promise<string>((resolve, reject) => {
    proc.stdout.on('data', () => {
      const m = /tus uploads on (http:\/\/[^ ]+)\/files\//.exec(out);
      if (m) resolve(m[1]!);
    });
    void exited.then(({ code }) => reject(new Error(`exited ${code}: ${out}`)));
  });
  return { proc, url, output: () => out, exited };
}

interface SlowPatch {
  /** Bytes written to the socket so far. */
  sent: () => number;
  answer: Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string } | { error: string }>;
  stop(): void;
}

/** A PATCH of `body` from `offset`, sent `chunk` bytes every `everyMs` ms: a slow client. */
function slowPatch(url: string, offset: number, body: Buffer, chunk: number, everyMs: number): SlowPatch {
  let sent = 0;
  let timer: NodeJS.Timeout | undefined;
  const req = http.request(url, {
    method: 'PATCH',
    headers: {
      'Tus-Resumable': '1.0.0',
      'Upload-Offset': String(offset),
      'Content-Type': 'application/offset+octet-stream',
      'Content-Length': String(body.length),
    },
  });
  const answer = new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string } | { error: string }>(
    (resolve) => {
      req.on('response', (res) => {
        clearInterval(timer);
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
        res.on('error', (e) => resolve({ error: e.message }));
      });
      req.on('error', (e) => {
        clearInterval(timer);
        resolve({ error: e.message });
      });
    },
  );
  timer = setInterval(() => {
    if (sent >= body.length) return clearInterval(timer);
    const piece = body.subarray(sent, sent + chunk);
    sent += piece.length;
    req.write(piece);
    if (sent >= body.length) req.end();
  }, everyMs);
  return {
    sent: () => sent,
    answer,
    stop: () => {
      clearInterval(timer);
      req.destroy();
    },
  };
}

const until = async (what: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
};

test('SIGTERM during a slow PATCH: exit 0 within SHUTDOWN_TIMEOUT + 1 s, the bytes kept, resumed after a restart to \
the right md5', async (t) => {
  const dataDir = tmpDir(t);
  const first = await startChild(t, dataDir, { SHUTDOWN_TIMEOUT: '2s' });
  const bytes = patternBytes(2 * 1024 * 1024, 7);
  const upload = await create(`${first.url}/files/`, bytes.length, { filename: 'slow.bin' });
  // 16 KiB every 40 ms: some 400 KiB/s, far from done when the timeout passes.
  const slow = slowPatch(upload, 0, bytes, 16 * 1024, 40);
  await until(() => slow.sent() >= 256 * 1024);
  const signalled = performance.now();
  first.proc.kill('SIGTERM');
  const answer = await slow.answer;
  const { code, at } = await first.exited;
  assert.equal(code, 0, first.output());
  const took = at - signalled;
  assert.ok(took <= 2000 + 1000, `exited ${Math.round(took)} ms after SIGTERM`);
  assert.ok(took >= 1900, `waited for the PATCH in flight (${Math.round(took)} ms)`);
  // The cut PATCH was answered: 503 with the offset kept (or, at worst, the connection closed).
  assert.ok('status' in answer, `answered: ${JSON.stringify(answer)}`);
  assert.equal(answer.status, 503);
  assert.match(answer.body, /^ERR_SHUTTING_DOWN/);
  const kept = Number(answer.headers['upload-offset']);
  assert.ok(kept > 0 && kept < bytes.length, `kept ${kept}`);
  assert.match(first.output(), /SIGTERM, stopping/);
  assert.match(first.output(), /1 upload\(s\) cut, the bytes received kept/);

  // Restart on the same data: the offset is where the cut left it, and the rest completes to the file's md5.
  const second = await startChild(t, dataDir);
  const moved = upload.replace(first.url, second.url);
  const head = await tus('HEAD', moved);
  assert.equal(head.status, 200);
  assert.equal(Number(head.headers['upload-offset']), kept);
  const last = await patch(moved, kept, bytes.subarray(kept));
  assert.equal(last.status, 200, last.body);
  assert.equal(JSON.parse(last.body).md5, md5(bytes));
  second.proc.kill('SIGTERM');
  assert.equal((await second.exited).code, 0);
});

test('a PATCH that ends within SHUTDOWN_TIMEOUT is finished and answered, then the process exits 0', async (t) => {
  const dataDir = tmpDir(t);
  const child = await startChild(t, dataDir, { SHUTDOWN_TIMEOUT: '10s' });
  const bytes = patternBytes(300 * 1024, 3);
  const upload = await create(`${child.url}/files/`, bytes.length);
  // About 1.5 s in all.
  const slow = slowPatch(upload, 0, bytes, 16 * 1024, 80);
  await until(() => slow.sent() >= 32 * 1024);
  const signalled = performance.now();
  child.proc.kill('SIGTERM');
  const answer = await slow.answer;
  assert.ok('status' in answer, JSON.stringify(answer));
  assert.equal(answer.status, 200, answer.body);
  assert.equal(JSON.parse(answer.body).md5, md5(bytes));
  const { code, at } = await child.exited;
  assert.equal(code, 0);
  assert.ok(
    at - signalled < 5000,
    `exited once the PATCH was done (${Math.round(at - signalled)} ms), not after the whole timeout`,
  );
});

test('nothing in flight: SIGINT stops at once with exit 0; a \
second SIGTERM during a long grace exits at once', async (t) => {
  const idle = await startChild(t, tmpDir(t), { SHUTDOWN_TIMEOUT: '30s' });
  let signalled = performance.now();
  idle.proc.kill('SIGINT');
  let r = await idle.exited;
  assert.equal(r.code, 0);
  assert.ok(r.at - signalled < 2000, `idle stop took ${Math.round(r.at - signalled)} ms`);

  const busy = await startChild(t, tmpDir(t), { SHUTDOWN_TIMEOUT: '30s' });
  const upload = await create(`${busy.url}/files/`, 1024 * 1024);
  const slow = slowPatch(upload, 0, patternBytes(1024 * 1024), 1024, 100);
  await until(() => slow.sent() >= 2048);
  busy.proc.kill('SIGTERM');
  await new Promise((res) => setTimeout(res, 300));
  assert.equal(busy.proc.exitCode, null, 'still waiting for the PATCH after the first signal');
  signalled = performance.now();
  busy.proc.kill('SIGTERM');
  r = await busy.exited;
  slow.stop();
  assert.equal(r.code, 128 + 15);
  assert.ok(r.at - signalled < 1000, `second signal exit took ${Math.round(r.at - signalled)} ms`);
  assert.match(busy.output(), /second SIGTERM, exiting now/);
});

/** Holds a port on 127.0.0.1 for the test. */
async function busyPort(t: TestContext): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.after(() => server.close());
  return (server.address() as net.AddressInfo).port;
}

function runCommand(args: string[], env: Record<string, string>) {
  return spawnSync(process.execPath, [BIN, ...args], {
    env: { ...process.env, COMPLETION_SECRET: SECRET, ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
}

test('a busy port names the setting to change: PORT, COMPLETION_PORT, METRICS_PORT (exit 78, no stack)', async (t) => {
  const port = await busyPort(t);
  const cases: Array<[string[], Record<string, string>, RegExp]> = [
    [
      ['start'],
      { PORT: String(port) },
      new RegExp(
        `PORT: port ${port} is already in use on 127\\.0\\.0\\.1 \\(EADDRINUSE\\): set PORT \\(--port\\) to a ` +
          'free port',
      ),
    ],
    [['upload-server', '--port', String(port)], {}, /set PORT \(--port\) to a free port/],
    [
      ['completion-server'],
      { COMPLETION_PORT: String(port) },
      /COMPLETION_PORT: port \d+ is already in use .*set COMPLETION_PORT \(--completion-port\) to a free port/,
    ],
    [
      ['start', '--port', '0'],
      { METRICS_PORT: String(port) },
      /METRICS_PORT: port \d+ is already in use .*set METRICS_PORT \(--metrics-port\) to a free port/,
    ],
  ];
  for (const [args, env, message] of cases) {
    const r = runCommand(args, { DATA_DIR: tmpDir(t), ...env });
    assert.equal(r.status, 78, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack');
  }
  const host = runCommand(['start', '--port', '0'], {
    DATA_DIR: tmpDir(t),
    HOST: '192.0.2.1',
    ALLOW_ANONYMOUS: 'true',
  });
  assert.equal(host.status, 78);
  assert.match(
    host.stderr,
    /HOST: 192\.0\.2\.1 is not an address of this machine \(EADDRNOTAVAIL\): set HOST \(--host\)/,
  );
});
