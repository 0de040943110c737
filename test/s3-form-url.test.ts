// S3_FORM_URL_TTL: the completion form of an upload in S3 carries `<field>.url`, a presigned GET URL
// of the object, against a real S3 server (Ceph's radosgw, started for this file): a plain HTTP client
// fetches the object's bytes with it; radosgw refuses it once expired or when any part of it is
// changed; a metadata key cannot stand in for it; our completion service accepts the form and checks
// the field's shape.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { parseCompletionForm } from '../server/complete-form/read.ts';
import { md5, patternBytes } from './helpers/files.ts';
import { s3Settings, startS3Server } from './helpers/s3-server.ts';
import { recordsWhenPresent, startTestServer } from './helpers/server.ts';
import { create, patch } from './helpers/tus.ts';

const MiB = 2 ** 20;
const server = await startS3Server();
const skip = typeof server === 'string' ? server : false;

/** An app that takes every completion form (200) and keeps it. */
async function formsApp(t: TestContext): Promise<{ url: string; forms: URLSearchParams[] }> {
  const forms: URLSearchParams[] = [];
  const app = http.createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    forms.push(new URLSearchParams(body));
    res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
  });
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => app.close(resolve)));
  return { url: `http://127.0.0.1:${(app.address() as AddressInfo).port}/complete/`, forms };
}

/** Uploads `bytes` whole (create, one PATCH); the form the app got for it. */
async function uploaded(endpoint: string, app: { forms: URLSearchParams[] }, bytes: Buffer, meta = {}) {
  const url = await create(endpoint, bytes.length, meta);
  const last = await patch(url, 0, bytes);
  assert.equal(last.status, 200, last.body);
  const id = url.split('/').pop()!;
  const form = app.forms.find((f) => f.get('file1.id') === id);
  assert.ok(form, 'the app got the form during the last PATCH');
  return { id, form };
}

/** What a plain HTTP client (no S3 credentials) gets from `url`. */
async function fetched(url: string): Promise<{ status: number; bytes: Buffer }> {
  const res = await fetch(url);
  return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()) };
}

test('S3_FORM_URL_TTL: the form has .path s3://bucket/key and .url; a plain GET of .url gives the object; a changed \
URL is refused by S3', { skip }, async (t) => {
  if (typeof server === 'string') return;
  const app = await formsApp(t);
  const settings = s3Settings(server);
  const s = await startTestServer(t, { ...settings, completionUrl: app.url, s3FormUrlTtlMs: 3_600_000 });
  // Two parts and a last one: the object S3 assembled, not a part of it.
  const bytes = patternBytes(11 * MiB + 77, 41);
  const { id, form } = await uploaded(s.endpoint, app, bytes, { filename: 'big.bin' });
  assert.equal(form.get('file1.path'), `s3://${server.bucket}/${settings.s3Prefix}${id}`);
  assert.equal(form.get('file1.md5'), md5(bytes));
  const url = form.get('file1.url')!;
  assert.match(url, /X-Amz-Signature=[0-9a-f]{64}/);
  assert.match(url, /X-Amz-Expires=3600\b/);
  const got = await fetched(url);
  assert.equal(got.status, 200);
  assert.equal(md5(got.bytes), md5(bytes));

  // Any change is refused: the signature, the object's key, a longer life.
  const signature = /X-Amz-Signature=([0-9a-f]{64})/.exec(url)![1]!;
  const flipped = `${signature.slice(0, -1)}${signature.endsWith('0') ? '1' : '0'}`;
  for (const tampered of [
    url.replace(signature, flipped),
    url.replace(`${settings.s3Prefix}${id}`, `${settings.s3Prefix}${id.replace(/.$/, (c) => (c === 'a' ? 'b' : 'a'))}`),
    url.replace('X-Amz-Expires=3600', 'X-Amz-Expires=604800'),
    url.replace(/[?&]X-Amz-Signature=[0-9a-f]{64}/, ''),
  ]) {
    assert.notEqual(tampered, url);
    assert.equal((await fetched(tampered)).status, 403, tampered);
  }
});

test('S3_FORM_URL_TTL: a URL past its time is refused by S3', { skip }, async (t) => {
  if (typeof server === 'string') return;
  const app = await formsApp(t);
  const s = await startTestServer(t, { ...s3Settings(server), completionUrl: app.url, s3FormUrlTtlMs: 1000 });
  const { form } = await uploaded(s.endpoint, app, patternBytes(300_000, 42));
  const url = form.get('file1.url')!;
  assert.match(url, /X-Amz-Expires=1\b/);
  await new Promise((resolve) => setTimeout(resolve, 2500));
  assert.equal((await fetched(url)).status, 403);
});

test('S3: without S3_FORM_URL_TTL no .url; a metadata key file1.url never passes for one, whatever PASS_FIELDS', {
  skip,
}, async (t) => {
  if (typeof server === 'string') return;
  const app = await formsApp(t);
  const off = await startTestServer(t, { ...s3Settings(server), completionUrl: app.url, passFields: /.*/ });
  const evil = { 'file1.url': 'https://evil.example/', 'x.url': 'https://evil.example/' };
  const { form } = await uploaded(off.endpoint, app, patternBytes(1000, 43), evil);
  assert.equal(form.get('file1.url'), null);
  assert.equal(form.get('x.url'), null);

  const on = await startTestServer(t, {
    ...s3Settings(server),
    completionUrl: app.url,
    passFields: /.*/,
    s3FormUrlTtlMs: 60_000,
  });
  const second = await uploaded(on.endpoint, app, patternBytes(1000, 44), evil);
  assert.deepEqual(second.form.getAll('file1.url').length, 1);
  assert.doesNotMatch(second.form.get('file1.url')!, /evil/);
  assert.equal((await fetched(second.form.get('file1.url')!)).status, 200);
});

test('S3_FORM_URL_TTL with our own completion service: the form with .url is recorded, the record keeps no URL of \
S3', { skip }, async (t) => {
  if (typeof server === 'string') return;
  const s = await startTestServer(t, { ...s3Settings(server), s3FormUrlTtlMs: 60_000 });
  const bytes = patternBytes(2000, 45);
  const url = await create(s.endpoint, bytes.length);
  assert.equal((await patch(url, 0, bytes)).status, 200);
  const [record] = await recordsWhenPresent(s.url, 1, 30_000);
  assert.equal(record!.md5, md5(bytes));
  assert.doesNotMatch(JSON.stringify(record), /X-Amz-/);
});

test("the form's reader takes .url when it is an http(s) URL, and refuses any other", () => {
  const form = (url: string) =>
    new URLSearchParams({
      'file1.path': 's3://b/k',
      'file1.size': '1',
      'file1.md5': 'a'.repeat(32),
      'file1.id': 'k',
      'file1.url': url,
    });
  assert.equal(
    parseCompletionForm(form('https://s3.example/b/k?X-Amz-Signature=1')).url,
    'https://s3.example/b/k?X-Amz-Signature=1',
  );
  for (const bad of ['javascript:alert(1)', 'file:///etc/passwd', '/relative', '//host/x', 'https:/x'])
    assert.throws(() => parseCompletionForm(form(bad)), /ERR_FORM_FIELD_INVALID|file1\.url/);
  const none = parseCompletionForm(
    new URLSearchParams({ 'file1.path': '/x', 'file1.size': '1', 'file1.md5': 'a'.repeat(32), 'file1.id': 'k' }),
  );
  assert.equal('url' in none, false);
});
