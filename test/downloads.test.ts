// Downloads: GET /files/<id> of a finished upload answers as /api/uploads/:id/file does (one code,
// server/http/download.ts) — without Tus-Resumable (a browser's link or curl sends none, and tusd serves
// GET without it), with Range/206/416, Accept-Ranges, validators and the file's name.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { request } from 'undici';
import { md5, patternBytes } from './helpers/files.ts';
import { recordsWhenPresent, startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';
import { create, patch } from './helpers/tus.ts';

const SIZE = 300_000;

async function finishedUpload(t: Parameters<typeof startTestServer>[0]) {
  const s = await startTestServer(t);
  const bytes = patternBytes(SIZE, 5);
  const url = await create(s.endpoint, SIZE, { filename: 'report 2024.pdf', filetype: 'application/pdf' });
  assert.equal((await patch(url, 0, bytes)).status, 200);
  const [record] = await recordsWhenPresent(s.url);
  return { s, bytes, tusUrl: url, apiUrl: `${s.url}${record!.url as string}` };
}

const body = async (res: Response) => Buffer.from(await res.arrayBuffer());

test('GET /files/<id> without Tus-Resumable: the whole file, with Accept-Ranges, its name and validators, as \
/api/uploads/:id/file', async (t) => {
  const { bytes, tusUrl, apiUrl } = await finishedUpload(t);
  for (const [route, url] of [
    ['tus', tusUrl],
    ['api', apiUrl],
  ] as const) {
    const res = await fetch(url);
    assert.equal(res.status, 200, `${route}: ${res.status}`);
    assert.equal(md5(await body(res)), md5(bytes), route);
    assert.equal(res.headers.get('accept-ranges'), 'bytes', route);
    assert.equal(res.headers.get('content-length'), String(SIZE), route);
    assert.equal(res.headers.get('content-type'), 'application/pdf', route);
    assert.equal(
      res.headers.get('content-disposition'),
      `attachment; filename="report 2024.pdf"; filename*=UTF-8''report%202024.pdf`,
      route,
    );
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff', route);
    assert.match(res.headers.get('etag') ?? '', /^W\/"[0-9a-f]+-[0-9a-f]+"$/, route);
    assert.ok(res.headers.get('last-modified'), route);
  }
});

test('ranges on both routes: 206 with Content-Range, a suffix \
range, 416 naming the size, If-Range and If-None-Match', async (t) => {
  const { bytes, tusUrl, apiUrl } = await finishedUpload(t);
  for (const [route, url] of [
    ['tus', tusUrl],
    ['api', apiUrl],
  ] as const) {
    const part = await fetch(url, { headers: { Range: 'bytes=1000-1999' } });
    assert.equal(part.status, 206, route);
    assert.equal(part.headers.get('content-range'), `bytes 1000-1999/${SIZE}`, route);
    assert.equal(part.headers.get('content-length'), '1000', route);
    assert.ok((await body(part)).equals(bytes.subarray(1000, 2000)), route);

    const tail = await fetch(url, { headers: { Range: 'bytes=-100' } });
    assert.equal(tail.status, 206, route);
    assert.ok((await body(tail)).equals(bytes.subarray(SIZE - 100)), route);

    const beyond = await fetch(url, { headers: { Range: `bytes=${SIZE}-` } });
    assert.equal(beyond.status, 416, route);
    assert.equal(beyond.headers.get('content-range'), `bytes */${SIZE}`, route);
    assert.match(await beyond.text(), /ERR_RANGE_NOT_SATISFIABLE/, route);

    const etag = (await fetch(url, { method: 'GET' }).then(async (r) => (await r.arrayBuffer(), r))).headers.get(
      'etag',
    )!;
    const sameFile = await fetch(url, { headers: { Range: 'bytes=0-9', 'If-Range': etag } });
    assert.equal(sameFile.status, 206, `${route}: If-Range naming this file keeps the range`);
    await sameFile.arrayBuffer();
    const otherFile = await fetch(url, { headers: { Range: 'bytes=0-9', 'If-Range': 'W/"0-0"' } });
    assert.equal(otherFile.status, 200, `${route}: If-Range naming another version sends it whole`);
    assert.equal((await body(otherFile)).length, SIZE, route);
    // Not fetch: for a conditional request it adds Cache-Control: no-cache, a reload that is answered whole.
    const cached = await request(url, { headers: { 'If-None-Match': etag } });
    await cached.body.dump();
    assert.equal(cached.statusCode, 304, `${route}: the client's copy is current`);
    const changed = await fetch(url, { headers: { 'If-Match': 'W/"0-0"' } });
    assert.equal(changed.status, 412, route);
    await changed.arrayBuffer();
  }
});

test('curl resumes a download of /files/<id> (-C -): no Tus-Resumable, a range from where it stopped', async (t) => {
  const { bytes, tusUrl } = await finishedUpload(t);
  const file = path.join(tmpDir(t), 'partial.pdf');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(file, bytes.subarray(0, 123_456));
  const { stdout } = await promisify(execFile)('curl', ['-sS', '-C', '-', '-o', file, '-w', '%{http_code}', tusUrl]);
  assert.equal(stdout, '206');
  const { readFileSync } = await import('node:fs');
  assert.equal(md5(readFileSync(file)), md5(bytes));
});
