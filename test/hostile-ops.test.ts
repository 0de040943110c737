// Attacks on what operators see: values a client chose (file names, ids) reaching an admin
// command's terminal output.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { startTestServer } from './helpers/server.ts';
import { create } from './helpers/tus.ts';

const BIN = path.resolve('bin/tuspass.js');

function run(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.once('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

test('tuspass uploads list: a file name with terminal escapes \
and line breaks is printed inert, one row per upload', async (t) => {
  const s = await startTestServer(t);
  // Clears the operator's screen, sets the window title and adds a made-up row.
  const hostile = 'a.bin\u001b[2J\u001b]0;pwned\u0007\r\nffffffffffffffffffffffffffffffff  1  0  fake';
  await create(s.endpoint, 10, { filename: hostile });
  const r = await run(['uploads', 'list', '--data-dir', s.config.dataDir]);
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/, 'no control character but the line ends');
  assert.equal(r.stdout.trimEnd().split('\n').length, 2, r.stdout);
  assert.match(r.stdout, /a\.bin\\u001b\[2J/);
  // --json is for scripts: the name as it was given, escaped by JSON.
  const json = JSON.parse((await run(['uploads', 'list', '--data-dir', s.config.dataDir, '--json'])).stdout) as Array<{
    name: string;
  }>;
  assert.equal(json[0]!.name, hostile);
});
