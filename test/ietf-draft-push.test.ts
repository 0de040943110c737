// `tuspass push --protocol ietf`: the real command speaking the IETF draft (interop version 6).
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { EXIT } from '../client/cli/exit-codes.ts';
import { writeTestFile } from './helpers/files.ts';
import { runPush } from './helpers/push-run.ts';
import { recordsWhenPresent, startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';

test('push --protocol ietf uploads by the draft: the catalog \
has each md5; a server without the draft refuses it', async (t) => {
  const server = await startTestServer(t);
  const dir = tmpDir(t);
  const files = [writeTestFile(dir, 'a.bin', 1000, 1), writeTestFile(dir, 'b.bin', 3_000_000, 2)];
  const run = await runPush(
    ['--endpoint', server.endpoint, '--protocol', 'ietf', '--chunk-size', '1M', ...files.map((f) => f.path)],
    path.join(dir, 'fp.json'),
  );
  assert.equal(run.code, EXIT.OK, run.stderr);
  const rows = await recordsWhenPresent(server.url, 2);
  assert.deepEqual(rows.map((r) => r.md5).sort(), files.map((f) => f.md5).sort());

  const off = await startTestServer(t, { ietfDraft: false });
  const refused = await runPush(
    ['--endpoint', off.endpoint, '--protocol', 'ietf', files[0]!.path],
    path.join(dir, 'fp2.json'),
  );
  assert.notEqual(refused.code, EXIT.OK, 'the draft request is not a tus request');
});

test('push --protocol: only tus or ietf, and ietf takes no --parallel', async (t) => {
  const dir = tmpDir(t);
  const file = writeTestFile(dir, 'x.bin', 10, 1);
  const bad = await runPush(['--protocol', 'http3', file.path], path.join(dir, 'fp.json'));
  assert.equal(bad.code, EXIT.USAGE);
  assert.match(bad.stderr, /--protocol must be tus or ietf/);
  const parallel = await runPush(['--protocol', 'ietf', '--parallel', '2', file.path], path.join(dir, 'fp.json'));
  assert.equal(parallel.code, EXIT.USAGE);
  assert.match(parallel.stderr, /--parallel needs --protocol tus/);
});
