// The page with authentication on, in Chromium: a token typed into its field, and one handed over as
// `#token=` (read, remembered, removed from the address bar), sent on every tus and API request;
// downloads with the token; each person sees only their own completed uploads. On a phone, an upload
// refused for want of a token keeps its error in view and sends the person to the token field.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { md5, writeTestFile } from './helpers/files.ts';
import { bearer, TEST_JWT_SECRET, tokenFor } from './helpers/jwt.ts';
import { capture, inView, openPage, uploadItem } from './helpers/page-browser.ts';
import { startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';

test('the page uploads with a token from its field and from #token=, and lists only its owner’s uploads', async (t) => {
  const server = await startTestServer(t, { authJwtSecret: TEST_JWT_SECRET });
  const dir = tmpDir(t);
  const aliceToken = tokenFor('alice', 'upload read');
  const bobToken = tokenFor('bob', 'upload read');

  // Field: without a token the list says so; with it the upload goes through and is listed.
  const session = await openPage(t, server.url);
  const { page } = session;
  await page
    .locator('#completed-status')
    .filter({ hasText: /access token/ })
    .waitFor();
  await page.fill('#setting-token', aliceToken);
  await page.dispatchEvent('#setting-token', 'change');
  const aliceFile = writeTestFile(dir, 'alice.bin', 300_000, 5);
  await page.setInputFiles('#file-input', aliceFile.path);
  const row = page.locator('#completed tbody tr').filter({ hasText: 'alice.bin' });
  await row.waitFor({ timeout: 30_000 });
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    row.getByRole('link', { name: 'Download alice.bin', exact: true }).click(),
  ]);
  assert.equal(md5(fs.readFileSync((await download.path())!)), aliceFile.md5, 'downloaded with the token');
  assert.equal(await page.evaluate(() => localStorage.getItem('tuspass.token')), aliceToken, 'remembered');
  assert.deepEqual(session.foreignRequests, []);

  // #token=: another person's link; the fragment leaves the address bar, the token replaces alice's.
  const bobPage = await session.context.newPage();
  await bobPage.goto(`${server.url}/#token=${bobToken}`);
  await bobPage.waitForFunction(() => !location.hash);
  assert.equal(new URL(bobPage.url()).hash, '');
  assert.equal(await bobPage.inputValue('#setting-token'), bobToken);
  assert.equal(await bobPage.evaluate(() => localStorage.getItem('tuspass.token')), bobToken);
  await bobPage
    .locator('#completed-status')
    .filter({ hasText: /No completed uploads yet/ })
    .waitFor({ timeout: 10_000 });
  const bobFile = writeTestFile(dir, 'bob.bin', 200_000, 6);
  await bobPage.setInputFiles('#file-input', bobFile.path);
  await bobPage.locator('#completed tbody tr').filter({ hasText: 'bob.bin' }).waitFor({ timeout: 30_000 });
  assert.equal(
    await bobPage.locator('#completed tbody tr').filter({ hasText: 'alice.bin' }).count(),
    0,
    "alice's upload is not bob's to see",
  );

  // The server agrees on who owns what.
  const records = (await (
    await fetch(`${server.url}/api/uploads`, { headers: bearer(tokenFor('root', 'admin')) })
  ).json()) as Array<{ name: string; owner: string }>;
  assert.deepEqual(records.map((r) => [r.name, r.owner]).sort(), [
    ['alice.bin', 'alice'],
    ['bob.bin', 'bob'],
  ]);
});

test('on a phone, an upload refused for want of a token: the error stays in view, says what to do, and the token field \
is focused', async (t) => {
  const server = await startTestServer(t, { authJwtSecret: TEST_JWT_SECRET });
  const dir = tmpDir(t);
  const file = writeTestFile(dir, 'phone.jpg', 200_000, 7);
  const session = await openPage(t, server.url, { width: 390, height: 844 });
  const { page } = session;
  await page
    .locator('#completed-status')
    .filter({ hasText: /access token/ })
    .waitFor();

  await page.setInputFiles('#file-input', file.path);
  const item = uploadItem(page, 'phone.jpg');
  const status = item.locator('.upload-status');
  await status
    .filter({
      hasText: new RegExp(
        String.raw`^This server needs an access token\. Paste the one your site gave you into “Access token” ` +
          String.raw`above, then press Retry\.$`,
      ),
    })
    .waitFor();
  const field = page.getByLabel('Access token', { exact: true });
  assert.ok(await field.evaluate((e) => e === document.activeElement), 'the field named "Access token" has the focus');
  assert.equal(await field.getAttribute('aria-invalid'), 'true');
  assert.match(
    await field.evaluate((e) =>
      (e.getAttribute('aria-describedby') ?? '')
        .split(' ')
        .map((id) => document.getElementById(id)?.textContent)
        .join(' '),
    ),
    /phone\.jpg was refused: this server needs an access token/,
    'the field tells a screen reader why',
  );
  for (const [what, locator] of [
    ['the error', status],
    ['the token field', field],
  ] as const) {
    assert.ok(await inView(locator), `${what} in view at 390×844`);
  }
  const problems: string[] = [];
  await capture(page, 'auth-error', problems);
  for (const [what, locator] of [
    ['the error', status],
    ['the token field', field],
  ] as const) {
    assert.ok(await inView(locator), `${what} in view at 390×844 after the screenshots`);
  }
  await page.setViewportSize({ width: 1280, height: 800 });
  assert.ok((await inView(status)) && (await inView(field)), 'both in view at 1280×800');
  assert.deepEqual(problems, [], 'no accessibility violations');

  // A token without the upload scope: refused again (403), said so.
  await field.fill(tokenFor('carol', 'read'));
  await page.getByRole('button', { name: 'Use this token and retry' }).click();
  await status
    .filter({
      hasText: new RegExp(
        String.raw`^Your access token does not allow uploading here\. Ask your site for one that does, ` +
          String.raw`paste it into “Access token” above, then press Retry\.$`,
      ),
    })
    .waitFor();
  assert.ok(await field.evaluate((e) => e === document.activeElement));

  // The right token: one press retries the refused upload, and the field is no longer marked.
  await field.fill(tokenFor('carol', 'upload read'));
  await page.keyboard.press('Enter');
  await status.filter({ hasText: 'Uploaded and accepted.' }).waitFor({ timeout: 15_000 });
  assert.equal(await field.getAttribute('aria-invalid'), null);
  await page.locator('#completed tbody tr').filter({ hasText: 'phone.jpg' }).waitFor({ timeout: 10_000 });
});
