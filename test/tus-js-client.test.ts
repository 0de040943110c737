// tus-js-client in Node against the real server: a whole upload, and one interrupted mid-way,
// continued after a server restart from the server's offset, with the md5 checked against the source.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import * as tus from 'tus-js-client';
import { md5OfFile, writeTestFile } from './helpers/files.ts';
import { startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';

const MiB = 1024 * 1024;

interface Outcome {
  url: string;
  body: string;
  completion: string | undefined;
}

function send(
  file: string,
  endpoint: string,
  extra: Partial<tus.UploadOptions> = {},
): { upload: tus.Upload; done: Promise<Outcome> } {
  let upload!: tus.Upload;
  const done = new Promise<Outcome>((resolve, reject) => {
    upload = new tus.Upload(fs.createReadStream(file), {
      endpoint,
      chunkSize: 4 * MiB,
      retryDelays: [],
      metadata: { filename: 'client.bin', filetype: 'application/octet-stream' },
      onSuccess: ({ lastResponse }) =>
        resolve({
          url: upload.url!,
          body: lastResponse.getBody(),
          completion: lastResponse.getHeader('Tuspass-Completion'),
        }),
      onError: reject,
      ...extra,
    });
    upload.start();
  });
  return { upload, done };
}

test('tus-js-client uploads a file; the completion answer and the catalog carry its md5', async (t) => {
  const s = await startTestServer(t);
  const file = writeTestFile(tmpDir(t), 'whole.bin', 24 * MiB + 123);
  const { done } = send(file.path, s.endpoint);
  const outcome = await done;
  assert.equal(outcome.completion, 'delivered');
  const answer = JSON.parse(outcome.body);
  assert.equal(answer.md5, file.md5);
  const id = outcome.url.split('/').pop()!;
  assert.equal(await md5OfFile(s.store.filePath(id)), file.md5);
  const download = Buffer.from(await (await fetch(`${s.url}${answer.url}`)).arrayBuffer());
  assert.ok(download.equals(file.bytes), 'downloaded bytes equal the source');
});

test('an upload interrupted mid-way resumes after a server restart and ends with the right md5', async (t) => {
  const dataDir = tmpDir(t);
  const file = writeTestFile(tmpDir(t), 'resume.bin', 40 * MiB, 7);
  let s = await startTestServer(t, { dataDir });
  const first = send(file.path, s.endpoint, { chunkSize: 2 * MiB });
  // Abort once a few chunks are in (tus-js-client sends one PATCH per chunk).
  await new Promise<void>((resolve) => {
    first.upload.options.onChunkComplete = (_size, accepted) => {
      if (accepted >= 10 * MiB) resolve();
    };
  });
  await first.upload.abort();
  const url = first.upload.url!;
  const port = Number(new URL(s.url).port);
  await s.close();

  s = await startTestServer(t, { dataDir, port });
  const head = await fetch(url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
  const offset = Number(head.headers.get('upload-offset'));
  assert.ok(offset >= 10 * MiB && offset < file.bytes.length, `resumes from ${offset}, not from 0`);

  let firstProgress = -1;
  const second = send(file.path, s.endpoint, {
    uploadUrl: url,
    onProgress: (sent) => {
      if (firstProgress < 0) firstProgress = sent;
    },
  });
  const outcome = await second.done;
  assert.equal(outcome.url, url, 'same upload resource');
  assert.ok(firstProgress >= offset, 'the client continued from the server offset');
  assert.equal(JSON.parse(outcome.body).md5, file.md5);
  assert.equal(await md5OfFile(s.store.filePath(url.split('/').pop()!)), file.md5);
});

test('tus-js-client parallelUploads: 4 partials concatenated into one upload with the right md5', async (t) => {
  const s = await startTestServer(t);
  const file = writeTestFile(tmpDir(t), 'parallel.bin', 48 * MiB + 5, 11);
  const outcome = await send(file.path, s.endpoint, { parallelUploads: 4, chunkSize: 8 * MiB }).done;
  assert.equal(outcome.completion, 'delivered');
  assert.equal(JSON.parse(outcome.body).md5, file.md5);
  const list = (await (await fetch(`${s.url}/api/uploads`)).json()) as Array<Record<string, unknown>>;
  assert.equal(list.length, 1, 'one record for the whole file, none for the partials');
  assert.equal(list[0]!.size, file.bytes.length);
  assert.equal(await md5OfFile(String(list[0]!.path)), file.md5);
  const left = fs.readdirSync(s.config.storeDir).filter((f) => !f.includes('.'));
  assert.equal(left.length, 1, 'partials removed after concatenation');
});
