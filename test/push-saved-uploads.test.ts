// The file where `tuspass push` keeps the URLs of uploads it started: safe with two pushes at
// once, private, and never a reason to refuse an upload.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { EXIT } from '../client/cli/exit-codes.ts';
import { SavedUploads } from '../client/cli/fingerprint-store.ts';
import { writeTestFile } from './helpers/files.ts';
import { runPush } from './helpers/push-run.ts';
import { startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';

const ADDS = 40;

/** A process that saves ADDS upload URLs one after the other, as many pushes would. */
function saveManyInAnotherProcess(file: string, tag: string): Promise<number | null> {
  const code = `
    import { SavedUploads } from './client/cli/fingerprint-store.ts';
    const saved = new SavedUploads(${JSON.stringify(file)});
    for (let i = 0; i < ${ADDS}; i++) {
      const upload = { size: 1, metadata: {}, creationTime: '', urlStorageKey: '', parallelUploadUrls: null };
      await saved.addUpload('${tag}-' + i, { ...upload, uploadUrl: 'http://127.0.0.1/files/${tag}-' + i });
    }`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: 'inherit' });
  return new Promise((resolve) => child.on('exit', resolve));
}

test('two processes saving upload URLs at once keep every entry', async (t) => {
  const file = path.join(tmpDir(t), 'nested', 'uploads.json');
  const codes = await Promise.all([saveManyInAnotherProcess(file, 'a'), saveManyInAnotherProcess(file, 'b')]);
  assert.deepEqual(codes, [0, 0]);
  const saved = await new SavedUploads(file).findAllUploads();
  assert.equal(saved.length, 2 * ADDS);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600, 'upload URLs are readable by their owner only');
});

test('a damaged file of saved uploads: the push still uploads, and saving works again after it', async (t) => {
  const server = await startTestServer(t);
  const dir = tmpDir(t);
  const fp = path.join(dir, 'fp.json');
  fs.writeFileSync(fp, '{"tus::half-written');
  const file = writeTestFile(dir, 'after-damage.bin', 5000, 3);

  const run = await runPush(['--endpoint', server.endpoint, file.path], fp);
  assert.equal(run.code, EXIT.OK, run.stderr);
  assert.match(run.stdout, /after-damage\.bin: completion service answered 200/);
  assert.deepEqual(JSON.parse(fs.readFileSync(fp, 'utf8')), {}, 'the finished upload is forgotten in a readable file');
});
