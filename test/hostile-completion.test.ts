// Around the completion of an upload:
// 11. every outgoing timeout (completion form, HTTP hook, command hook) fires after a major GC;
// 12. a full disk at the moment of completion: the finished upload is announced exactly once, as
//     soon as it can be, without a restart;
// 13. a catalog location that cannot be used stops the start with exit 78 naming CATALOG_PATH.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { pathToFileURL } from 'node:url';
import { startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';
import { fillDisk, mountTmpfs } from './helpers/tmpfs.ts';
import { create, patch } from './helpers/tus.ts';

const ROOT = pathToFileURL(path.resolve('.')).href;
const BIN = path.resolve('bin/tuspass.js');

// ---- 11: timeouts under GC -------------------------------------------------------------------

/** A server that accepts connections and never answers (as the completion service did). */
async function silentServer(t: TestContext): Promise<string> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

/** Alive and not a zombie (an orphan killed here may wait for a PID 1 that does not reap). */
function running(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]![0] !== 'Z';
  } catch {
    return false;
  }
}

const SAMPLE_REQUEST = `{ Type: 'pre-create', Event: {
  Upload: { ID: 'u1', Size: 3, SizeIsDeferred: false, Offset: 0, MetaData: {}, IsPartial: false, IsFinal: false, \
PartialUploads: null, Storage: null },
  HTTPRequest: { Method: 'POST', URI: '/files/', RemoteAddr: '127.0.0.1:1', Header: {} } } }`;

/**
 * Runs `body` in a child node with --expose-gc, full collections forced every 50 ms while it waits.
 * The body sets `result`; the child prints it with the time taken. A child still running after
 * `limitMs` is killed: the timeout never fired (the defect).
 */
function underGc(
  body: string,
  env: Record<string, string>,
  limitMs = 15_000,
): Promise<{ result: Record<string, unknown>; ms: number } | 'hung'> {
  const script = `
    const gcs = setInterval(() => gc(), 50);
    const started = Date.now();
    let result;
    ${body}
    clearInterval(gcs);
    process.stdout.write(JSON.stringify({ result, ms: Date.now() - started }));
    process.exit(0);`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script], {
      env: { ...process.env, ROOT, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c));
    child.stderr.on('data', (c: Buffer) => (err += c));
    const limit = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.on('close', (code, signal) => {
      clearTimeout(limit);
      if (signal === 'SIGKILL') return resolve('hung');
      if (code !== 0) return reject(new Error(`child exited ${code}: ${err}`));
      resolve(JSON.parse(out) as { result: Record<string, unknown>; ms: number });
    });
  });
}

test('GC: the completion form POST times out after a major GC (a service that never answers)', async (t) => {
  const url = await silentServer(t);
  const run = await underGc(
    `const { postForm } = await import(process.env.ROOT + '/server/complete-form/post.ts');
     const { parseStatusRanges } = await import(process.env.ROOT + '/core/status-ranges.ts');
     result = await postForm({ url: process.env.URL, secret: 's', timeoutMs: 1000, cleanupStatuses: \
parseStatusRanges('400-501') }, new URLSearchParams('a=1'), 'u1', 'form-u1');`,
    { URL: url },
  );
  assert.notEqual(run, 'hung', 'the form POST never timed out');
  if (run === 'hung') return;
  assert.equal(run.result.kind, 'retry');
  assert.match(String(run.result.error), /unreachable: ETIMEDOUT/);
  assert.ok(run.ms >= 900 && run.ms < 5000, `failed after ${run.ms} ms`);
});

test('GC: an HTTP hook times out after a major GC', async (t) => {
  const url = await silentServer(t);
  const run = await underGc(
    `const { createHttpHook } = await import(process.env.ROOT + '/hooks/transports/http.ts');
     const { HookRunner } = await import(process.env.ROOT + '/hooks/runner.ts');
     const hook = createHttpHook({ url: process.env.URL, events: ['pre-create'], secret: 's', retry: 0, backoffMs: 0, \
forwardHeaders: [] });
     const runner = new HookRunner([hook], { timeoutMs: 1000, log: () => {} });
     try { await runner.block(${SAMPLE_REQUEST}); result = { answered: true }; }
     catch (e) { result = { status: e.response?.HTTPResponse?.StatusCode, body: e.response?.HTTPResponse?.Body }; }`,
    { URL: url },
  );
  assert.notEqual(run, 'hung', 'the HTTP hook never timed out');
  if (run === 'hung') return;
  assert.equal(run.result.status, 504);
  assert.match(String(run.result.body), /ERR_HOOK_TIMEOUT: hook http failed on pre-create .*timed out after 1000 ms/);
  assert.ok(run.ms >= 900 && run.ms < 5000, `failed after ${run.ms} ms`);
});

test('GC: a command hook is killed at its timeout after a major GC', async (t) => {
  const dir = tmpDir(t);
  const pidFile = path.join(dir, 'sleep.pid');
  fs.writeFileSync(path.join(dir, 'pre-create'), `#!/bin/sh\nsleep 30 &\necho $! > ${pidFile}\nwait\n`, {
    mode: 0o755,
  });
  const run = await underGc(
    `const { createCommandHook } = await import(process.env.ROOT + '/hooks/transports/command.ts');
     const { HookRunner } = await import(process.env.ROOT + '/hooks/runner.ts');
     const hook = createCommandHook({ dir: process.env.HOOKS, events: ['pre-create'], log: () => {} });
     const runner = new HookRunner([hook], { timeoutMs: 1000, log: () => {} });
     try { await runner.block(${SAMPLE_REQUEST}); result = { answered: true }; }
     catch (e) { result = { status: e.response?.HTTPResponse?.StatusCode, body: e.response?.HTTPResponse?.Body }; }`,
    { HOOKS: dir },
  );
  assert.notEqual(run, 'hung', 'the command hook never timed out');
  if (run === 'hung') return;
  assert.equal(run.result.status, 504);
  assert.match(
    String(run.result.body),
    /ERR_HOOK_TIMEOUT: hook command failed on pre-create .*timed out after 1000 ms/,
  );
  assert.ok(run.ms >= 900 && run.ms < 5000, `failed after ${run.ms} ms`);
  const pid = Number(fs.readFileSync(pidFile, 'utf8'));
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(!running(pid), "the hook's sleep still runs");
});

// ---- 12: disk full at completion -------------------------------------------------------------

/** A completion service stand-in: answers 503 while down, records and accepts forms once up. */
async function formReceiver(t: TestContext) {
  const accepted: Array<{ uploadId: string; noticeId: string }> = [];
  const state = { down: true, posts: 0 };
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      state.posts++;
      if (state.down) return res.writeHead(503).end('busy');
      accepted.push({
        uploadId: String(req.headers['tuspass-upload-id']),
        noticeId: String(req.headers['tuspass-notice-id']),
      });
      res.writeHead(201, { 'Content-Type': 'application/json' }).end('{"id":"1"}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/complete/`, accepted, state };
}

const until = async (what: string, predicate: () => boolean, timeoutMs = 10_000) => {
  const end = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

const journalIds = (dataDir: string) =>
  fs.readFileSync(path.join(dataDir, 'completions-handled'), 'utf8').split('\n').filter(Boolean);

test('disk full: a form that can be neither posted nor queued answers 507, leaves no .tmp, and is delivered once when \
space is back', async (t) => {
  const dataDir = mountTmpfs(t, 1024 * 1024);
  if (!dataDir) return;
  const receiver = await formReceiver(t);
  const s = await startTestServer(
    t,
    { dataDir, storeDir: tmpDir(t), completionUrl: receiver.url, minFreeSpace: 0, retryMinMs: 100, retryMaxMs: 400 },
    { completion: false },
  );
  const url = await create(s.endpoint, 3, { filename: 'full.txt' });
  const id = url.split('/').pop()!;
  const filler = fillDisk(dataDir);

  const done = await patch(url, 0, 'abc');
  assert.equal(done.status, 507, done.body);
  assert.match(done.body, /ERR_STORAGE_FULL/);
  assert.ok(!done.body.includes(dataDir), 'no absolute path in the answer');
  assert.deepEqual(fs.readdirSync(path.join(dataDir, 'queue')), [], 'nothing left in the queue, no .tmp');

  // The client tries the final PATCH again: the upload is complete; nothing is sent twice.
  const again = await patch(url, 3, '');
  assert.equal(again.status, 204, again.body);
  assert.equal(again.headers['upload-offset'], '3');

  // Space comes back, then the service: the form arrives, once, with no restart.
  fs.rmSync(filler);
  await until('the form queued', () => s.queue.pending().some((n) => n.id === `form-${id}`));
  receiver.state.down = false;
  await until('the form delivered', () => receiver.accepted.length > 0);
  assert.ok(await s.queue.drained(10_000));
  await until('the journal line', () => journalIds(dataDir).includes(id));
  await new Promise((r) => setTimeout(r, 1000));
  assert.deepEqual(receiver.accepted, [{ uploadId: id, noticeId: `form-${id}` }], 'delivered exactly once');
  assert.deepEqual(fs.readdirSync(path.join(dataDir, 'queue')), []);
});

test('disk full: a multipart form that can be neither posted nor queued answers 507 saying nothing is kept, and keeps \
nothing', async (t) => {
  const dataDir = mountTmpfs(t, 1024 * 1024);
  if (!dataDir) return;
  const receiver = await formReceiver(t);
  const storeDir = tmpDir(t);
  const s = await startTestServer(
    t,
    { dataDir, storeDir, completionUrl: receiver.url, minFreeSpace: 0 },
    { completion: false },
  );
  const filler = fillDisk(dataDir);
  t.after(() => fs.rmSync(filler, { force: true }));
  const body = new FormData();
  body.set('file1', new Blob(['abc']), 'full.txt');
  const res = await fetch(`${s.url}/upload`, { method: 'POST', body });
  const text = await res.text();
  assert.equal(res.status, 507, text);
  assert.match(text, /ERR_STORAGE_FULL/);
  assert.match(text, /nothing of the request is kept/);
  assert.ok(!text.includes(dataDir), 'no absolute path in the answer');
  assert.equal(receiver.state.posts, 1, 'the form was tried');
  assert.deepEqual(fs.readdirSync(path.join(dataDir, 'queue')), [], 'nothing left in the queue, no .tmp');
  assert.deepEqual(
    fs.readdirSync(storeDir).filter((n) => !n.startsWith('.')),
    [],
    "the request's file is removed",
  );
});

test('disk full: a journal write failing after the form was delivered answers the delivery, and a restart does not \
deliver again', async (t) => {
  const dataDir = mountTmpfs(t, 1024 * 1024);
  if (!dataDir) return;
  const storeDir = tmpDir(t);
  const receiver = await formReceiver(t);
  receiver.state.down = false;
  const overrides = {
    dataDir,
    storeDir,
    completionUrl: receiver.url,
    minFreeSpace: 0,
    retryMinMs: 100,
    retryMaxMs: 400,
  };
  const first = await startTestServer(t, overrides, { completion: false });
  const url = await create(first.endpoint, 3, { filename: 'journal.txt' });
  const id = url.split('/').pop()!;
  const filler = fillDisk(dataDir);

  const done = await patch(url, 0, 'abc');
  assert.equal(done.status, 201, done.body);
  assert.equal(done.headers['tuspass-completion'], 'delivered');
  assert.equal(receiver.accepted.length, 1);
  assert.ok(!journalIds(dataDir).includes(id), 'the disk is full: not in the journal yet');

  fs.rmSync(filler);
  await until('the journal line written once there is space', () => journalIds(dataDir).includes(id));
  await first.close();

  await startTestServer(t, overrides, { completion: false });
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(receiver.accepted.length, 1, 'a restart does not deliver the form again');
  assert.equal(receiver.state.posts, 1);
});

// ---- 13: the catalog location at start -------------------------------------------------------

function runCommand(command: string, env: Record<string, string>) {
  return spawnSync(process.execPath, [BIN, command], {
    env: { ...process.env, PORT: '0', COMPLETION_PORT: '0', COMPLETION_SECRET: 'test-secret-0123456789', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

function assertConfigExit(r: ReturnType<typeof runCommand>, what: string): void {
  assert.equal(r.status, 78, `${what}: exit ${r.status}\n${r.stderr}`);
  assert.match(r.stderr, /CATALOG_PATH/, what);
  assert.doesNotMatch(r.stderr, /\n\s+at /, `${what}: a stack trace`);
}

test('a catalog under a file (ENOTDIR): completion-server and start exit 78 naming CATALOG_PATH, no stack', (t) => {
  const dir = tmpDir(t);
  fs.writeFileSync(path.join(dir, 'a-file'), '');
  const env = { DATA_DIR: path.join(dir, 'data'), CATALOG_PATH: path.join(dir, 'a-file', 'catalog.sqlite') };
  assertConfigExit(runCommand('completion-server', env), 'completion-server');
  assertConfigExit(runCommand('start', env), 'start');
});

test('a catalog on a read-only file system: completion-server and start exit 78 naming CATALOG_PATH, no stack', (t) => {
  const ro = mountTmpfs(t, 1024 * 1024);
  if (!ro) return;
  fs.mkdirSync(path.join(ro, 'existing'));
  execFileSync('mount', ['-o', 'remount,ro', ro]);
  const dataDir = tmpDir(t);
  for (const catalog of [
    path.join(ro, 'catalog.sqlite'),
    path.join(ro, 'missing', 'catalog.sqlite'),
    path.join(ro, 'existing', 'catalog.sqlite'),
  ]) {
    const env = { DATA_DIR: dataDir, CATALOG_PATH: catalog };
    assertConfigExit(runCommand('completion-server', env), `completion-server ${path.relative(ro, catalog)}`);
    assertConfigExit(runCommand('start', env), `start ${path.relative(ro, catalog)}`);
  }
});
