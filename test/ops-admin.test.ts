// Admin commands as an operator runs them: real `tuspass` child processes against
// a real queue, store and ports. The server runs in this process (its queue watches for the commands'
// markers); the completion service is a port with nobody on it until the test opens it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { startTestServer } from './helpers/server.ts';
import { freePort } from './helpers/ports.ts';
import { runTuspass } from './helpers/instances.ts';
import { tmpDir } from './helpers/tmp.ts';
import { create, patch } from './helpers/tus.ts';

const run = runTuspass;

async function until(what: () => boolean, message: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) assert.fail(message);
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('queue list, retry and drop against notices queued while the completion service is down', async (t) => {
  const port = await freePort();
  // Retries an hour apart: only `queue retry` makes a notice go now.
  const s = await startTestServer(t, {
    completionUrl: `http://127.0.0.1:${port}/complete/`,
    retryMinMs: 3_600_000,
    retryMaxMs: 3_600_000,
  });
  const dataDir = ['--data-dir', s.config.dataDir];
  const ids: string[] = [];
  for (let i = 0; i < 2; i++) {
    const url = await create(s.endpoint, 5, { filename: `f${i}.txt` });
    const answer = await patch(url, 0, 'hello');
    assert.equal(answer.status, 204);
    assert.equal(answer.headers['tuspass-completion'], 'pending');
    ids.push(url.split('/').pop()!);
  }
  const [keep, drop] = ids.map((id) => `form-${id}`) as [string, string];

  const list = await run(['queue', 'list', ...dataDir, '--json']);
  assert.equal(list.status, 0, list.stderr);
  const rows = JSON.parse(list.stdout) as Array<Record<string, unknown>>;
  assert.deepEqual(rows.map((r) => r.id).sort(), [keep, drop].sort());
  for (const r of rows) {
    assert.equal(r.kind, 'complete-form');
    assert.equal(r.attempts, 1);
    assert.match(String(r.lastError), /unreachable/);
    assert.ok(Date.parse(String(r.nextAt)) > Date.now() + 3_000_000, 'next try an hour ahead');
  }
  assert.equal(rows.find((r) => r.id === keep)!.uploadId, ids[0]);
  const text = await run(['queue', 'list', ...dataDir]);
  assert.match(text.stdout, /^ID +KIND +UPLOAD +ATTEMPTS +NEXT TRY +AGE +LAST ERROR$/m);
  assert.match(
    text.stdout,
    new RegExp(`^${keep} +complete-form +${ids[0]} +1 +in (5\\dm \\d+s|1h 0m) +\\d+s +.*unreachable`, 'm'),
  );

  // drop: gone from the directory and from the running server's queue; prints what it dropped.
  const dropped = await run(['queue', 'drop', drop, ...dataDir]);
  assert.equal(dropped.status, 0, dropped.stderr);
  assert.match(
    dropped.stdout,
    new RegExp(
      `dropped notice ${drop} \\(complete-form, upload ${ids[1]}, 1 attempt\\(s\\), last error: .*unreachable`,
    ),
  );
  assert.ok(!fs.existsSync(path.join(s.config.dataDir, 'queue', `${drop}.json`)));
  await until(() => !s.queue.pending().some((n) => n.id === drop), 'the running server forgets the dropped notice');
  assert.equal((await run(['queue', 'drop', drop, ...dataDir])).status, 1, 'dropping it again: no such notice');

  // retry: with the service up now, the running server delivers at once (not in an hour).
  const forms: string[] = [];
  const service = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      forms.push(body);
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"ok":true}');
    });
  });
  await new Promise<void>((r) => service.listen(port, '127.0.0.1', r));
  t.after(() => new Promise((r) => service.close(r)));
  const retried = await run(['queue', 'retry', keep, ...dataDir]);
  assert.equal(retried.status, 0, retried.stderr);
  assert.match(retried.stdout, new RegExp(`notice ${keep} .* is due now`));
  await until(() => s.queue.pending().length === 0, `the retried notice is delivered: ${s.logs.join('\n')}`);
  assert.equal(forms.length, 1);
  assert.match(forms[0]!, new RegExp(ids[0]!));
  assert.deepEqual(JSON.parse((await run(['queue', 'list', ...dataDir, '--json'])).stdout), []);
  assert.deepEqual(fs.readdirSync(path.join(s.config.dataDir, 'queue')), [], 'no marker left behind');

  // Usage errors: 64.
  assert.equal((await run(['queue', ...dataDir])).status, 64);
  assert.equal((await run(['queue', 'retry', ...dataDir])).status, 64);
  assert.equal((await run(['queue', 'retry', '../etc/passwd', ...dataDir])).status, 64);
  assert.equal((await run(['queue', 'list', '--bogus', ...dataDir])).status, 64);
});

test('a retry with the server stopped: the notice file says \
due now (a start makes every notice due anyway)', async (t) => {
  const port = await freePort();
  const dataDir = tmpDir(t);
  const first = await startTestServer(t, {
    dataDir,
    completionUrl: `http://127.0.0.1:${port}/complete/`,
    retryMinMs: 3_600_000,
    retryMaxMs: 3_600_000,
  });
  const url = await create(first.endpoint, 5);
  assert.equal((await patch(url, 0, 'hello')).status, 204);
  await first.close();
  const id = `form-${url.split('/').pop()}`;
  const r = await run(['queue', 'retry', id, '--data-dir', dataDir, '--json']);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(Date.parse((JSON.parse(r.stdout) as { retried: { nextAt: string } }).retried.nextAt) <= Date.now());
  const onDisk = JSON.parse(fs.readFileSync(path.join(dataDir, 'queue', `${id}.json`), 'utf8')) as { nextAt: number };
  assert.ok(onDisk.nextAt <= Date.now());
});

test('uploads list --unfinished: real unfinished uploads with \
size, offset, age and expiry; finished ones left out', async (t) => {
  const s = await startTestServer(t, { expireAfterMs: 3_600_000 });
  const half = await create(s.endpoint, 10, { filename: 'half.bin' });
  assert.equal((await patch(half, 0, 'hello')).status, 204);
  const none = await create(s.endpoint, 7);
  const whole = await create(s.endpoint, 5);
  assert.equal((await patch(whole, 0, 'hello')).status, 200);
  const idOf = (u: string) => u.split('/').pop()!;

  const r = await run([
    'uploads',
    'list',
    '--unfinished',
    '--json',
    '--data-dir',
    s.config.dataDir,
    '--expire-after',
    '1h',
  ]);
  assert.equal(r.status, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as Array<{
    id: string;
    size: number;
    offset: number;
    expiresAt: string;
    finished: boolean;
    name?: string;
  }>;
  assert.deepEqual(rows.map((x) => x.id).sort(), [idOf(half), idOf(none)].sort());
  const h = rows.find((x) => x.id === idOf(half))!;
  assert.equal(h.size, 10);
  assert.equal(h.offset, 5);
  assert.equal(h.name, 'half.bin');
  const expires = Date.parse(h.expiresAt) - Date.now();
  assert.ok(expires > 3_500_000 && expires <= 3_600_000, `expires in about an hour: ${h.expiresAt}`);
  assert.equal(rows.find((x) => x.id === idOf(none))!.offset, 0);

  const text = await run(['uploads', 'list', '--unfinished', '--data-dir', s.config.dataDir, '--expire-after', '1h']);
  assert.match(text.stdout, /^ID +SIZE +OFFSET +AGE +EXPIRES +NAME$/m);
  assert.match(
    text.stdout,
    new RegExp(`^${idOf(half)} +10 +5 +\\d+s +\\S+ \\(in (59m \\d+s|1h 0m)\\) +half\\.bin$`, 'm'),
  );
  assert.doesNotMatch(text.stdout, new RegExp(idOf(whole)));
  const all = await run(['uploads', 'list', '--data-dir', s.config.dataDir, '--json']);
  assert.equal((JSON.parse(all.stdout) as unknown[]).length, 3);
});

test('doctor: ok on a fresh data dir; exit 1 naming the remedy for an unusable store, an open secret, a port taken by \
another program', async (t) => {
  const root = tmpDir(t);
  const env = { MIN_FREE_SPACE: '1MiB' };
  const fresh = await run(
    ['doctor', '--data-dir', path.join(root, 'data'), '--port', '0', '--completion-port', '0'],
    env,
  );
  assert.equal(fresh.status, 0, fresh.stdout + fresh.stderr);
  const lines = fresh.stdout.trim().split('\n');
  for (const l of lines) assert.match(l, /^ok {4}/);
  for (const check of ['config', 'data dir', 'store dir', 'free space', 'catalog', 'secret', 'port'])
    assert.ok(
      lines.some((l) => l.startsWith(`ok    ${check}:`)),
      check,
    );

  // STORE_DIR under a regular file.
  const file = path.join(root, 'a-file');
  fs.writeFileSync(file, '');
  const bad = await run(
    [
      'doctor',
      '--data-dir',
      path.join(root, 'data'),
      '--store-dir',
      path.join(file, 'store'),
      '--port',
      '0',
      '--completion-port',
      '0',
    ],
    env,
  );
  assert.equal(bad.status, 1);
  assert.match(bad.stdout, /^FAIL {2}store dir: .*a-file is not a directory\n {6}→ set STORE_DIR to a directory path/m);
  // DATA_DIR where no directory can be made (/proc refuses every mkdir), as tuspass start refuses it.
  const proc = await run(['doctor', '--data-dir', '/proc/x', '--port', '0', '--completion-port', '0'], env);
  assert.equal(proc.status, 1, proc.stdout);
  assert.match(
    proc.stdout,
    /^FAIL {2}data dir: \/proc\/x cannot be created: .*\n {6}→ set DATA_DIR to a path on a writable file system/m,
  );
  assert.doesNotMatch(proc.stdout, /created at the first start/);
  const json = await run(
    [
      'doctor',
      '--json',
      '--data-dir',
      path.join(root, 'data'),
      '--store-dir',
      path.join(file, 'store'),
      '--port',
      '0',
      '--completion-port',
      '0',
    ],
    env,
  );
  assert.equal(json.status, 1);
  const checks = JSON.parse(json.stdout) as Array<{ check: string; ok: boolean; remedy?: string }>;
  assert.equal(checks.find((c) => c.check === 'store dir')!.ok, false);
  assert.equal(checks.filter((c) => !c.ok).length, 1);

  // A running tuspass on the port is fine; another program is not. A secret others can read is not.
  const s = await startTestServer(t, { completionSecret: undefined });
  const tusPort = new URL(s.url).port;
  const fs0 = fs.statSync(path.join(s.config.dataDir, 'completion-secret'));
  assert.equal(fs0.mode & 0o777, 0o600);
  const running = await run(
    ['doctor', '--data-dir', s.config.dataDir, '--port', tusPort, '--completion-port', '0'],
    env,
  );
  assert.equal(running.status, 0, running.stdout);
  assert.match(
    running.stdout,
    new RegExp(`^ok {4}port: 127\\.0\\.0\\.1:${tusPort} is in use by a running tuspass$`, 'm'),
  );
  assert.match(running.stdout, /^ok {4}catalog: .* opens/m);
  fs.chmodSync(path.join(s.config.dataDir, 'completion-secret'), 0o644);
  // Another program: takes connections, reads them, never answers.
  const other = net.createServer((c) => c.on('error', () => {}).resume());
  await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
  t.after(() => new Promise((r) => other.close(r)));
  const otherPort = String((other.address() as net.AddressInfo).port);
  const failing = await run(
    ['doctor', '--data-dir', s.config.dataDir, '--port', otherPort, '--completion-port', '0'],
    env,
  );
  assert.equal(failing.status, 1);
  assert.match(failing.stdout, /^FAIL {2}secret: .*mode 0644.*\n {6}→ chmod 600 /m);
  assert.match(
    failing.stdout,
    new RegExp(
      `^FAIL {2}port: 127\\.0\\.0\\.1:${otherPort} is in use by another program\\n {6}→ set PORT \\(or --port\\) ` +
        'to a free port',
      'm',
    ),
  );

  // A bad setting is a failing check, not a crash; an unknown argument is a usage error.
  const config = await run(['doctor', '--data-dir', path.join(root, 'data')], { ...env, PORT: 'abc' });
  assert.equal(config.status, 1);
  assert.match(config.stdout, /^FAIL {2}config: PORT: must be a whole number/m);
  assert.equal((await run(['doctor', 'extra', '--data-dir', path.join(root, 'data')], env)).status, 64);
});
