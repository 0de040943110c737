// Secrets at rest: after a real upload, everything tuspass keeps is the owner's
// alone (0600 files, 0700 directories) even under a umask of 0 — modes are set, not left to the
// umask; SHARED_GROUP_READ makes them 0640/0750 even under a umask of 077; an existing DATA_DIR
// and catalog are fixed at start; queued notices keep no Authorization or Cookie.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { startHookReceiver } from './helpers/hook-receiver.ts';
import { recordsWhenPresent, startTestServer } from './helpers/server.ts';
import { PATCH_TYPE, tus } from './helpers/tus.ts';
import { tmpDir } from './helpers/tmp.ts';

const modeOf = (file: string) => fs.statSync(file).mode & 0o777;

/** Runs with this umask, restored when the test ends. */
function withUmask(t: TestContext, mask: number): void {
  const before = process.umask(mask);
  t.after(() => process.umask(before));
}

/** One finished upload, one unfinished past the inline-hash size (so its digest state is on disk), notices queued. */
async function fill(t: TestContext, overrides: Record<string, unknown> = {}) {
  const receiver = await startHookReceiver(t, { down: true });
  const s = await startTestServer(t, {
    hooksHttp: receiver.url,
    hooksHttpEvents: ['post-create', 'post-finish'],
    ...overrides,
  });
  const done = await tus('POST', s.endpoint, { 'Upload-Length': '5', ...PATCH_TYPE }, 'hello');
  assert.equal(done.status, 201);
  const doneId = done.headers.location!.split('/').pop()!;
  const partial = await tus('POST', s.endpoint, { 'Upload-Length': String(2 * 1024 * 1024) });
  const partialId = partial.headers.location!.split('/').pop()!;
  const patched = await tus(
    'PATCH',
    new URL(partial.headers.location!, s.endpoint).toString(),
    { ...PATCH_TYPE, 'Upload-Offset': '0' },
    Buffer.alloc(512 * 1024, 1),
  );
  assert.equal(patched.status, 204);
  await recordsWhenPresent(s.url, 1);
  const queueDir = path.join(s.config.dataDir, 'queue');
  // Notices for the receiver that is down wait in the queue.
  for (let i = 0; i < 100 && fs.readdirSync(queueDir).filter((n) => n.endsWith('.json')).length < 2; i++)
    await new Promise((r) => setTimeout(r, 20));
  const files = {
    DATA_DIR: s.config.dataDir,
    'store dir': s.config.storeDir,
    'queue dir': queueDir,
    'store file': path.join(s.config.storeDir, doneId),
    'info file': path.join(s.config.storeDir, `${doneId}.json`),
    'unfinished store file': path.join(s.config.storeDir, partialId),
    'digest state': path.join(s.config.storeDir, `${partialId}.digest`),
    journal: path.join(s.config.dataDir, 'completions-handled'),
    catalog: s.config.catalogPath,
    'catalog -wal': `${s.config.catalogPath}-wal`,
    'catalog -shm': `${s.config.catalogPath}-shm`,
  } as Record<string, string>;
  const queued = fs.readdirSync(queueDir).filter((n) => n.endsWith('.json'));
  assert.ok(queued.length >= 2, `notices queued: ${queued.join(', ')}`);
  for (const name of queued) files[`queue file ${name}`] = path.join(queueDir, name);
  return { s, receiver, files };
}

test("everything kept is the owner's alone (0600 / 0700), even under umask 0", async (t) => {
  withUmask(t, 0);
  const { files } = await fill(t, { completionSecret: undefined });
  files['completion secret'] = path.join(path.dirname(files.journal!), 'completion-secret');
  for (const [name, file] of Object.entries(files)) {
    const expected = fs.statSync(file).isDirectory() ? 0o700 : 0o600;
    assert.equal(modeOf(file).toString(8), expected.toString(8), name);
  }
});

test('SHARED_GROUP_READ=true: group-readable (0640 / 0750), even under umask 077', async (t) => {
  withUmask(t, 0o077);
  const { files } = await fill(t, { sharedGroupRead: true, completionSecret: undefined });
  files['completion secret'] = path.join(path.dirname(files.journal!), 'completion-secret');
  for (const [name, file] of Object.entries(files)) {
    const expected = fs.statSync(file).isDirectory() ? 0o750 : 0o640;
    assert.equal(modeOf(file).toString(8), expected.toString(8), name);
  }
});

test('an existing DATA_DIR, catalog and journal left readable by others are fixed at start', async (t) => {
  withUmask(t, 0);
  const dataDir = tmpDir(t);
  fs.chmodSync(dataDir, 0o755);
  fs.writeFileSync(path.join(dataDir, 'completions-handled'), '', { mode: 0o644 });
  // A catalog from an earlier run (mode 0644).
  const first = await startTestServer(t, { dataDir });
  await first.close();
  fs.chmodSync(first.config.catalogPath, 0o644);
  fs.chmodSync(dataDir, 0o755);
  const s = await startTestServer(t, { dataDir });
  assert.equal(modeOf(dataDir).toString(8), '700');
  assert.equal(modeOf(s.config.catalogPath).toString(8), '600');
  const done = await tus('POST', s.endpoint, { 'Upload-Length': '2', ...PATCH_TYPE }, 'ok');
  assert.equal(done.status, 201);
  await recordsWhenPresent(s.url, 1);
  assert.equal(modeOf(path.join(dataDir, 'completions-handled')).toString(8), '600');
});

test('queued notices keep only HOOKS_HTTP_FORWARD_HEADERS, \
never Authorization or Cookie (even when named)', async (t) => {
  const { s, receiver } = await fill(t, { hooksHttpForwardHeaders: ['Authorization', 'Cookie', 'X-Tenant'] });
  const headers = {
    Authorization: 'Bearer secret-token-h7x',
    Cookie: 'session=cookie-value-h7x',
    'X-Tenant': 'tenant-h7x',
    'X-Other': 'other-h7x',
    'Proxy-Authorization': 'Basic proxy-h7x',
  };
  const created = await tus('POST', s.endpoint, { 'Upload-Length': '3', ...PATCH_TYPE, ...headers }, 'abc');
  assert.equal(created.status, 201, created.body);
  const id = created.headers.location!.split('/').pop()!;
  const queueDir = path.join(s.config.dataDir, 'queue');
  const mine = () =>
    fs
      .readdirSync(queueDir)
      .filter((n) => n.endsWith('.json'))
      .map((n) => fs.readFileSync(path.join(queueDir, n), 'utf8'))
      .filter((text) => text.includes(id));
  for (let i = 0; i < 100 && mine().length < 2; i++) await new Promise((r) => setTimeout(r, 20));
  const stored = mine();
  assert.equal(stored.length, 2, 'post-create and post-finish queued for this upload');
  for (const text of stored) {
    for (const secret of ['secret-token-h7x', 'cookie-value-h7x', 'proxy-h7x'])
      assert.ok(!text.includes(secret), `${secret} not on disk`);
    assert.ok(!text.includes('other-h7x'), 'a header not named is not kept');
    assert.ok(text.includes('tenant-h7x'), 'a named header is kept');
  }
  // Delivered later: the notices carry no credentials to the receiver either.
  await receiver.up();
  await receiver.until((r) => r.filter((h) => h.request.Event.Upload.ID === id).length >= 2);
  for (const h of receiver.received.filter((r) => r.request.Event.Upload.ID === id)) {
    assert.equal(h.headers.authorization, undefined);
    assert.equal(h.headers.cookie, undefined);
    assert.equal(h.headers['x-tenant'], 'tenant-h7x');
    assert.ok(!h.body.includes('secret-token-h7x') && !h.body.includes('cookie-value-h7x'));
  }
});

test('a blocking hook (never stored) still gets the named \
headers, Authorization included, as tusd forwards them', async (t) => {
  const receiver = await startHookReceiver(t);
  const s = await startTestServer(t, {
    hooksHttp: receiver.url,
    hooksHttpEvents: ['pre-create'],
    hooksHttpForwardHeaders: ['Authorization'],
  });
  const created = await tus('POST', s.endpoint, {
    'Upload-Length': '1',
    Authorization: 'Bearer for-the-pre-create-hook',
  });
  assert.equal(created.status, 201, created.body);
  const [pre] = receiver.received;
  assert.equal(pre?.headers.authorization, 'Bearer for-the-pre-create-hook');
  assert.ok(
    !fs
      .readdirSync(path.join(s.config.dataDir, 'queue'))
      .some((n) =>
        fs.readFileSync(path.join(s.config.dataDir, 'queue', n), 'utf8').includes('for-the-pre-create-hook'),
      ),
  );
});
