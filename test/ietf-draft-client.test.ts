// tus-js-client speaking the IETF draft (`protocol: 'ietf-draft-03'` sends interop version 5,
// `'ietf-draft-05'` version 6) against the real server: whole uploads, an upload aborted at about
// 40% and resumed through its fingerprint and stored URL, files in parallel; md5 in the catalog.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import * as tus from 'tus-js-client';
import { writeTestFile } from './helpers/files.ts';
import { recordsWhenPresent, startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';

const MiB = 1024 * 1024;
type Protocol = 'ietf-draft-03' | 'ietf-draft-05';
/** tus-js-client's option (its type declarations do not list it yet). */
const speaking = (protocol: Protocol) => ({ protocol }) as Partial<tus.UploadOptions>;

/** URL storage in memory: what a page's localStorage keeps between sessions. */
class MemoryUrlStorage implements tus.UrlStorage {
  private readonly uploads = new Map<string, tus.PreviousUpload & { fingerprint: string }>();
  private next = 0;
  async findAllUploads() {
    return [...this.uploads.values()];
  }
  async findUploadsByFingerprint(fingerprint: string) {
    return [...this.uploads.values()].filter((u) => u.fingerprint === fingerprint);
  }
  async removeUpload(key: string) {
    this.uploads.delete(key);
  }
  async addUpload(fingerprint: string, upload: tus.PreviousUpload) {
    const key = `k${this.next++}`;
    this.uploads.set(key, { ...upload, fingerprint, urlStorageKey: key });
    return key;
  }
}

function send(
  protocol: Protocol,
  file: string,
  endpoint: string,
  extra: Partial<tus.UploadOptions> = {},
): { upload: tus.Upload; done: Promise<{ url: string; body: string; status: number }> } {
  let upload!: tus.Upload;
  const done = new Promise<{ url: string; body: string; status: number }>((resolve, reject) => {
    upload = new tus.Upload(fs.createReadStream(file), {
      endpoint,
      ...speaking(protocol),
      chunkSize: 4 * MiB,
      uploadSize: fs.statSync(file).size,
      retryDelays: [],
      metadata: { filename: `${protocol}.bin`, filetype: 'application/octet-stream' },
      onSuccess: ({ lastResponse }) =>
        resolve({ url: upload.url!, body: lastResponse.getBody(), status: lastResponse.getStatus() }),
      onError: reject,
      ...extra,
    });
    upload.start();
  });
  return { upload, done };
}

for (const protocol of ['ietf-draft-03', 'ietf-draft-05'] as const) {
  test(`tus-js-client ${protocol}: one upload of 1 MiB and one \
of 100 MiB; md5 in the answer and the catalog`, async (t) => {
    const s = await startTestServer(t);
    const dir = tmpDir(t);
    const small = writeTestFile(dir, 'small.bin', MiB, 3);
    const large = writeTestFile(dir, 'large.bin', 100 * MiB + 17, 4);
    for (const file of [small, large]) {
      const outcome = await send(protocol, file.path, s.endpoint).done;
      assert.equal(JSON.parse(outcome.body).md5, file.md5);
    }
    const records = await recordsWhenPresent(s.url, 2);
    assert.deepEqual(records.map((r) => r.md5).sort(), [small.md5, large.md5].sort());
    assert.ok(
      records.every((r) => r.name === `${protocol}.bin`),
      'Upload-Metadata reached the catalog',
    );
  });

  test(`tus-js-client ${protocol}: aborted at about 40%, resumed from its stored URL by fingerprint`, async (t) => {
    const s = await startTestServer(t);
    const file = writeTestFile(tmpDir(t), 'resume.bin', 20 * MiB + 9, 5);
    const urlStorage = new MemoryUrlStorage();
    const common = {
      urlStorage,
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      chunkSize: 2 * MiB,
    };
    const first = send(protocol, file.path, s.endpoint, common);
    first.done.catch(() => undefined);
    await new Promise<void>((resolve) => {
      first.upload.options.onChunkComplete = (_size, accepted) => {
        if (accepted >= 0.4 * file.bytes.length) resolve();
      };
    });
    await first.upload.abort();
    const url = first.upload.url!;
    const stored = await urlStorage.findAllUploads();
    assert.equal(stored.length, 1, 'the upload URL was stored');

    // What the server holds, as a client restarting later would find it.
    const head = await fetch(url, {
      method: 'HEAD',
      headers: { 'Upload-Draft-Interop-Version': protocol === 'ietf-draft-03' ? '5' : '6' },
    });
    const offset = Number(head.headers.get('upload-offset'));
    assert.ok(offset >= 0.4 * file.bytes.length && offset < file.bytes.length, `kept ${offset} bytes`);
    let firstProgress = -1;
    const resumed = new tus.Upload(fs.createReadStream(file.path), {
      endpoint: s.endpoint,
      ...speaking(protocol),
      uploadSize: file.bytes.length,
      retryDelays: [],
      metadata: { filename: `${protocol}.bin`, filetype: 'application/octet-stream' },
      ...common,
      onProgress: (sent) => void (firstProgress < 0 && (firstProgress = sent)),
    });
    const previous = await resumed.findPreviousUploads();
    assert.equal(previous.length, 1, 'found by fingerprint');
    const outcome = await new Promise<{ url: string; body: string }>((resolve, reject) => {
      resumed.options.onSuccess = ({ lastResponse }) => resolve({ url: resumed.url!, body: lastResponse.getBody() });
      resumed.options.onError = reject;
      resumed.resumeFromPreviousUpload(previous[0]!);
      resumed.start();
    });
    assert.equal(outcome.url, url, 'the same upload resource');
    assert.ok(firstProgress >= offset, `continued from the server's offset (${firstProgress} >= ${offset})`);
    assert.equal((await urlStorage.findAllUploads()).length, 0, 'the stored URL is removed on success');
    assert.equal(JSON.parse(outcome.body).md5, file.md5);
    const [record] = await recordsWhenPresent(s.url, 1);
    assert.equal(record!.md5, file.md5);
  });

  test(`tus-js-client ${protocol}: three files in parallel`, async (t) => {
    const s = await startTestServer(t);
    const dir = tmpDir(t);
    const files = [1, 2, 3].map((i) => writeTestFile(dir, `p${i}.bin`, 6 * MiB + i, 10 + i));
    const outcomes = await Promise.all(
      files.map((f) => send(protocol, f.path, s.endpoint, { chunkSize: 2 * MiB }).done),
    );
    assert.deepEqual(
      outcomes.map((o) => JSON.parse(o.body).md5),
      files.map((f) => f.md5),
    );
    const records = await recordsWhenPresent(s.url, 3);
    assert.deepEqual(records.map((r) => r.md5).sort(), files.map((f) => f.md5).sort());
  });
}
