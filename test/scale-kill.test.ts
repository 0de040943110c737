// An upload server killed with SIGKILL mid-PATCH (REDIS_URL, one shared store): the upload resumes
// through another instance to the right md5, with one catalog record. Instance A is a real child
// process (`node bin/tuspass.js upload-server`); B runs in this process with the completion service.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { md5, patternBytes } from './helpers/files.ts';
import { recordsWhenPresent, startTestServer } from './helpers/server.ts';
import { freePort } from './helpers/ports.ts';
import { tmpDir } from './helpers/tmp.ts';
import { create, tus } from './helpers/tus.ts';

const REDIS = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const BIN = path.resolve('bin/tuspass.js');

test('A killed with SIGKILL mid-PATCH: the upload resumes through B to the right md5, one record', async (t) => {
  const storeDir = tmpDir(t);
  const b = await startTestServer(t, { storeDir, redisUrl: REDIS, redisLockTtlMs: 2000, minFreeSpace: 0 });
  const port = await freePort();
  const a = spawn(
    process.execPath,
    [BIN, 'upload-server', '--port', String(port), '--host', '127.0.0.1', '--data-dir', tmpDir(t)],
    {
      env: {
        ...process.env,
        STORE_DIR: storeDir,
        REDIS_URL: REDIS,
        REDIS_LOCK_TTL: '2s',
        MIN_FREE_SPACE: '0',
        COMPLETION_URL: b.completionUrl,
        COMPLETION_SECRET: 'test-secret-0123456789',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let aOut = '';
  a.stdout.on('data', (d: Buffer) => (aOut += d));
  a.stderr.on('data', (d: Buffer) => (aOut += d));
  const exited = new Promise<NodeJS.Signals | number | null>((r) => a.on('exit', (code, signal) => r(signal ?? code)));
  t.after(() => {
    if (a.exitCode === null && a.signalCode === null) a.kill('SIGKILL');
  });
  const aUrl = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const ok = await fetch(`${aUrl}/files/`, { method: 'OPTIONS' }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    assert.ok(i < 300, `A did not start: ${aOut}`);
    await new Promise((r) => setTimeout(r, 50));
  }

  const bytes = patternBytes(3 * 1024 * 1024, 13);
  const uploadUrl = await create(`${aUrl}/files/`, bytes.length, { name: 'killed.bin' });
  const id = new URL(uploadUrl).pathname.split('/').pop()!;
  t.after(async () => {
    const r = new Redis(REDIS, { maxRetriesPerRequest: 1 });
    await r.del(`tuspass:lock:${id}`, `tuspass:upload:${id}`).catch(() => {});
    r.disconnect();
  });
  // A PATCH of the whole file whose body stops after 1 MiB: A is killed while it waits for more.
  const req = http.request(uploadUrl, {
    method: 'PATCH',
    headers: {
      'Tus-Resumable': '1.0.0',
      'Upload-Offset': '0',
      'Content-Type': 'application/offset+octet-stream',
      'Content-Length': String(bytes.length),
    },
  });
  req.on('error', () => {});
  req.write(bytes.subarray(0, 1024 * 1024));
  const onB = `${b.url}${new URL(uploadUrl).pathname}`;
  // Wait until A has written some of it (visible through B's HEAD would hand the lock over: read the file instead).
  const file = path.join(storeDir, id);
  const { statSync } = await import('node:fs');
  for (let i = 0; statSync(file).size < 512 * 1024; i++) {
    assert.ok(i < 200, 'A wrote nothing');
    await new Promise((r) => setTimeout(r, 25));
  }
  a.kill('SIGKILL');
  assert.equal(await exited, 'SIGKILL');
  req.destroy();

  // B: the dead holder's lease ends within REDIS_LOCK_TTL; then the offset on disk, and the rest from there.
  const head = await tus('HEAD', onB);
  assert.equal(head.status, 200);
  const offset = Number(head.headers['upload-offset']);
  assert.ok(offset > 0 && offset <= 1024 * 1024, `offset ${offset}`);
  const rest = await tus(
    'PATCH',
    onB,
    { 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream' },
    bytes.subarray(offset),
  );
  assert.ok(rest.status === 200 || rest.status === 204, `PATCH ${rest.status}`);
  const records = await recordsWhenPresent(b.url, 1, 10_000);
  assert.deepEqual(
    records.map((r) => r.md5),
    [md5(bytes)],
  );
  await new Promise((r) => setTimeout(r, 500));
  assert.equal((await recordsWhenPresent(b.url, 1)).length, 1, 'one record');
});
