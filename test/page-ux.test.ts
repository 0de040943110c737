// The page as a newcomer meets it (issue 16 item 1), in Chromium: screenshots at 1280 and 390 px of
// every state (idle, uploading, paused, resumed, finished, error) into test-output/, axe-core at
// each (no serious or critical violations), a keyboard-only flow, the total bar and "Clear
// finished", time taken and average speed kept on a finished row, the server's Tus-Max-Size shown
// and a larger file refused in the page, the "waiting to resume" list after a reload with the
// details typed for it, icons and thumbnails, and a table whose names and hashes never wrap.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import type { Page } from 'playwright-core';
import { writeTestFile } from './helpers/files.ts';
import { openPage, screenshotPath } from './helpers/page-browser.ts';
import { startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';

const MB = 1000 * 1000;
const AXE_SOURCE = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const WIDTHS = [1280, 390] as const;

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: Array<{ target: string[] }>;
}

/** axe-core run in the page (through the debugging protocol, which the page's CSP does not govern). */
async function seriousViolations(page: Page): Promise<string[]> {
  await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(ctx: Document, o: object): Promise<{ violations: AxeViolation[] }> } }).axe;
    return (await axe.run(document, { resultTypes: ['violations'] })).violations;
  });
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
}

/** Screenshots of one state at both widths, each checked by axe-core; the page ends at 1280 px. */
async function capture(page: Page, state: string, problems: string[]): Promise<void> {
  for (const width of WIDTHS) {
    await page.setViewportSize({ width, height: 900 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    const widest = overflow > 0 ? await page.evaluate(() => [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth).slice(0, 5).map((e) => `${e.tagName}.${e.className}`).join(', ')) : '';
    assert.ok(overflow <= 0, `${state} at ${width} px: no sideways scrolling (${overflow} px too wide: ${widest})`);
    await page.screenshot({ path: screenshotPath(`page-${state}-${width}.png`), fullPage: true });
    for (const v of await seriousViolations(page)) problems.push(`${state} at ${width} px: ${v}`);
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

function uploadItem(page: Page, name: string) {
  return page.locator('#uploads > li').filter({ hasText: name });
}

async function bytesDone(page: Page, name: string): Promise<number> {
  return uploadItem(page, name).locator('progress').evaluate((bar) => (bar as HTMLProgressElement).value);
}

async function waitForBytes(page: Page, name: string, atLeast: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while ((await bytesDone(page, name)) < atLeast) {
    if (Date.now() > deadline) throw new Error(`${name}: fewer than ${atLeast} bytes after 30 s`);
    await page.waitForTimeout(50);
  }
}

test('every state at 1280 and 390 px with axe-core; waiting to resume after a reload; limits; total and clear finished', async (t) => {
  const server = await startTestServer(t, { maxSize: 40 * MB });
  const dir = tmpDir(t);
  const big = writeTestFile(dir, 'f300-with-a-rather-long-name-that-would-wrap-mid-word.bin', 24 * MB, 3);
  const tooBig = writeTestFile(dir, 'too-big.iso', 41 * MB, 4);
  // A real PNG (1x1, red) for the thumbnail.
  const pngPath = `${dir}/holiday.png`;
  fs.writeFileSync(pngPath, Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==', 'base64'));
  const session = await openPage(t, server.url);
  const { page } = session;
  const problems: string[] = [];

  // Idle: the limit the server announces is shown before anything is picked; details and settings folded.
  await page.locator('#limits').filter({ hasText: 'Largest file this server accepts: 40 MB.' }).waitFor();
  assert.equal(await page.locator('#details-fold').getAttribute('open'), null, 'details folded away');
  assert.equal(await page.locator('#settings-fold').getAttribute('open'), null, 'settings folded away');
  assert.match((await page.locator('#units').textContent()) ?? '', /1 kB = 1000 bytes/);
  const dropTop = await page.locator('#drop-zone').evaluate((e) => e.getBoundingClientRect().top);
  const foldTop = await page.locator('#details-fold').evaluate((e) => e.getBoundingClientRect().top);
  assert.ok(dropTop < foldTop, 'the drop zone comes first');
  await capture(page, 'idle', problems);

  // Error: a file over the limit is refused in the page, with a plain message and no request.
  const posts: string[] = [];
  page.on('request', (req) => {
    if (req.method() === 'POST') posts.push(req.url());
  });
  await page.setInputFiles('#file-input', tooBig.path);
  await page.locator('#page-message').filter({ hasText: 'too-big.iso is 41 MB, larger than the 40 MB this server accepts, so it was not uploaded.' }).waitFor();
  assert.deepEqual(posts, [], 'nothing sent for a file over the limit');

  // Details typed, then a throttled upload: uploading, with icon/thumbnail and the details in the row.
  await page.locator('#details-fold summary').click();
  await page.fill('#field-name', 'holiday');
  await page.fill('#field-description', 'the long one');
  await session.throttleUpload(3 * MB);
  await page.setInputFiles('#file-input', [big.path, pngPath]);
  const item = uploadItem(page, big.path.split('/').pop()!);
  await item.locator('.upload-details').filter({ hasText: 'name: holiday · description: the long one' }).waitFor();
  assert.equal(await item.locator('.file-icon[data-kind=other]').count(), 1, 'file-type icon');
  await uploadItem(page, 'holiday.png').locator('img.file-thumb').waitFor();
  assert.ok(await uploadItem(page, 'holiday.png').locator('img.file-thumb').evaluate((img) => (img as HTMLImageElement).naturalWidth === 1), 'the thumbnail loaded under the CSP');
  await uploadItem(page, 'holiday.png').locator('.upload-status').filter({ hasText: 'Uploaded and accepted.' }).waitFor({ timeout: 15_000 });
  await waitForBytes(page, big.path.split('/').pop()!, 3 * MB);
  assert.match((await page.locator('#total-stats').textContent()) ?? '', /^Total: [\d.]+ MB of 24 MB · 1 of 2 files finished$/);
  await capture(page, 'uploading', problems);

  // Paused.
  await item.getByRole('button', { name: /^Pause/ }).click();
  await item.locator('.upload-status').filter({ hasText: /^Paused at / }).waitFor();
  await capture(page, 'paused', problems);

  // Reload: the waiting list names the file, the bytes the server holds, and the details typed for it.
  await page.reload();
  const waitingItem = page.locator('#waiting-list > li');
  await waitingItem.filter({ hasText: /[\d.]+ MB of 24 MB — choose it again/ }).waitFor();
  assert.match((await waitingItem.textContent()) ?? '', /name “holiday”, description “the long one”/);
  assert.equal(await page.locator('#waiting').isVisible(), true);
  await capture(page, 'waiting', problems);
  const [chooser] = await Promise.all([page.waitForEvent('filechooser'), waitingItem.getByRole('button', { name: /Choose .* again/ }).click()]);
  await page.locator('#details-fold summary').click();
  await page.fill('#field-name', 'typed later');
  await chooser.setFiles(big.path);
  // Resumed: the row says so and shows the details the upload started with, not the field's new text.
  await item.locator('.upload-note').filter({ hasText: /^Resumed at [\d.]+ MB of 24 MB/ }).waitFor();
  await item.locator('.upload-details').filter({ hasText: 'name: holiday · description: the long one' }).waitFor();
  assert.equal(await page.locator('#waiting').isHidden(), true, 'the chosen file left the waiting list');
  await waitForBytes(page, big.path.split('/').pop()!, (await bytesDone(page, big.path.split('/').pop()!)) + MB);
  await capture(page, 'resumed', problems);

  // Finished: time taken and average speed stay on the row; the table never breaks the name or md5.
  await session.throttleUpload(-1);
  await item.locator('.upload-status').filter({ hasText: 'Uploaded and accepted.' }).waitFor({ timeout: 30_000 });
  assert.match((await item.locator('.upload-stats').textContent()) ?? '', /^24 MB of 24 MB · in (\d+m )?\d+s · average [\d.]+ [kM]B\/s$/);
  const row = page.locator('#completed tbody tr').filter({ hasText: big.md5 });
  await row.waitFor({ timeout: 10_000 });
  for (const width of WIDTHS) {
    await page.setViewportSize({ width, height: 900 });
    for (const cell of [row.locator('.cell-name .ellipsis'), row.locator('code')]) {
      const box = await cell.evaluate((e) => ({ oneLine: e.getBoundingClientRect().height < parseFloat(getComputedStyle(e).fontSize) * 2, title: e.getAttribute('title'), text: e.textContent, clipped: e.scrollWidth > e.clientWidth }));
      assert.equal(box.title, box.text, `${width} px: the full value on hover`);
      assert.ok(box.oneLine, `${width} px: ${box.text} on one line`);
    }
  }
  await page.setViewportSize({ width: 1280, height: 900 });
  assert.match((await row.locator('td').nth(3).textContent()) ?? '', /name: holiday · description: the long one/);
  await session.context.grantPermissions(['clipboard-read', 'clipboard-write']);
  await row.getByRole('button', { name: /Copy the md5/ }).click();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), big.md5, 'Copy puts the md5 on the clipboard');
  await capture(page, 'finished', problems);

  // Clear finished: the finished rows go, the total follows.
  await page.getByRole('button', { name: 'Clear finished' }).click();
  assert.equal(await page.locator('#uploads > li').count(), 0);
  assert.equal(await page.locator('#current').isHidden(), true);

  // Error state screenshot: the server out of reach.
  await session.context.setOffline(true);
  const small = writeTestFile(dir, 'report.pdf', 50_000, 9);
  await page.setInputFiles('#file-input', small.path);
  await uploadItem(page, 'report.pdf').locator('.upload-status').filter({ hasText: /^Cannot reach the upload server/ }).waitFor({ timeout: 15_000 });
  await capture(page, 'error', problems);
  await session.context.setOffline(false);

  assert.deepEqual(problems, [], 'no serious or critical accessibility violations');
  assert.deepEqual(session.foreignRequests, [], 'nothing fetched from outside the page origin');
});

test('keyboard only: open the picker, pause and resume with the focus kept, open the details, clear finished', async (t) => {
  const server = await startTestServer(t);
  const dir = tmpDir(t);
  const file = writeTestFile(dir, 'keys.bin', 6 * MB, 5);
  const session = await openPage(t, server.url);
  const { page } = session;
  const focused = () => page.evaluate(() => {
    const e = document.activeElement;
    return e ? `${e.tagName.toLowerCase()}#${e.id}|${e.getAttribute('aria-label') ?? e.textContent?.trim().slice(0, 30)}` : '';
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
  await item.locator('.upload-status').filter({ hasText: /^Paused at / }).waitFor();
  assert.match(await focused(), /Resume keys\.bin/, 'the focus moves to Resume, not to the page');
  await page.keyboard.press('Enter');
  await item.locator('.upload-status').filter({ hasText: /^(Resuming|Uploading)/ }).waitFor();
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
