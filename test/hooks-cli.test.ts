// `tuspass hooks test EVENT` as a person runs it: a sample payload to the configured hooks, each answer printed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { startHookReceiver } from './helpers/hook-receiver.ts';
import { tmpDir } from './helpers/tmp.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const BIN = path.join(ROOT, 'bin/tuspass.js');

const run = (args: string[], env: Record<string, string> = {}, cwd = ROOT) =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    // Async spawn: the HTTP receiver in this process must keep answering while the command runs.
    import('node:child_process').then(({ spawn }) => {
      const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, ...env } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c) => (stdout += c));
      child.stderr.on('data', (c) => (stderr += c));
      child.on('close', (status) => resolve({ status, stdout, stderr }));
    });
  });

test('hooks test pre-create runs the example command hook and prints its rejection', async (t) => {
  const dataDir = tmpDir(t);
  const r = await run([
    'hooks',
    'test',
    'pre-create',
    '--hooks-dir',
    'hooks/examples/command',
    '--size',
    '999999999999',
    '--meta',
    'filename=big.iso',
    '--data-dir',
    dataDir,
  ]);
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /"Type": "pre-create"/);
  assert.match(r.stdout, /command: answered in \d+ ms/);
  assert.match(r.stdout, /"RejectUpload": true/);
  assert.match(r.stdout, /"StatusCode": 413/);
});

test('a TypeScript hook module loads in the command, which \
runs as plain JavaScript (tsx registered on demand)', async (t) => {
  const dataDir = tmpDir(t);
  // The example refuses uploads over UPLOAD_MAX_BYTES with 413: an answer only the loaded module can give.
  const r = await run(
    [
      'hooks',
      'test',
      'pre-create',
      '--hooks-module',
      'hooks/examples/validate-upload.ts',
      '--size',
      '2048',
      '--data-dir',
      dataDir,
    ],
    { UPLOAD_MAX_BYTES: '1024' },
  );
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /module:hooks\/examples\/validate-upload\.ts: answered in \d+ ms/);
  assert.match(r.stdout, /"RejectUpload": true/);
  assert.match(r.stdout, /"StatusCode": 413/);
});

// Outside a "type": "module" package a .ts file counts as CommonJS; with tsx's ESM loader alone, node
// then refused it ("Cannot require() ES Module … in a cycle").
test('a TypeScript hook module loads wherever it sits: a CommonJS project, no package.json at all, with the .ts files \
it imports', async (t) => {
  const hook = `import type { HookRequest, HookResponse } from 'tuspass/hooks';
import { tooLarge } from './rules.js';
export function preCreate(request: HookRequest): HookResponse | void {
  if (tooLarge(request.Event.Upload.Size ?? 0)) {
    return { RejectUpload: true, HTTPResponse: { StatusCode: 413, Body: 'too large' } };
  }
}
`;
  for (const packageJson of ['{ "name": "an-app", "private": true }', undefined]) {
    const project = tmpDir(t);
    if (packageJson) fs.writeFileSync(path.join(project, 'package.json'), packageJson);
    fs.writeFileSync(path.join(project, 'hooks.ts'), hook);
    fs.writeFileSync(
      path.join(project, 'rules.ts'),
      'export const tooLarge = (size: number): boolean => size > 1024;\n',
    );
    const what = packageJson ? 'in a CommonJS package' : 'in no package';
    const r = await run(
      ['hooks', 'test', 'pre-create', '--size', '2048', '--data-dir', path.join(project, 'data')],
      { HOOKS_MODULE: './hooks.ts' },
      project,
    );
    assert.equal(r.status, 0, `${what}: ${r.stderr}${r.stdout}`);
    assert.match(r.stdout, /module:\.\/hooks\.ts: answered in \d+ ms/, what);
    assert.match(r.stdout, /"StatusCode": 413/, what);
  }
});

test('a hooks directory that is not there: exit 78 naming HOOKS_DIR, no payload sent, no stack trace', async (t) => {
  const project = tmpDir(t);
  const r = await run(
    [
      'hooks',
      'test',
      'pre-create',
      '--hooks-dir',
      './hooks.d',
      '--size',
      '5000000',
      '--meta',
      'filename=a.pdf',
      '--data-dir',
      path.join(project, 'data'),
    ],
    {},
    project,
  );
  assert.equal(r.status, 78, r.stderr);
  assert.match(r.stderr, /HOOKS_DIR: \S*\/hooks\.d is not a directory/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.equal(r.stdout, '', 'nothing sent');
});

test('hooks test post-finish reaches an HTTP hook with a notice id; no hook for an event exits 1', async (t) => {
  const dataDir = tmpDir(t);
  const receiver = await startHookReceiver(t);
  const r = await run(['hooks', 'test', 'post-finish', '--data-dir', dataDir], { HOOKS_HTTP: receiver.url });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.equal(receiver.received.length, 1);
  assert.equal(receiver.received[0]!.request.Type, 'post-finish');
  assert.match(String(receiver.received[0]!.headers['hook-notice-id']), /^test-/);
  assert.ok(receiver.received[0]!.request.Event.Upload.Digests?.md5);

  const none = await run(['hooks', 'test', 'pre-finish', '--data-dir', dataDir], { HOOKS_HTTP: receiver.url });
  assert.equal(none.status, 1);
  assert.match(none.stderr, /no configured hook takes pre-finish/);
});

test('unknown events are refused by name, in hooks test and at start', () => {
  const a = spawnSync(process.execPath, [BIN, 'hooks', 'test', 'pre-upload'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(a.status, 78);
  assert.match(a.stderr, /unknown hook event "pre-upload"/);
  const b = spawnSync(
    process.execPath,
    [BIN, 'start', '--port', '0', '--hooks-enabled-events', 'pre-create,post-upload'],
    { cwd: ROOT, encoding: 'utf8', env: { ...process.env, LOG_FORMAT: 'text' } },
  );
  assert.equal(b.status, 78);
  assert.match(b.stderr, /--hooks-enabled-events: unknown hook event "post-upload"/);
});
