// The page's controls over several uploads, in Chromium, as Uppy's Dashboard offers them: a review
// list before uploading (remove a file, add more, then "Upload n files"; the default for several
// files, a remembered setting), pause all / resume all / cancel all with the total's speed and time
// left, Cancel asking first once bytes were sent, a "waiting to resume" entry discarded, and an
// outage (server busy with Retry-After, server gone) shown as a warning with "Retry now".
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import type { Page } from 'playwright-core';
import { writeTestFile } from './helpers/files.ts';
import {
  capture,
  leaveUnfinished,
  openPage,
  storedUploadUrls,
  uploadItem,
  waitForBytes,
} from './helpers/page-browser.ts';
import { freePort } from './helpers/ports.ts';
import { startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';
import { create, patch, tus } from './helpers/tus.ts';

const MB = 1000 * 1000;

function tableRow(page: Page, name: string) {
  return page.locator('#completed tbody tr').filter({ hasText: name });
}

/** Waits until the server no longer has the upload (DELETE runs after the page's click returns). */
async function waitUntilGone(url: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (![404, 410].includes((await tus('HEAD', url)).status)) {
    assert.ok(Date.now() < deadline, `${url} is deleted on the server`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('review list: remove a file, add more, then "Upload n files"; one file starts at once; the setting (remembered) \
says always or never', async (t) => {
  const server = await startTestServer(t);
  const dir = tmpDir(t);
  const [a, b, c, d, e, f, g, h] = ['a.txt', 'b.txt', 'c.txt', 'd.txt', 'e.txt', 'f.txt', 'g.txt', 'h.txt'].map(
    (n, i) => writeTestFile(dir, n, 1000 + i, i + 1),
  );
  const { page } = await openPage(t, server.url);
  const posts: string[] = [];
  page.on('request', (req) => {
    if (req.method() === 'POST') posts.push(req.url());
  });

  await page.setInputFiles('#file-input', [a!.path, b!.path, c!.path]);
  const review = page.getByRole('region', { name: /^Ready to upload/ });
  await review.getByRole('button', { name: 'Upload 3 files' }).waitFor();
  assert.match((await review.locator('h2').textContent()) ?? '', /3 files, 3.0 kB/);
  assert.match(
    (await review.textContent()) ?? '',
    /single file starts at once/,
    'the list says when it appears, and where to change that',
  );
  // Remove one: the focus stays in the list, on the next file's Remove.
  await review.getByRole('button', { name: 'Remove b.txt' }).click();
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Remove c.txt');
  await review.getByRole('button', { name: 'Upload 2 files' }).waitFor();
  // Add more: through the list's own button, and by dropping on the drop zone.
  const [chooser] = await Promise.all([
    page.waitForEvent('filechooser'),
    review.getByRole('button', { name: 'Add more files' }).click(),
  ]);
  await chooser.setFiles(d!.path);
  const dropped = await page.evaluateHandle(() => {
    const data = new DataTransfer();
    data.items.add(new File(['dropped on the zone'], 'from-the-drop.bin', { type: 'text/plain' }));
    return data;
  });
  await page.dispatchEvent('#drop-zone', 'drop', { dataTransfer: dropped });
  await review.getByRole('button', { name: 'Upload 4 files' }).waitFor();
  assert.deepEqual(await review.locator('li .review-name').allTextContents(), [
    'a.txt',
    'c.txt',
    'd.txt',
    'from-the-drop.bin',
  ]);
  assert.deepEqual(posts, [], 'nothing sent while the files wait');

  await review.getByRole('button', { name: 'Upload 4 files' }).click();
  assert.equal(await review.isHidden(), true);
  for (const name of ['a.txt', 'c.txt', 'd.txt', 'from-the-drop.bin'])
    await tableRow(page, name).waitFor({ timeout: 15_000 });
  const names = ((await (await fetch(`${server.url}/api/uploads`)).json()) as { name: string }[])
    .map((r) => r.name)
    .sort();
  assert.deepEqual(names, ['a.txt', 'c.txt', 'd.txt', 'from-the-drop.bin'], 'the removed file was not uploaded');

  // One file at once starts at once by default.
  await page.setInputFiles('#file-input', e!.path);
  await uploadItem(page, 'e.txt').waitFor();
  assert.equal(await review.isHidden(), true);

  // The setting: "Always" is remembered across a reload, and then one file waits too; "Remove all" empties the list.
  await page.locator('#settings-fold summary').click();
  const setting = page.getByLabel('Review before uploading');
  assert.equal(await setting.inputValue(), 'several', 'the default: review when several files are chosen');
  await setting.selectOption('always');
  await page.reload();
  await page.locator('#settings-fold summary').click();
  assert.equal(await page.getByLabel('Review before uploading').inputValue(), 'always');
  const before = posts.length;
  await page.setInputFiles('#file-input', f!.path);
  await review.getByRole('button', { name: 'Upload 1 file' }).waitFor();
  await review.getByRole('button', { name: 'Remove all' }).click();
  assert.equal(await review.isHidden(), true);
  assert.equal(
    await page.evaluate(() => document.activeElement?.id),
    'drop-zone',
    'the focus goes back to the drop zone',
  );
  assert.equal(posts.length, before, 'nothing sent for files removed from the list');

  // "Never": several files start at once.
  await page.getByLabel('Review before uploading').selectOption('never');
  await page.setInputFiles('#file-input', [g!.path, h!.path]);
  await uploadItem(page, 'g.txt').waitFor();
  await uploadItem(page, 'h.txt').waitFor();
  assert.equal(await review.isHidden(), true);
});

test('pause all, resume all, cancel all; the total shows speed and time left; Cancel asks once bytes were sent and \
then deletes them', async (t) => {
  const server = await startTestServer(t);
  const dir = tmpDir(t);
  const one = writeTestFile(dir, 'one.bin', 6 * MB, 21);
  const two = writeTestFile(dir, 'two.bin', 6 * MB, 22);
  const session = await openPage(t, server.url);
  const { page } = session;
  // Slow enough that neither finishes (about 30 s) before Cancel all, on a loaded machine too.
  await session.throttleUpload(400_000);
  await page.setInputFiles('#file-input', [one.path, two.path]);
  await page.getByRole('button', { name: 'Upload 2 files' }).click();
  await waitForBytes(page, 'one.bin', 100_000);
  await waitForBytes(page, 'two.bin', 100_000);
  await page
    .locator('#total-stats')
    .filter({ hasText: /^Total: [\d.]+ [kM]B of 12 MB · [\d.]+ [kM]B\/s · (\d+m )?\d+s left · 0 of 2 files finished$/ })
    .waitFor();

  // Pause all: both stop, the total has no speed; the button turns into Resume all under the focus.
  const pauseAll = page.getByRole('button', { name: 'Pause all' });
  await pauseAll.focus();
  await page.keyboard.press('Enter');
  for (const name of ['one.bin', 'two.bin'])
    await uploadItem(page, name)
      .locator('.upload-status')
      .filter({ hasText: /^Paused at / })
      .waitFor();
  assert.doesNotMatch((await page.locator('#total-stats').textContent()) ?? '', /\/s|left/);
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Resume all');
  await page.keyboard.press('Enter');
  for (const name of ['one.bin', 'two.bin'])
    await uploadItem(page, name)
      .locator('.upload-status')
      .filter({ hasText: /^(Resuming|Uploading)/ })
      .waitFor();
  await waitForBytes(page, 'one.bin', 300_000);
  const urls = await storedUploadUrls(page);
  assert.equal(urls.length, 2);

  // One row's Cancel, bytes sent: an in-page dialog asks; Escape and "Keep uploading" keep it going.
  const row = uploadItem(page, 'one.bin');
  await row.getByRole('button', { name: 'Cancel one.bin' }).click();
  const dialog = page.getByRole('dialog', { name: 'Cancel the upload of one.bin?' });
  await dialog.waitFor();
  assert.match((await dialog.textContent()) ?? '', /[\d.]+ [kM]B of 6.0 MB .*deleted from the server.*Pause/);
  assert.equal(
    await page.evaluate(() => document.activeElement?.textContent),
    'Keep uploading',
    'the safe choice has the focus',
  );
  const problems: string[] = [];
  await capture(page, 'cancel-question', problems);
  assert.deepEqual(problems, [], 'no accessibility violations');
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'hidden' });
  assert.equal(await row.getAttribute('data-state'), 'uploading');
  await row.getByRole('button', { name: 'Cancel one.bin' }).click();
  await dialog.getByRole('button', { name: 'Keep uploading' }).click();
  assert.equal(await row.getAttribute('data-state'), 'uploading');

  // Cancel all asks once for both, then both stop and the server deletes what they sent.
  await page.getByRole('button', { name: 'Cancel all' }).click();
  const all = page.getByRole('dialog', { name: 'Cancel 2 uploads?' });
  await all.getByRole('button', { name: 'Cancel 2 uploads' }).click();
  for (const name of ['one.bin', 'two.bin'])
    await uploadItem(page, name)
      .locator('.upload-status')
      .filter({ hasText: /^Cancelled$/ })
      .waitFor();
  for (const url of urls) await waitUntilGone(url);
  assert.equal(await page.getByRole('button', { name: 'Cancel all' }).isHidden(), true);
});

test('an entry under "Waiting to resume" can be discarded: the \
page forgets it and the server deletes its bytes', async (t) => {
  const server = await startTestServer(t);
  const dir = tmpDir(t);
  const file = writeTestFile(dir, 'left-behind.bin', 3 * MB, 31);
  const session = await openPage(t, server.url);
  const { page } = session;
  const [url] = await leaveUnfinished(session, file, 100_000, 500_000);
  assert.ok(url);

  const entry = page.locator('#waiting-list > li').filter({ hasText: 'left-behind.bin' });
  await entry.filter({ hasText: /of 3.0 MB/ }).waitFor();
  await entry.getByRole('button', { name: 'Discard left-behind.bin' }).click();
  const dialog = page.getByRole('dialog', { name: 'Discard the partly uploaded left-behind.bin?' });
  await dialog.getByRole('button', { name: 'Keep it' }).click();
  assert.equal(await entry.count(), 1, 'kept when asked to');
  await entry.getByRole('button', { name: 'Discard left-behind.bin' }).click();
  await dialog.getByRole('button', { name: 'Discard', exact: true }).click();
  await page.locator('#waiting').waitFor({ state: 'hidden' });
  assert.deepEqual(await storedUploadUrls(page), [], 'its resume URL is forgotten');
  assert.equal(
    await page.evaluate(() => document.activeElement?.id),
    'drop-zone',
    'the focus goes back to the drop zone',
  );
  await waitUntilGone(url);
  await page.reload();
  await page
    .locator('#completed-status')
    .filter({ hasText: /No completed uploads yet/ })
    .waitFor();
  assert.equal(await page.locator('#waiting').isHidden(), true, 'still gone after a reload');
});

test('an outage reads as a warning with "Retry now": the server busy (503, Retry-After) and the server gone; Cancel \
before any byte asks nothing', async (t) => {
  const port = await freePort();
  const appPort = await freePort();
  const dataDir = tmpDir(t);
  const settings = { port, dataDir, completionUrl: `http://127.0.0.1:${appPort}/complete/`, queueMax: 1 };
  const server = await startTestServer(t, settings);
  const dir = tmpDir(t);
  // One finished upload whose completion form cannot be delivered (the app is down) fills the notice queue.
  const filler = writeTestFile(dir, 'filler.bin', 1000, 40);
  const fillerUrl = await create(server.endpoint, filler.bytes.length, { filename: 'filler.bin' });
  assert.equal((await patch(fillerUrl, 0, filler.bytes)).status, 204);
  assert.equal(
    (await tus('POST', server.endpoint, { 'Upload-Length': '1' })).status,
    503,
    'the server refuses new uploads',
  );

  const busy = writeTestFile(dir, 'busy.bin', 200_000, 41);
  const session = await openPage(t, server.url, { width: 1280, height: 800 });
  const { page } = session;
  await page.setInputFiles('#file-input', busy.path);
  const item = uploadItem(page, 'busy.bin');
  const status = item.getByRole('status');
  await status
    .filter({
      hasText: new RegExp(
        String.raw`^The upload server is not available right now \(status 503: .+\)\. ` +
          String.raw`The upload waits and tries again in 60 s\.$`,
      ),
    })
    .waitFor();
  assert.equal(await item.getAttribute('data-state'), 'retrying');
  assert.match((await item.getAttribute('class')) ?? '', /\bwarning\b/, 'styled as a warning');
  assert.ok(await item.locator('.warning-icon').isVisible(), 'with the warning sign');
  const problems: string[] = [];
  await capture(page, 'outage', problems);
  assert.deepEqual(problems, [], 'no accessibility violations');

  // The app is back and the queue drains; "Retry now" does not wait out the 60 s.
  const app = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}'));
  });
  await new Promise<void>((resolve) => app.listen(appPort, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        app.closeAllConnections();
        app.close(() => resolve());
      }),
  );
  const deadline = Date.now() + 15_000;
  while ((await tus('POST', server.endpoint, { 'Upload-Length': '1' })).status !== 201) {
    assert.ok(Date.now() < deadline, 'the queue drains once the app is back');
    await new Promise((r) => setTimeout(r, 100));
  }
  await item.getByRole('button', { name: 'Retry now busy.bin' }).click();
  await item.locator('.upload-status').filter({ hasText: 'Uploaded and accepted.' }).waitFor({ timeout: 15_000 });
  assert.doesNotMatch((await item.getAttribute('class')) ?? '', /\bwarning\b/);

  // The server gone: a warning again. Cancelled before any byte was sent, nothing is asked.
  await server.close();
  const early = writeTestFile(dir, 'early.bin', 100_000, 42);
  await page.setInputFiles('#file-input', early.path);
  const earlyItem = uploadItem(page, 'early.bin');
  await earlyItem
    .getByRole('status')
    .filter({
      hasText:
        /^Cannot reach the upload server at http:\/\/127\.0\.0\.1:\d+\/files\/\. The upload waits and tries again/,
    })
    .waitFor();
  assert.match((await earlyItem.getAttribute('class')) ?? '', /\bwarning\b/);
  await earlyItem.getByRole('button', { name: 'Retry now early.bin' }).waitFor();
  await earlyItem.getByRole('button', { name: 'Cancel early.bin' }).click();
  await earlyItem
    .locator('.upload-status')
    .filter({ hasText: /^Cancelled$/ })
    .waitFor();
  assert.equal(await page.getByRole('dialog').count(), 0, 'no dialog for an upload that sent nothing');

  // Back on the same address: a waiting upload goes through (by itself or by Retry now).
  const late = writeTestFile(dir, 'late.bin', 100_000, 43);
  await page.setInputFiles('#file-input', late.path);
  const lateItem = uploadItem(page, 'late.bin');
  await lateItem.getByRole('button', { name: 'Retry now late.bin' }).waitFor();
  await startTestServer(t, settings);
  // The page may be in its longest wait (30 s) when the server comes back.
  await lateItem.locator('.upload-status').filter({ hasText: 'Uploaded and accepted.' }).waitFor({ timeout: 60_000 });
});
