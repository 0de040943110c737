// The upload page in a real browser (Debian's Chromium through playwright-core), used as a
// person would: pick files, pause, resume, reload and resume, download the result.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { md5, writeTestFile } from './helpers/files.ts';
import {
  bytesDone,
  leaveUnfinished,
  openPage,
  screenshotPath,
  storedUploadUrls,
  uploadItem,
  waitForBytes,
} from './helpers/page-browser.ts';
import { startStubApp } from './helpers/push-stub-app.ts';
import { startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';
import { tus } from './helpers/tus.ts';

const MB = 1024 * 1024;

test('upload through the file input: pause, resume, reload and resume, table, download md5, screenshot', async (t) => {
  const server = await startTestServer(t);
  const dir = tmpDir(t);
  // The name and description are HTML on purpose: the page must show them as text.
  const name = '<img src=x onerror="window.__xss=1">.bin';
  const file = writeTestFile(dir, name, 40 * MB, 11);
  const session = await openPage(t, server.url);
  const { page } = session;

  await page.locator('#details-fold summary').click();
  await page.fill('#field-name', 'holiday');
  await page.fill('#field-description', '<b>not bold</b>');
  await session.throttleUpload(8 * MB);
  await page.setInputFiles('#file-input', file.path);
  const item = uploadItem(page, name);
  await item.waitFor();
  await assert.doesNotReject(
    item
      .locator('.upload-stats')
      .filter({ hasText: /of 42 MB/ })
      .waitFor(),
  );

  // Pause: the bytes stop moving and the page says where it stopped.
  await waitForBytes(page, name, 4 * MB);
  await item.getByRole('button', { name: /^Pause/ }).click();
  await item
    .locator('.upload-status')
    .filter({ hasText: /^Paused at [\d.]+ MB of 42 MB$/ })
    .waitFor();
  const paused = await bytesDone(page, name);
  await page.waitForTimeout(700);
  assert.equal(await bytesDone(page, name), paused, 'nothing moves while paused');
  await page.screenshot({ path: screenshotPath('page-paused.png'), fullPage: true });

  // Resume: it continues, with speed and time left shown.
  await item.getByRole('button', { name: /^Resume/ }).click();
  await waitForBytes(page, name, paused + 4 * MB);
  assert.match(
    (await item.locator('.upload-stats').textContent()) ?? '',
    /^[\d.]+ MB of 42 MB · [\d.]+ MB\/s · \d+s left$/,
  );

  // Reload mid-upload: the server kept the bytes, and choosing the same file again resumes.
  await waitForBytes(page, name, 16 * MB);
  await page.reload();
  const stored = await storedUploadUrls(page);
  assert.equal(stored.length, 1, 'one fingerprint kept across the reload');
  const serverOffset = Number((await tus('HEAD', stored[0]!)).headers['upload-offset']);
  assert.ok(serverOffset > 0 && serverOffset < file.bytes.length, `server offset after reload: ${serverOffset}`);
  await page.setInputFiles('#file-input', file.path);
  const note = await uploadItem(page, name)
    .locator('.upload-note')
    .filter({ hasText: /^Resumed at / })
    .textContent();
  const resumedAt = Number(/^Resumed at ([\d.]+) MB of 42 MB/.exec(note ?? '')?.[1]);
  assert.ok(resumedAt > 0, `the page says it resumed: ${note}`);
  await session.throttleUpload(-1);

  // Finished: the completion service's record with a download link, and the table row.
  const done = uploadItem(page, name);
  await done.locator('.upload-status').filter({ hasText: 'Uploaded and accepted.' }).waitFor({ timeout: 30_000 });
  assert.match((await done.locator('.upload-record').textContent()) ?? '', new RegExp(`md5 ${file.md5}`));
  const row = page.locator('#completed tbody tr').filter({ hasText: file.md5 });
  await row.waitFor({ timeout: 10_000 });
  const cells = await row.locator('td').allTextContents();
  assert.equal(await row.locator('.cell-name .ellipsis').textContent(), name);
  assert.equal(cells[1], '42 MB');
  // The Details column shows where the optional details went: the form fields name and description.
  assert.equal(cells[3], 'name: holiday · description: <b>not bold</b>');
  assert.equal(await done.locator('.upload-details').textContent(), 'name: holiday · description: <b>not bold</b>');
  assert.equal(
    await page.locator('#completed img, #uploads img, #completed b').count(),
    0,
    'no markup from upload data',
  );
  assert.equal(await page.evaluate(() => (window as { __xss?: number }).__xss), undefined);

  const [download] = await Promise.all([
    page.waitForEvent('download'),
    row.getByRole('link', { name: `Download ${name}`, exact: true }).click(),
  ]);
  const downloaded = fs.readFileSync(await download.path());
  assert.equal(md5(downloaded), file.md5, 'downloaded bytes match');
  // The catalog got the pass-through fields from the form.
  const rows = (await (await fetch(`${server.url}/api/uploads`)).json()) as { fields: Record<string, string> }[];
  assert.deepEqual(rows[0]!.fields, { name: 'holiday', description: '<b>not bold</b>' });

  await page.screenshot({ path: screenshotPath('page-finished.png'), fullPage: true });
  assert.deepEqual(session.foreignRequests, [], 'nothing fetched from outside the page origin');
});

test('keyboard opens the picker, several files at once (reviewed, then uploaded), drop, the table refreshes without \
reload', async (t) => {
  const server = await startTestServer(t);
  const dir = tmpDir(t);
  const a = writeTestFile(dir, 'first.txt', 2000, 1);
  const b = writeTestFile(dir, 'second.txt', 300_000, 2);
  const { page } = await openPage(t, server.url);

  await page.focus('#drop-zone');
  const [chooser] = await Promise.all([page.waitForEvent('filechooser'), page.keyboard.press('Enter')]);
  assert.ok(chooser.isMultiple());
  await chooser.setFiles([a.path, b.path]);
  // Several files wait in the review list until asked to go.
  await page.getByRole('button', { name: 'Upload 2 files' }).click();
  for (const f of [a, b]) {
    await page.locator('#completed tbody tr').filter({ hasText: f.md5 }).waitFor({ timeout: 15_000 });
  }
  // An upload finished elsewhere (another client) shows up by polling.
  const other = writeTestFile(dir, 'elsewhere.txt', 5000, 3);
  const { create } = await import('./helpers/tus.ts');
  const url = await create(server.endpoint, other.bytes.length, { filename: 'elsewhere.txt' });
  await tus('PATCH', url, { 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' }, other.bytes);
  await page.locator('#completed tbody tr').filter({ hasText: 'elsewhere.txt' }).waitFor({ timeout: 10_000 });
  // Dropping a file on the zone uploads it too.
  const dropped = await page.evaluateHandle(() => {
    const data = new DataTransfer();
    data.items.add(new File(['dropped on the zone'], 'dropped.txt', { type: 'text/plain' }));
    return data;
  });
  await page.dispatchEvent('#drop-zone', 'drop', { dataTransfer: dropped });
  await page.locator('#completed tbody tr').filter({ hasText: 'dropped.txt' }).waitFor({ timeout: 10_000 });
  assert.equal(await page.locator('#completed tbody tr').count(), 4);
});

test('plain-words errors: offline then back online, and a rejection by the app', async (t) => {
  const app = await startStubApp(t, 422, { error: { code: 'ERR_NOT_WANTED', message: 'we only take pictures' } });
  const server = await startTestServer(t, { completionUrl: app });
  const dir = tmpDir(t);
  const file = writeTestFile(dir, 'report.pdf', 50_000);
  const session = await openPage(t, server.url);
  const { page, context } = session;

  await context.setOffline(true);
  await page.setInputFiles('#file-input', file.path);
  const item = uploadItem(page, 'report.pdf');
  await item
    .locator('.upload-status')
    .filter({ hasText: /^Cannot reach the upload server at .*files\/.*offline/ })
    .waitFor();
  assert.ok(await item.getByRole('button', { name: /^Retry/ }).isVisible());
  await page.screenshot({ path: screenshotPath('page-offline.png'), fullPage: true });

  // Back online, the page retries by itself; then the app refuses the file, and says why.
  await context.setOffline(false);
  await item
    .locator('.upload-status')
    .filter({ hasText: 'Rejected by the app (status 422): we only take pictures' })
    .waitFor({ timeout: 15_000 });
  assert.equal(await item.getByRole('button', { name: /^Retry/ }).isVisible(), false, 'no retry for a refused file');
  assert.equal(await item.getAttribute('data-state'), 'error');
});

test('the page is served with a same-origin-only content security policy', async (t) => {
  const server = await startTestServer(t);
  const res = await fetch(`${server.url}/`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'self'.*connect-src 'self'/);
  const html = await res.text();
  assert.doesNotMatch(html, /https?:\/\//, 'no absolute URLs in the page');
  const bundle = await fetch(`${server.url}/assets/app.js`);
  assert.equal(bundle.status, 200);
  assert.match(bundle.headers.get('content-type') ?? '', /javascript/);
  assert.ok(path.basename(screenshotPath('x.png')) === 'x.png');
});

test('parallel connections: the setting is remembered, a file goes up in three parts (paused and resumed), the table \
shows its md5', async (t) => {
  const server = await startTestServer(t);
  const dir = tmpDir(t);
  const file = writeTestFile(dir, 'three-parts.bin', 12 * MB + 3, 41);
  const session = await openPage(t, server.url);
  const { page } = session;
  await page.locator('#settings-fold summary').click();
  const setting = page.getByLabel('Parallel connections');
  assert.equal(await setting.inputValue(), '1', 'one stream by default');
  await setting.fill('3');
  await setting.dispatchEvent('change');
  await page.reload();
  await page.locator('#settings-fold summary').click();
  assert.equal(await page.getByLabel('Parallel connections').inputValue(), '3', 'remembered across a reload');

  const concat: string[] = [];
  page.on('request', (req) => {
    const header = req.headers()['upload-concat'];
    if (req.method() === 'POST' && header) concat.push(header.split(';')[0]!);
  });
  await session.throttleUpload(4 * MB);
  await page.setInputFiles('#file-input', file.path);
  const item = uploadItem(page, 'three-parts.bin');
  // Pause and resume mid-way: the parts continue from their offsets on the server.
  await waitForBytes(page, 'three-parts.bin', 3 * MB);
  await item.getByRole('button', { name: /^Pause/ }).click();
  await item
    .locator('.upload-status')
    .filter({ hasText: /^Paused at / })
    .waitFor();
  await item.getByRole('button', { name: /^Resume/ }).click();
  await session.throttleUpload(-1);
  await item.locator('.upload-status').filter({ hasText: 'Uploaded and accepted.' }).waitFor({ timeout: 30_000 });
  assert.match((await item.locator('.upload-record').textContent()) ?? '', new RegExp(`md5 ${file.md5}`));
  await page.locator('#completed tbody tr').filter({ hasText: file.md5 }).waitFor({ timeout: 10_000 });
  assert.deepEqual(
    concat.sort(),
    ['final', 'partial', 'partial', 'partial'],
    'three partial uploads (resumed, not created again) and one final',
  );
  const rows = (await (await fetch(`${server.url}/api/uploads`)).json()) as { md5: string }[];
  assert.deepEqual(
    rows.map((r) => r.md5),
    [file.md5],
    'one record for the whole file',
  );

  // Out-of-range values are clamped to 1-8.
  await page.getByLabel('Parallel connections').fill('50');
  await page.getByLabel('Parallel connections').dispatchEvent('change');
  assert.equal(await page.getByLabel('Parallel connections').inputValue(), '8');
});

test('an earlier upload that expired on the server: choosing the file again says so and starts over', async (t) => {
  const server = await startTestServer(t, { expireAfterMs: 2000 });
  const dir = tmpDir(t);
  const file = writeTestFile(dir, 'late.bin', 600_000, 42);
  const session = await openPage(t, server.url);
  const { page } = session;
  const stored = await leaveUnfinished(session, file, 50_000, 100_000);
  assert.equal(stored.length, 1, 'the unfinished upload is remembered');
  const deadline = Date.now() + 10_000;
  // 410 Gone once expired, 404 once the server's sweep removed it: both mean expired.
  while (![404, 410].includes((await tus('HEAD', stored[0]!)).status)) {
    assert.ok(Date.now() < deadline, 'the earlier upload expires');
    await page.waitForTimeout(200);
  }

  await session.throttleUpload(-1);
  await page.setInputFiles('#file-input', file.path);
  const item = uploadItem(page, 'late.bin');
  await item
    .locator('.upload-note')
    .filter({
      hasText: 'The earlier upload of this file expired on the server, so it started over from the beginning.',
    })
    .waitFor();
  await item.locator('.upload-status').filter({ hasText: 'Uploaded and accepted.' }).waitFor({ timeout: 15_000 });
  await page.locator('#completed tbody tr').filter({ hasText: file.md5 }).waitFor({ timeout: 10_000 });
  await page.screenshot({ path: screenshotPath('page-expired-start-over.png'), fullPage: true });
});
