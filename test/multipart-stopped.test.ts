// A multipart request the process stopped in the middle of (SIGKILL, or a SIGTERM, which does not
// wait for a request still in its pre-finish hook) never finished: its form was never posted, so none of its files may
// be announced — not even the parts it had written whole. A real `tuspass start` process, restarted on the same data
// dir.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import { watchChild } from './helpers/child-crash.ts';
import { curl, storeFiles } from './helpers/multipart.ts';
import { until } from './helpers/instances.ts';
import { tmpDir } from './helpers/tmp.ts';

const BIN = path.resolve('bin/tuspass.js');
const BOUNDARY = 'stopped-boundary-0123';

interface Child {
  url: string;
  storeDir: string;
  kill(signal: NodeJS.Signals): void;
  exited: Promise<NodeJS.Signals | number | null>;
}

async function startChild(t: TestContext, dataDir: string, env: Record<string, string> = {}): Promise<Child> {
  const proc = spawn(process.execPath, [BIN, 'start', '--port', '0', '--host', '127.0.0.1'], {
    env: {
      ...process.env,
      DATA_DIR: dataDir,
      COMPLETION_SECRET: 'test-secret-0123456789',
      MIN_FREE_SPACE: '0',
      SHUTDOWN_TIMEOUT: '1s',
      LOG_FORMAT: 'text',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => proc.kill('SIGKILL'));
  watchChild(t, proc);
  let out = '';
  proc.stdout.on('data', (c: Buffer) => (out += c));
  proc.stderr.on('data', (c: Buffer) => (out += c));
  const exited = new Promise<NodeJS.Signals | number | null>((r) =>
    proc.once('exit', (code, signal) => r(signal ?? code)),
  );
  const url = await new Promise<string>((resolve, reject) => {
    proc.stdout.on('data', () => {
      const m = /tus uploads on (http:\/\/[^ ]+)\/files\//.exec(out);
      if (m) resolve(m[1]!);
    });
    void exited.then((how) => reject(new Error(`exited ${how}: ${out}`)));
  });
  return { url, storeDir: path.join(dataDir, 'uploads'), kill: (signal) => void proc.kill(signal), exited };
}

/** The uploads in the store (no info, digest or other file beside them). */
const uploadsIn = (dir: string) => storeFiles(dir).filter((n) => !n.includes('.'));

/** The uploads whose info says they are complete at `size` bytes. */
function completeAt(dir: string, size: number): string[] {
  return uploadsIn(dir).filter((id) => {
    try {
      return (
        JSON.parse(fs.readFileSync(path.join(dir, `${id}.json`), 'utf8')).size === size &&
        fs.statSync(path.join(dir, id)).size === size
      );
    } catch {
      return false;
    }
  });
}

/** A two-file multipart request whose first part is sent whole and whose second stops after a few bytes. */
function halfSentRequest(url: string): http.ClientRequest {
  const head = [
    `--${BOUNDARY}`,
    'Content-Disposition: form-data; name="file1"; filename="first.txt"',
    'Content-Type: text/plain',
    '',
    'hello',
    `--${BOUNDARY}`,
    'Content-Disposition: form-data; name="file2"; filename="second.txt"',
    'Content-Type: text/plain',
    '',
    'the second file st',
  ].join('\r\n');
  const req = http.request(`${url}/upload`, {
    method: 'POST',
    headers: {
      'Content-Type': `multipart/form-data; boundary=${BOUNDARY}`,
      'Content-Length': String(head.length + 100_000),
    },
  });
  req.on('error', () => undefined);
  req.write(head);
  return req;
}

/** After a restart: the store holds no upload, and a request sent whole is the one record. */
async function nothingKept(t: TestContext, second: Child): Promise<void> {
  // The start-up pass runs before the server listens: what it keeps is what it found.
  assert.deepEqual(uploadsIn(second.storeDir), [], 'the parts of the request that never finished are gone');
  // A request sent whole afterwards is the one record: nothing of the stopped one was announced.
  const dir = tmpDir(t);
  fs.writeFileSync(path.join(dir, 'whole.txt'), 'whole file');
  const r = await curl(['-F', `file1=@${path.join(dir, 'whole.txt')}`, `${second.url}/upload`]);
  assert.equal(r.status, 200, r.body);
  assert.deepEqual(
    (await records(second.url)).map((x) => x.name),
    ['whole.txt'],
  );
  second.kill('SIGTERM');
  assert.equal(await second.exited, 0);
}

async function records(url: string): Promise<Array<Record<string, unknown>>> {
  return (await (await fetch(`${url}/api/uploads`)).json()) as Array<Record<string, unknown>>;
}

test('SIGKILL after the first part of a two-file request: \
after a restart no record, no form, the parts gone', async (t) => {
  const dataDir = tmpDir(t);
  const first = await startChild(t, dataDir);
  const req = halfSentRequest(first.url);
  // The first part is written and its length declared: complete on disk.
  const written = await until(
    () => completeAt(first.storeDir, 5),
    (ids) => ids.length === 1,
  );
  assert.equal(written.length, 1, 'the first part was written whole');
  first.kill('SIGKILL');
  assert.equal(await first.exited, 'SIGKILL');
  req.destroy();

  await nothingKept(t, await startChild(t, dataDir));
});

test('SIGTERM while the pre-finish hook of a request sent whole still runs: the stop does not wait for it; after a \
restart no record, no form, the files gone', async (t) => {
  const dataDir = tmpDir(t);
  const hooks = tmpDir(t);
  const started = path.join(hooks, 'started');
  const release = path.join(hooks, 'release');
  // A pre-finish hook that holds the request until the test lets it go (or its directory is gone).
  fs.writeFileSync(
    path.join(hooks, 'pre-finish'),
    `#!/bin/sh\ncat >/dev/null\ntouch '${started}'\nwhile [ -e '${started}' ] && [ ! -e '${release}' ]; do sleep ` +
      `0.05; done\necho '{}'\n`,
  );
  fs.chmodSync(path.join(hooks, 'pre-finish'), 0o755);
  const first = await startChild(t, dataDir, { HOOKS_DIR: hooks, HOOKS_ENABLED_EVENTS: 'pre-finish' });
  const dir = tmpDir(t);
  fs.writeFileSync(path.join(dir, 'a.txt'), 'hello');
  fs.writeFileSync(path.join(dir, 'b.txt'), 'the second file');
  const answer = curl([
    '-F',
    `file1=@${path.join(dir, 'a.txt')}`,
    '-F',
    `file2=@${path.join(dir, 'b.txt')}`,
    `${first.url}/upload`,
  ]).catch((e: Error) => e);
  await until(
    () => fs.existsSync(started),
    (ok) => ok,
  );
  assert.equal(
    completeAt(first.storeDir, 5).length + completeAt(first.storeDir, 15).length,
    2,
    'both files written whole before the hook',
  );
  first.kill('SIGTERM');
  assert.equal(await first.exited, 0);
  fs.writeFileSync(release, '');
  // Cut without an answer: the client never learnt that its request finished.
  assert.match(String(await answer), /Empty reply/);

  await nothingKept(t, await startChild(t, dataDir));
});
