// The page as a newcomer meets it, in Chromium: screenshots at 1280×800 and 390×844 of every state
// (empty, review list, uploading, paused, waiting, resumed, finished table, offline) into
// test-output/, axe-core at each (no violations), a keyboard-only flow, the total bar with speed
// and time left and "Clear finished", time taken and average speed kept on a finished row, the
// server's Tus-Max-Size shown and a larger file refused in the page, the "waiting to resume" list
// after a reload with the details typed for it, icons and thumbnails, and a table that shows the
// whole md5 and details at any width and names every download link by its file.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import type { Locator } from 'playwright-core';
import { writeTestFile } from './helpers/files.ts';
import { bytesDone, capture, openPage, uploadItem, waitForBytes } from './helpers/page-browser.ts';
import { startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';

const MB = 1000 * 1000;
const DESCRIPTION =
  'the long one, with a description that needs more than one line of the table at every width: where it came from ' +
  'and what it is for';

/** What of a table cell the eye cannot reach: the cell's content wider or taller than the cell, or cut with an
 * ellipsis. */
async function cutInCell(value: Locator): Promise<string | undefined> {
  return value.evaluate((e) => {
    const cell = e.closest('td')!;
    const box = e.getBoundingClientRect();
    const cellBox = cell.getBoundingClientRect();
    if (getComputedStyle(e).textOverflow === 'ellipsis' && e.scrollWidth > e.clientWidth) return 'ends in an ellipsis';
    if (cell.scrollWidth > cell.clientWidth || cell.scrollHeight > cell.clientHeight)
      return (
        'overflows its cell ' +
        `(${cell.scrollWidth}x${cell.scrollHeight} in ` +
        `${cell.clientWidth}x${cell.clientHeight})`
      );
    if (box.right > cellBox.right + 0.5 || box.bottom > cellBox.bottom + 0.5) return 'reaches past its cell';
    return undefined;
  });
}

test('every state at 1280×800 and 390×844 with axe-core; review list; waiting to resume after a reload; limits; total \
with speed and time left; the finished table', async (t) => {
  const server = await startTestServer(t, { maxSize: 40 * MB });
  const dir = tmpDir(t);
  const bigName = 'f300-with-a-rather-long-name-that-would-wrap-mid-word.bin';
  const big = writeTestFile(dir, bigName, 24 * MB, 3);
  const tooBig = writeTestFile(dir, 'too-big.iso', 41 * MB, 4);
  // A real PNG (1x1, red) for the thumbnail.
  const pngPath = `${dir}/holiday.png`;
  fs.writeFileSync(
    pngPath,
    Buffer.from(
      'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==',
      'base64',
    ),
  );
  const session = await openPage(t, server.url, { width: 1280, height: 800 });
  const { page } = session;
  const problems: string[] = [];

  // Empty: the limit the server announces is shown before anything is picked; details and settings folded.
  await page.locator('#limits').filter({ hasText: 'Largest file this server accepts: 40 MB.' }).waitFor();
  assert.equal(await page.locator('#details-fold').getAttribute('open'), null, 'details folded away');
  assert.equal(await page.locator('#settings-fold').getAttribute('open'), null, 'settings folded away');
  assert.match((await page.locator('#units').textContent()) ?? '', /1 kB = 1000 bytes/);
  const dropTop = await page.locator('#drop-zone').evaluate((e) => e.getBoundingClientRect().top);
  const foldTop = await page.locator('#details-fold').evaluate((e) => e.getBoundingClientRect().top);
  assert.ok(dropTop < foldTop, 'the drop zone comes first');
  await capture(page, 'empty', problems);

  // Error: a file over the limit is refused in the page, with a plain message and no request.
  const posts: string[] = [];
  page.on('request', (req) => {
    if (req.method() === 'POST') posts.push(req.url());
  });
  await page.setInputFiles('#file-input', tooBig.path);
  await page
    .locator('#page-message')
    .filter({ hasText: 'too-big.iso is 41 MB, larger than the 40 MB this server accepts, so it was not uploaded.' })
    .waitFor();
  assert.deepEqual(posts, [], 'nothing sent for a file over the limit');

  // Details typed, then two files at once: they wait in the review list, nothing sent yet.
  await page.locator('#details-fold summary').click();
  await page.fill('#field-name', 'holiday');
  await page.fill('#field-description', DESCRIPTION);
  await page.setInputFiles('#file-input', [big.path, pngPath]);
  const review = page.getByRole('region', { name: /^Ready to upload/ });
  await review.getByRole('button', { name: 'Upload 2 files' }).waitFor();
  assert.deepEqual(await review.locator('li .review-name').allTextContents(), [bigName, 'holiday.png']);
  assert.deepEqual(posts, [], 'nothing sent while the files wait for review');
  await capture(page, 'review', problems, review);

  // Uploading (throttled): icon/thumbnail and the details in the row; the total has speed and time left.
  await session.throttleUpload(3 * MB);
  await review.getByRole('button', { name: 'Upload 2 files' }).click();
  assert.equal(await page.locator('#review').isHidden(), true, 'the review list closes once the files go up');
  const item = uploadItem(page, bigName);
  await item
    .locator('.upload-details')
    .filter({ hasText: `name: holiday · description: ${DESCRIPTION}` })
    .waitFor();
  assert.equal(await item.locator('.file-icon[data-kind=other]').count(), 1, 'file-type icon');
  await uploadItem(page, 'holiday.png').locator('img.file-thumb').waitFor();
  assert.ok(
    await uploadItem(page, 'holiday.png')
      .locator('img.file-thumb')
      .evaluate((img) => (img as HTMLImageElement).naturalWidth === 1),
    'the thumbnail loaded under the CSP',
  );
  await uploadItem(page, 'holiday.png')
    .locator('.upload-status')
    .filter({ hasText: 'Uploaded and accepted.' })
    .waitFor({ timeout: 15_000 });
  await waitForBytes(page, bigName, 3 * MB);
  await page
    .locator('#total-stats')
    .filter({ hasText: /^Total: [\d.]+ MB of 24 MB · [\d.]+ [kM]B\/s · (\d+m )?\d+s left · 1 of 2 files finished$/ })
    .waitFor();
  await capture(page, 'uploading', problems, page.locator('#current'));

  // Paused.
  await item.getByRole('button', { name: /^Pause/ }).click();
  await item
    .locator('.upload-status')
    .filter({ hasText: /^Paused at / })
    .waitFor();
  await capture(page, 'paused', problems, page.locator('#current'));

  // Reload: the waiting list names the file, the bytes the server holds, and the details typed for it.
  await page.reload();
  const waitingItem = page.locator('#waiting-list > li');
  await waitingItem.filter({ hasText: /[\d.]+ MB of 24 MB — choose it again/ }).waitFor();
  assert.match((await waitingItem.textContent()) ?? '', /name “holiday”, description “the long one, with/);
  assert.equal(await page.locator('#waiting').isVisible(), true);
  await capture(page, 'waiting', problems);
  const [chooser] = await Promise.all([
    page.waitForEvent('filechooser'),
    waitingItem.getByRole('button', { name: /Choose .* again/ }).click(),
  ]);
  await page.locator('#details-fold summary').click();
  await page.fill('#field-name', 'typed later');
  await chooser.setFiles(big.path);
  // Resumed: the row says so and shows the details the upload started with, not the field's new text.
  await item
    .locator('.upload-note')
    .filter({ hasText: /^Resumed at [\d.]+ MB of 24 MB/ })
    .waitFor();
  await item.locator('.upload-details').filter({ hasText: 'name: holiday · description: the long one' }).waitFor();
  assert.equal(await page.locator('#waiting').isHidden(), true, 'the chosen file left the waiting list');
  await waitForBytes(page, bigName, (await bytesDone(page, bigName)) + MB);
  await capture(page, 'resumed', problems, page.locator('#current'));

  // Finished: time taken and average speed stay on the row.
  await session.throttleUpload(-1);
  await item.locator('.upload-status').filter({ hasText: 'Uploaded and accepted.' }).waitFor({ timeout: 30_000 });
  assert.match(
    (await item.locator('.upload-stats').textContent()) ?? '',
    /^24 MB of 24 MB · in (\d+m )?\d+s · average [\d.]+ [kM]B\/s$/,
  );
  // Every download link is named by its file, in the row and in the table.
  assert.equal(
    await page.getByRole('link', { name: 'Download', exact: true }).count(),
    0,
    'no link named only "Download"',
  );
  assert.equal(await item.getByRole('link', { name: `Download ${bigName}`, exact: true }).count(), 1);
  const row = page.locator('#completed tbody tr').filter({ hasText: big.md5 });
  await row.waitFor({ timeout: 10_000 });
  assert.equal(await row.getByRole('link', { name: `Download ${bigName}`, exact: true }).count(), 1);
  assert.equal(
    await page
      .locator('#completed tbody tr')
      .filter({ hasText: 'holiday.png' })
      .getByRole('link', { name: 'Download holiday.png', exact: true })
      .count(),
    1,
  );
  // The whole md5 and the whole details at any width; the md5 on one line at a desktop's; the name on one line, in full
  // on hover.
  for (const width of [1280, 1000, 800, 640, 390, 320]) {
    await page.setViewportSize({ width, height: 800 });
    const md5 = row.locator('.cell-md5 code');
    assert.equal(await md5.textContent(), big.md5);
    assert.equal(await cutInCell(md5), undefined, `${width} px: the md5 is not cut`);
    const details = row.locator('.cell-details .details-text');
    assert.equal(await details.textContent(), `name: holiday · description: ${DESCRIPTION}`);
    assert.equal(await cutInCell(details), undefined, `${width} px: the details are not cut`);
    if (width >= 1280)
      assert.ok(
        await md5.evaluate((e) => e.getBoundingClientRect().height < parseFloat(getComputedStyle(e).fontSize) * 2),
        `${width} px: the md5 on one line`,
      );
    const name = row.locator('.cell-name .ellipsis');
    assert.ok(
      await name.evaluate(
        (e) =>
          e.getBoundingClientRect().height < parseFloat(getComputedStyle(e).fontSize) * 2 &&
          e.getAttribute('title') === e.textContent,
      ),
      `${width} px: the name on one line, in full on hover`,
    );
  }
  await page.setViewportSize({ width: 1280, height: 800 });
  await session.context.grantPermissions(['clipboard-read', 'clipboard-write']);
  await row.getByRole('button', { name: /Copy the md5/ }).click();
  assert.equal(
    await page.evaluate(() => navigator.clipboard.readText()),
    big.md5,
    'Copy puts the md5 on the clipboard',
  );
  await capture(page, 'finished', problems, page.locator('#completed-title'));

  // Clear finished: the finished rows go, the total follows.
  await page.getByRole('button', { name: 'Clear finished' }).click();
  assert.equal(await page.locator('#uploads > li').count(), 0);
  assert.equal(await page.locator('#current').isHidden(), true);

  // The browser offline: the row waits for the connection, as a warning.
  await session.context.setOffline(true);
  const small = writeTestFile(dir, 'report.pdf', 50_000, 9);
  await page.setInputFiles('#file-input', small.path);
  await uploadItem(page, 'report.pdf')
    .locator('.upload-status')
    .filter({ hasText: /^Cannot reach the upload server/ })
    .waitFor({ timeout: 15_000 });
  await capture(page, 'offline', problems, page.locator('#current'));
  await session.context.setOffline(false);

  assert.deepEqual(problems, [], 'no accessibility violations');
  assert.deepEqual(session.foreignRequests, [], 'nothing fetched from outside the page origin');
});

test('keyboard only: open the picker, pause and resume with \
the focus kept, open the details, clear finished', async (t) => {
  const server = await startTestServer(t);
  const dir = tmpDir(t);
  const file = writeTestFile(dir, 'keys.bin', 6 * MB, 5);
  const session = await openPage(t, server.url);
  const { page } = session;
  const focused = () =>
    page.evaluate(() => {
      const e = document.activeElement;
      return e
        ? `${e.tagName.toLowerCase()}#${e.id}|${e.getAttribute('aria-label') ?? e.textContent?.trim().slice(0, 30)}`
        : '';
    });
  const tabTo = async (pattern: RegExp, max = 30) => {
    for (let i = 0; i < max; i++) {
      await page.keyboard.press('Tab');
      if (pattern.test(await focused())) return;
    }
    throw new Error(`Tab never reached ${pattern}; last focus ${await focused()}`);
  };

  // The drop zone is the first stop; Enter opens the picker.
  await page.keyboard.press('Tab');
  assert.match(await focused(), /^div#drop-zone/);
  // The details fold opens from the keyboard, and its field takes text.
  await tabTo(/Optional details/);
  await page.keyboard.press('Enter');
  await tabTo(/^input#field-name/);
  await page.keyboard.type('typed by keys');

  await session.throttleUpload(1 * MB);
  await page.focus('#drop-zone');
  const [chooser] = await Promise.all([page.waitForEvent('filechooser'), page.keyboard.press('Enter')]);
  await chooser.setFiles(file.path);
  const item = uploadItem(page, 'keys.bin');
  await waitForBytes(page, 'keys.bin', 200_000);
  await tabTo(/Pause keys\.bin/);
  await page.keyboard.press('Enter');
  await item
    .locator('.upload-status')
    .filter({ hasText: /^Paused at / })
    .waitFor();
  assert.match(await focused(), /Resume keys\.bin/, 'the focus moves to Resume, not to the page');
  await page.keyboard.press('Enter');
  await item
    .locator('.upload-status')
    .filter({ hasText: /^(Resuming|Uploading)/ })
    .waitFor();
  assert.match(await focused(), /Pause keys\.bin/, 'and back to Pause');
  await session.throttleUpload(-1);
  await item.locator('.upload-status').filter({ hasText: 'Uploaded and accepted.' }).waitFor({ timeout: 30_000 });
  await item.locator('.upload-details').filter({ hasText: 'name: typed by keys' }).waitFor();

  await page.focus('#drop-zone');
  await tabTo(/^button#clear-finished/);
  await page.keyboard.press('Enter');
  assert.equal(await page.locator('#uploads > li').count(), 0, 'cleared from the keyboard');
  // The table's copy button is reachable too.
  await page.locator('#completed tbody tr').filter({ hasText: file.md5 }).waitFor({ timeout: 10_000 });
  await page.focus('#drop-zone');
  await tabTo(/Copy the md5 of keys\.bin/);
});
