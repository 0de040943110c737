// Debian's Chromium driven by playwright-core for the page tests (no browser download here),
// with the page built first when `npm run build` has not run, and closed when the test ends.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { chromium, type Browser, type BrowserContext, type CDPSession, type Page } from 'playwright-core';
import { buildPage, DIST_DIR } from '../../client/web/build.ts';

export const CHROMIUM = '/usr/bin/chromium';
export const OUTPUT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'test-output');

const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-quic', '--disable-sync'];

export interface PageSession {
  browser: Browser;
  context: BrowserContext;
  page: Page;
  cdp: CDPSession;
  /** Every URL the page requested that is not on `origin` (must stay empty). */
  foreignRequests: string[];
  /** Limits the browser's upload speed (bytes/s; -1 for none), so a test can act mid-upload. */
  throttleUpload(bytesPerSecond: number): Promise<void>;
}

export async function openPage(t: TestContext, origin: string): Promise<PageSession> {
  if (!fs.existsSync(path.join(DIST_DIR, 'index.html'))) await buildPage();
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  t.after(() => browser.close());
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  const foreignRequests: string[] = [];
  page.on('request', (req) => {
    if (new URL(req.url()).origin !== new URL(origin).origin && !req.url().startsWith('data:')) foreignRequests.push(req.url());
  });
  // Playwright intercepts file choosers only once someone listens, and turning that on is
  // asynchronous: listening from the start means a later waitForEvent('filechooser') cannot miss one.
  page.on('filechooser', () => {});
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  const throttleUpload = async (bytesPerSecond: number) => {
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: bytesPerSecond });
  };
  await page.goto(`${origin}/`);
  return { browser, context, page, cdp, foreignRequests, throttleUpload };
}

export function screenshotPath(name: string): string {
  fs.mkdirSync(OUTPUT_DIR, { recursive: true });
  return path.join(OUTPUT_DIR, name);
}
