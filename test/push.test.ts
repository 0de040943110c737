// `tuspass push` end to end: the real command as a child process against a real server.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { contentTypeFor } from '../client/cli/content-type.ts';
import { EXIT } from '../client/cli/exit-codes.ts';
import { checkPreviousUpload } from '../client/shared/previous-upload-check.ts';
import { createProgressDisplay } from '../client/cli/progress-display.ts';
import { md5, writeTestFile } from './helpers/files.ts';
import { readStoredUploads, storedUploadsSoFar, storeEarlierUpload } from './helpers/push-fingerprints.ts';
import { runPush, spawnPush } from './helpers/push-run.ts';
import { startStubApp } from './helpers/push-stub-app.ts';
import { startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';
import { create, patch, PATCH_TYPE, tus } from './helpers/tus.ts';

interface CatalogRow {
  id: string;
  name: string;
  size: number;
  md5: string;
  fields: Record<string, string>;
}

async function catalog(url: string): Promise<CatalogRow[]> {
  const res = await fetch(`${url}/api/uploads`);
  return (await res.json()) as CatalogRow[];
}

test('pushes several files with fields and prints each completion answer', async (t) => {
  const server = await startTestServer(t);
  const dir = tmpDir(t);
  const files = [
    writeTestFile(dir, 'a.txt', 1000, 1),
    writeTestFile(dir, 'b.bin', 3_000_000, 2),
    writeTestFile(dir, 'c.tar', 70_000, 3),
  ];
  const run = await runPush(
    [
      '--endpoint',
      server.endpoint,
      '--field',
      'description=holiday pictures',
      '--name',
      'trip',
      ...files.map((f) => f.path),
    ],
    path.join(dir, 'fp.json'),
  );

  assert.equal(run.code, EXIT.OK, run.stderr);
  for (const f of files) {
    const name = path.basename(f.path);
    assert.match(
      run.stdout,
      new RegExp(`${name.replace('.', '\\.')}: completion service answered 200: \\{.*"md5":"${f.md5}"`),
    );
    assert.match(
      run.stdout,
      new RegExp(`${name.replace('.', '\\.')}: record \\S+, md5 ${f.md5}, download ${server.url}/api/uploads/`),
    );
  }
  const rows = await catalog(server.url);
  assert.equal(rows.length, 3);
  for (const f of files) {
    const row = rows.find((r) => r.name === path.basename(f.path));
    assert.ok(row, `catalog has ${f.path}`);
    assert.equal(row.md5, f.md5);
    assert.equal(row.fields.description, 'holiday pictures');
    assert.equal(row.fields.name, 'trip');
  }
  // The fingerprints of finished uploads are forgotten: pushing again is a new upload.
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, 'fp.json'), 'utf8')), {});
});

test('a push killed mid-way resumes from the server offset on the next run, and the md5 matches', async (t) => {
  const server = await startTestServer(t);
  const dir = tmpDir(t);
  const fp = path.join(dir, 'fp.json');
  const size = 200 * 1024 * 1024;
  const file = writeTestFile(dir, 'big.bin', size, 7);
  // Small chunks make the offset advance in steps we can catch before the end.
  const args = ['--endpoint', server.endpoint, '--chunk-size', '256k', file.path];

  const first = spawnPush(args, fp);
  let uploadUrl: string | undefined;
  let offset = 0;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    await sleep(20);
    if (!uploadUrl && fs.existsSync(fp)) {
      const entry = Object.values(JSON.parse(fs.readFileSync(fp, 'utf8')) as Record<string, { uploadUrl: string }>)[0];
      uploadUrl = entry?.uploadUrl;
    }
    if (!uploadUrl) continue;
    offset = Number((await tus('HEAD', uploadUrl)).headers['upload-offset']);
    if (offset > 10 * 1024 * 1024) break;
  }
  first.child.kill('SIGKILL');
  const killed = await first.done;
  assert.equal(killed.signal, 'SIGKILL');
  assert.ok(uploadUrl, 'the first run stored its upload URL');

  const atRestart = Number((await tus('HEAD', uploadUrl)).headers['upload-offset']);
  assert.ok(atRestart > 0 && atRestart < size, `server offset at restart ${atRestart} is between 0 and ${size}`);

  const second = await runPush(['--endpoint', server.endpoint, file.path], fp);
  assert.equal(second.code, EXIT.OK, second.stderr);
  assert.match(second.stdout, /resuming big\.bin at \d+(\.\d)? MB of 210 MB/);
  const sent = /big\.bin: sent (\d+(?:\.\d)?) MB/.exec(second.stdout);
  assert.ok(sent && Number(sent[1]) < 210, `second run sent only the rest: ${sent?.[0]}`);
  const rows = await catalog(server.url);
  assert.equal(rows.length, 1);
  assert.equal(rows[0]!.md5, file.md5);
  const downloaded = Buffer.from(await (await fetch(`${server.url}/api/uploads/${rows[0]!.id}/file`)).arrayBuffer());
  assert.equal(md5(downloaded), file.md5);
});

test('Ctrl-C stops without deleting: exit 130 and a hint to run again', async (t) => {
  const server = await startTestServer(t);
  const dir = tmpDir(t);
  const fp = path.join(dir, 'fp.json');
  const file = writeTestFile(dir, 'stop.bin', 100 * 1024 * 1024, 5);
  const run = spawnPush(['--endpoint', server.endpoint, '--chunk-size', '256k', file.path], fp);
  const deadline = Date.now() + 30_000;
  while (!fs.existsSync(fp) && Date.now() < deadline) await sleep(20);
  run.child.kill('SIGINT');
  const ended = await run.done;
  assert.equal(ended.code, EXIT.INTERRUPTED, ended.stderr);
  assert.match(ended.stderr, /stop\.bin: interrupted; run the same command again to resume/);
  assert.equal(
    Object.keys(JSON.parse(fs.readFileSync(fp, 'utf8'))).length,
    1,
    'the upload URL is kept for the next run',
  );
});

test('--no-resume starts over instead of resuming', async (t) => {
  const server = await startTestServer(t);
  const dir = tmpDir(t);
  const fp = path.join(dir, 'fp.json');
  const file = writeTestFile(dir, 'again.bin', 100_000, 9);
  // An earlier, unfinished upload of this file, as a killed run leaves it (tus-js-client's Node fingerprint).
  const earlier = await create(server.endpoint, 100_000, { filename: 'again.bin' });
  await tus('PATCH', earlier, { ...PATCH_TYPE, 'Upload-Offset': '0' }, file.bytes.subarray(0, 5000));
  const fingerprint = [
    'node-file',
    path.resolve(file.path),
    100_000,
    fs.statSync(file.path).mtime.getTime(),
    server.endpoint,
  ].join('-');
  fs.writeFileSync(
    fp,
    JSON.stringify({
      [`tus::${fingerprint}::1`]: {
        uploadUrl: earlier,
        size: 100_000,
        metadata: {},
        creationTime: new Date().toISOString(),
      },
    }),
  );

  const run = await runPush(['--endpoint', server.endpoint, '--no-resume', file.path], fp);
  assert.equal(run.code, EXIT.OK, run.stderr);
  assert.doesNotMatch(run.stdout, /resuming/);
  assert.match(run.stdout, /again\.bin: sent 100 kB/);
  assert.equal((await tus('HEAD', earlier)).headers['upload-offset'], '5000', 'the earlier upload was left alone');
  assert.equal((await catalog(server.url))[0]?.md5, file.md5);
});

test('a stopped server: a clear message and the unreachable exit code', async (t) => {
  const server = await startTestServer(t);
  await server.close();
  const dir = tmpDir(t);
  const file = writeTestFile(dir, 'x.bin', 1000);
  const started = Date.now();
  const run = await runPush(['--endpoint', server.endpoint, '--retry-for', '1', file.path], path.join(dir, 'fp.json'));
  assert.equal(run.code, EXIT.UNREACHABLE);
  assert.match(
    run.stderr,
    new RegExp(
      `x\\.bin: cannot reach the upload server at ${server.endpoint} \\(ECONNREFUSED\\) \\(gave up after retrying ` +
        'for 1s\\)',
    ),
  );
  assert.ok(Date.now() - started < 10_000, 'gave up about when --retry-for said');
});

test('--host/--port/--schema build the endpoint (defaults 127.0.0.1, 1080, http)', async (t) => {
  const server = await startTestServer(t);
  const dir = tmpDir(t);
  const file = writeTestFile(dir, 'hp.bin', 5000);
  const port = new URL(server.url).port;
  const run = await runPush(
    ['--host', '127.0.0.1', '--port', port, '--schema', 'http', file.path],
    path.join(dir, 'fp.json'),
  );
  assert.equal(run.code, EXIT.OK, run.stderr);
  assert.match(run.stdout, new RegExp(`uploading hp\\.bin \\(5\\.0 kB\\) to http://127\\.0\\.0\\.1:${port}/files/`));
});

test('output when stdout is not a terminal: plain lines, no carriage returns or escapes', async (t) => {
  const server = await startTestServer(t);
  const dir = tmpDir(t);
  const file = writeTestFile(dir, 'plain.bin', 2_000_000);
  const run = await runPush(['--endpoint', server.endpoint, file.path], path.join(dir, 'fp.json'));
  assert.equal(run.code, EXIT.OK, run.stderr);
  assert.doesNotMatch(run.stdout, /[\r\x1b]/);
  const lines = run.stdout.trimEnd().split('\n');
  assert.match(lines[0]!, /^uploading plain\.bin \(2\.0 MB\) to http:\/\/127\.0\.0\.1:\d+\/files\/$/);
  assert.ok(
    lines.some((l) => /^plain\.bin: \d+%  [\d.]+ [kMG]?B of 2\.0 MB  /.test(l)),
    run.stdout,
  );
  assert.match(run.stdout, /^plain\.bin: sent 2\.0 MB in [\d.]+s \([\d.]+ [kMG]?B\/s\)$/m);

  // tus-js-client reports the last byte twice (sent, then acknowledged); a small file got both printed.
  const small = await runPush(
    ['--endpoint', server.endpoint, writeTestFile(dir, 'small.bin', 5000).path],
    path.join(dir, 'fp.json'),
  );
  assert.equal(
    small.stdout.split('\n').filter((l) => /^small\.bin: 100%/.test(l)).length,
    1,
    `the 100% line once:\n${small.stdout}`,
  );

  const quiet = await runPush(['--endpoint', server.endpoint, '--quiet', file.path], path.join(dir, 'fp.json'));
  assert.equal(quiet.code, EXIT.OK, quiet.stderr);
  assert.match(quiet.stdout, /^plain\.bin: completion service answered 200: \{.*\}\n$/);
});

test('the terminal bar keeps its width as speed and time left come and go, and never reads "1000 MB"', async () => {
  let written = '';
  const display = createProgressDisplay('tty', 'big.iso', {
    write: (s: string) => {
      written += s;
    },
    columns: 100,
  });
  // Each step after the bar's redraw interval (100 ms), so each one is drawn.
  for (const done of [0, 412_000_000, 999_960_000, 1_000_000_000]) {
    display.update(done, 1_000_000_000);
    await new Promise((r) => setTimeout(r, 150));
  }
  display.end();
  const drawn = written
    .split('\r')
    .filter(Boolean)
    .map((d) => d.replace(/\x1b\[K\n?$/, ''));
  assert.equal(drawn.length, 4, JSON.stringify(written));
  assert.deepEqual(new Set(drawn.map((d) => d.length)).size, 1, `one width:\n${drawn.join('\n')}`);
  assert.ok(
    drawn.every((d) => !/1000 [kMG]B/.test(d)),
    drawn.join('\n'),
  );
  assert.match(drawn[2]!, /1\.0 GB of 1\.0 GB/);
});

test('on a terminal the progress bar redraws one line', () => {
  let written = '';
  const display = createProgressDisplay('tty', 'big.iso', {
    write: (s: string) => {
      written += s;
    },
    columns: 100,
  });
  display.update(412_000_000, 1_000_000_000);
  display.end();
  assert.match(written, /^\rbig\.iso \[#+-+\]  41%  412 MB of 1\.0 GB  .*\x1b\[K\n$/);
});

test('a missing local file: its exit code, and nothing is sent', async (t) => {
  const server = await startTestServer(t);
  const dir = tmpDir(t);
  const good = writeTestFile(dir, 'good.bin', 1000);
  const missing = path.join(dir, 'missing.bin');
  const run = await runPush(['--endpoint', server.endpoint, good.path, missing, dir], path.join(dir, 'fp.json'));
  assert.equal(run.code, EXIT.LOCAL_FILE);
  assert.match(run.stderr, new RegExp(`cannot read ${missing.replace(/[.]/g, '\\.')}: no such file`));
  assert.match(run.stderr, /not a regular file/);
  assert.deepEqual(await catalog(server.url), []);
});

test("rejected by the completion service: the app's message and its exit code", async (t) => {
  const app = await startStubApp(t, 422, { error: { code: 'ERR_NOT_WANTED', message: 'we only take pictures' } });
  const server = await startTestServer(t, { completionUrl: app });
  const dir = tmpDir(t);
  const file = writeTestFile(dir, 'doc.bin', 10_000);
  const run = await runPush(['--endpoint', server.endpoint, '--retry-for', '2', file.path], path.join(dir, 'fp.json'));
  assert.equal(run.code, EXIT.REJECTED_BY_APP, run.stderr);
  assert.match(run.stderr, /doc\.bin: rejected by the app \(status 422\): we only take pictures/);
});

test('completion service down: uploaded, the pending exit code', async (t) => {
  const closed = await startTestServer(t);
  await closed.close();
  const server = await startTestServer(t, { completionUrl: `${closed.url}/complete/` });
  const dir = tmpDir(t);
  const file = writeTestFile(dir, 'later.bin', 10_000);
  const run = await runPush(['--endpoint', server.endpoint, file.path], path.join(dir, 'fp.json'));
  assert.equal(run.code, EXIT.COMPLETION_PENDING, run.stderr);
  assert.match(run.stderr, /later\.bin: uploaded, but the completion service did not answer yet/);
});

test('rejected by the upload server (file too large): its exit code', async (t) => {
  const server = await startTestServer(t, { maxSize: 1000 });
  const dir = tmpDir(t);
  const file = writeTestFile(dir, 'huge.bin', 5000);
  const run = await runPush(['--endpoint', server.endpoint, file.path], path.join(dir, 'fp.json'));
  assert.equal(run.code, EXIT.REJECTED_BY_SERVER, run.stderr);
  assert.match(run.stderr, /huge\.bin: file too large for the server/);
});

test('a bad command line: the usage exit code and every problem named', async (t) => {
  const dir = tmpDir(t);
  const run = await runPush(['--port', 'abc', '--field', 'novalue', '--chunk-size', 'lots'], path.join(dir, 'fp.json'));
  assert.equal(run.code, EXIT.USAGE);
  assert.match(run.stderr, /--port must be 1-65535, got "abc"/);
  assert.match(run.stderr, /--field must be KEY=VALUE, got "novalue"/);
  assert.match(run.stderr, /--chunk-size must be a size/);
  assert.match(run.stderr, /no FILE given/);
});

const MiB = 1024 * 1024;

/** Bytes the server holds of a stored upload: its one URL, or the sum over a parallel upload's parts. */
async function serverOffset(entry: {
  uploadUrl?: string | null;
  parallelUploadUrls?: (string | null)[] | null;
}): Promise<number> {
  const urls = entry.parallelUploadUrls ?? [entry.uploadUrl];
  let sum = 0;
  for (const url of urls) if (url) sum += Number((await tus('HEAD', url)).headers['upload-offset']) || 0;
  return sum;
}

test('--parallel 4: the file goes as four parts, one catalog record with the md5 of the whole', async (t) => {
  const server = await startTestServer(t);
  const dir = tmpDir(t);
  const file = writeTestFile(dir, 'par.bin', 48 * MiB + 7, 21);
  const run = await runPush(['--endpoint', server.endpoint, '--parallel', '4', file.path], path.join(dir, 'fp.json'));
  assert.equal(run.code, EXIT.OK, run.stderr);
  assert.match(run.stdout, new RegExp(`par\\.bin: record \\S+, md5 ${file.md5}`));
  const rows = await catalog(server.url);
  assert.equal(rows.length, 1, 'one record, none for the parts');
  assert.equal(rows[0]!.md5, file.md5);
  assert.equal(rows[0]!.size, file.bytes.length);
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, 'fp.json'), 'utf8')), {});
});

test('--parallel: a push killed mid-way resumes its parts \
on the next run (whatever --parallel says now)', async (t) => {
  const server = await startTestServer(t);
  const dir = tmpDir(t);
  const fp = path.join(dir, 'fp.json');
  const file = writeTestFile(dir, 'parts.bin', 48 * MiB, 22);
  const first = spawnPush(['--endpoint', server.endpoint, '--parallel', '4', '--chunk-size', '256k', file.path], fp);
  // tus-js-client stores the parts' URLs (parallelUploadUrls) once every part has one.
  let held = 0;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    await sleep(20);
    const entry = storedUploadsSoFar(fp)[0];
    if (!entry?.parallelUploadUrls) continue;
    held = await serverOffset(entry);
    if (held > 8 * MiB) break;
  }
  first.child.kill('SIGKILL');
  await first.done;
  const entry = readStoredUploads(fp)[0];
  assert.equal(entry?.parallelUploadUrls?.length, 4, 'four part URLs stored');
  const atRestart = await serverOffset(entry!);
  assert.ok(atRestart > 0 && atRestart < file.bytes.length, `parts hold ${atRestart} bytes at restart`);

  const second = await runPush(['--endpoint', server.endpoint, file.path], fp);
  assert.equal(second.code, EXIT.OK, second.stderr);
  assert.match(second.stdout, /resuming parts\.bin at [\d.]+ MB of 50 MB \(4 parallel parts, as the earlier run\)/);
  assert.doesNotMatch(second.stdout, /starting over/);
  const sent = /parts\.bin: sent ([\d.]+) MB/.exec(second.stdout);
  assert.ok(sent && Number(sent[1]) < 50, `second run sent only the rest: ${sent?.[0]}`);
  const rows = await catalog(server.url);
  assert.equal(rows.length, 1);
  assert.equal(rows[0]!.md5, file.md5);
});

test('--parallel must be a whole number from 1 to 16: the usage exit code otherwise', async (t) => {
  const dir = tmpDir(t);
  const file = writeTestFile(dir, 'p.bin', 10);
  for (const bad of ['0', '17', '2.5', 'four', '-1']) {
    const run = await runPush(
      ['--endpoint', 'http://127.0.0.1:9/files/', `--parallel=${bad}`, file.path],
      path.join(dir, 'fp.json'),
    );
    assert.equal(run.code, EXIT.USAGE, `--parallel ${bad}`);
    assert.match(
      run.stderr,
      new RegExp(`--parallel must be a whole number from 1 to 16, got "${bad.replace('.', '\\.')}"`),
    );
  }
});

test('an earlier upload that expired on the server (410, or \
404 once swept): push says so and starts over', async (t) => {
  const server = await startTestServer(t, { expireAfterMs: 1500 });
  const dir = tmpDir(t);
  const fp = path.join(dir, 'fp.json');
  const gone = writeTestFile(dir, 'gone.bin', 300_000, 31);
  const swept = writeTestFile(dir, 'swept.bin', 200_000, 32);
  const parted = writeTestFile(dir, 'parted.bin', 400_000, 33);
  // Earlier, unfinished uploads as killed runs leave them: a single one and a parallel one.
  const earlier = await create(server.endpoint, 300_000, { filename: 'gone.bin' });
  await patch(earlier, 0, gone.bytes.subarray(0, 5000));
  storeEarlierUpload(fp, gone.path, server.endpoint, { uploadUrl: earlier });
  const earlierSwept = await create(server.endpoint, 200_000, { filename: 'swept.bin' });
  storeEarlierUpload(fp, swept.path, server.endpoint, { uploadUrl: earlierSwept });
  const parts = [];
  for (const size of [200_000, 200_000]) {
    const res = await tus('POST', server.endpoint, { 'Upload-Length': String(size), 'Upload-Concat': 'partial' });
    parts.push(new URL(res.headers.location!, server.endpoint).toString());
  }
  storeEarlierUpload(fp, parted.path, server.endpoint, { parallelUploadUrls: parts });

  // The server's sweep (every second here) turns 410 Gone into 404 at a moment we do not
  // control; both mean expired (the 410 case alone is checked with a stub below).
  const deadline = Date.now() + 10_000;
  for (const url of [earlier, earlierSwept, ...parts]) {
    while (![404, 410].includes((await tus('HEAD', url)).status)) {
      assert.ok(Date.now() < deadline, `${url} expires`);
      await sleep(100);
    }
  }

  const run = await runPush(['--endpoint', server.endpoint, gone.path, swept.path, parted.path], fp);
  assert.equal(run.code, EXIT.OK, run.stderr);
  for (const name of ['gone.bin', 'swept.bin', 'parted.bin']) {
    assert.match(
      run.stdout,
      new RegExp(`the earlier upload of ${name.replace('.', '\\.')} expired on the server; starting over`),
    );
  }
  assert.doesNotMatch(run.stdout, /resuming/);
  const rows = await catalog(server.url);
  for (const f of [gone, swept, parted]) assert.equal(rows.find((r) => r.name === path.basename(f.path))?.md5, f.md5);
  assert.deepEqual(readStoredUploads(fp), [], 'the expired entries are forgotten');
});

test('the check before a resume: 410 and 404 mean expired, other \
4xx gone, offsets of parts summed, no answer unknown', async () => {
  const answer =
    (status: number, offset = 0, length = 10) =>
    async () =>
      new Response(null, { status, headers: { 'Upload-Offset': String(offset), 'Upload-Length': String(length) } });
  const stored = (urls: string[]) => ({
    size: 20,
    metadata: {},
    creationTime: '',
    urlStorageKey: 'k',
    uploadUrl: urls.length === 1 ? urls[0]! : null,
    parallelUploadUrls: urls.length > 1 ? urls : null,
  });
  assert.deepEqual(await checkPreviousUpload(stored(['http://x/a']), answer(410)), {
    kind: 'gone',
    status: 410,
    expired: true,
  });
  assert.deepEqual(await checkPreviousUpload(stored(['http://x/a']), answer(404)), {
    kind: 'gone',
    status: 404,
    expired: true,
  });
  assert.deepEqual(await checkPreviousUpload(stored(['http://x/a']), answer(403)), {
    kind: 'gone',
    status: 403,
    expired: false,
  });
  assert.deepEqual(await checkPreviousUpload(stored(['http://x/a', 'http://x/b']), answer(200, 4, 10)), {
    kind: 'resumable',
    offset: 8,
    length: 20,
    parts: 2,
  });
  assert.deepEqual(await checkPreviousUpload(stored(['http://x/a']), answer(503)), { kind: 'unknown' });
  assert.deepEqual(
    await checkPreviousUpload(stored(['http://x/a']), async () => {
      throw new TypeError('fetch failed');
    }),
    { kind: 'unknown' },
  );
});

test('the type sent for a pushed file comes from its extension, \
whatever its case; unknown ones are octet-stream', () => {
  assert.equal(contentTypeFor('/photos/IMG_0001.HEIC'), 'image/heic');
  assert.equal(contentTypeFor('notes.md'), 'text/markdown');
  assert.equal(contentTypeFor('backup.tgz'), 'application/gzip');
  assert.equal(contentTypeFor('disk.iso'), 'application/x-iso9660-image');
  assert.equal(contentTypeFor('data.unknownext'), 'application/octet-stream');
  assert.equal(contentTypeFor('Makefile'), 'application/octet-stream');
});
