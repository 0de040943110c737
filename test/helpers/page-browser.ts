// Debian's Chromium driven by playwright-core for the page tests (no browser download here),
// with the page built first when it is missing or older than its sources, and closed when the
// test ends. Screenshots of a state at a desktop's and a phone's viewport, each checked by axe-core.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { chromium, type Browser, type BrowserContext, type CDPSession, type Locator, type Page } from 'playwright-core';
import { buildPage, DIST_DIR } from '../../client/web/build.ts';

export const CHROMIUM = '/usr/bin/chromium';
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const OUTPUT_DIR = path.join(ROOT, 'test-output');
/** What the page's bundle is made of: a change in any of them means the built page is stale. */
const PAGE_SOURCES = ['client/web/src', 'client/web/index.html', 'client/web/style.css', 'client/shared', 'core'].map(
  (p) => path.join(ROOT, p),
);

/** A desktop's and a phone's (iPhone 12-15) viewport: every screenshot state is taken at both. */
export const VIEWPORTS = [
  { width: 1280, height: 800 },
  { width: 390, height: 844 },
] as const;

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-quic',
  '--disable-sync',
];

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

function newestChange(p: string): number {
  const stat = fs.statSync(p);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(stat.mtimeMs, ...fs.readdirSync(p).map((name) => newestChange(path.join(p, name))));
}

async function buildPageIfStale(): Promise<void> {
  const built = path.join(DIST_DIR, 'assets', 'app.js');
  if (fs.existsSync(built) && fs.statSync(built).mtimeMs >= Math.max(...PAGE_SOURCES.map(newestChange))) return;
  await buildPage();
}

export async function openPage(
  t: TestContext,
  origin: string,
  viewport: { width: number; height: number } = { width: 1100, height: 900 },
): Promise<PageSession> {
  await buildPageIfStale();
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  t.after(() => browser.close());
  const context = await browser.newContext({ acceptDownloads: true, viewport });
  const page = await context.newPage();
  const foreignRequests: string[] = [];
  page.on('request', (req) => {
    if (new URL(req.url()).origin !== new URL(origin).origin && !req.url().startsWith('data:'))
      foreignRequests.push(req.url());
  });
  // Playwright intercepts file choosers only once someone listens, and turning that on is
  // asynchronous: listening from the start means a later waitForEvent('filechooser') cannot miss one.
  page.on('filechooser', () => {});
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  const throttleUpload = async (bytesPerSecond: number) => {
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false,
      latency: 0,
      downloadThroughput: -1,
      uploadThroughput: bytesPerSecond,
    });
  };
  await page.goto(`${origin}/`);
  return { browser, context, page, cdp, foreignRequests, throttleUpload };
}

export function screenshotPath(name: string): string {
  fs.mkdirSync(OUTPUT_DIR, { recursive: true });
  return path.join(OUTPUT_DIR, name);
}

const AXE_SOURCE = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: Array<{ target: string[] }>;
}

/** Every axe-core violation on the page, of any impact (run through the debugging protocol, which the page's CSP does
 * not govern). */
export async function axeViolations(page: Page): Promise<string[]> {
  await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    const axe = (
      window as unknown as { axe: { run(ctx: Document, o: object): Promise<{ violations: AxeViolation[] }> } }
    ).axe;
    return (await axe.run(document, { resultTypes: ['violations'] })).violations;
  });
  return violations.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
}

/**
 * A state at both viewports: no sideways scrolling, a screenshot of what the viewport shows
 * (`page-<state>-<w>x<h>.png`; `show` is scrolled into view first, else the scroll is left as
 * the page set it), and axe-core's violations added to `problems`. Ends at the viewport it began with.
 */
export async function capture(page: Page, state: string, problems: string[], show?: Locator): Promise<void> {
  const before = page.viewportSize();
  for (const viewport of VIEWPORTS) {
    await page.setViewportSize(viewport);
    const size = `${viewport.width}x${viewport.height}`;
    const overflow = await page.evaluate(
      () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
    );
    const widest =
      overflow > 0
        ? await page.evaluate(() =>
            [...document.querySelectorAll('body *')]
              .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth)
              .slice(0, 5)
              .map((e) => `${e.tagName}.${e.className}`)
              .join(', '),
          )
        : '';
    assert.ok(overflow <= 0, `${state} at ${size}: no sideways scrolling (${overflow} px too wide: ${widest})`);
    if (show) await show.evaluate((e) => e.scrollIntoView({ block: 'start' }));
    await page.screenshot({ path: screenshotPath(`page-${state}-${size}.png`) });
    for (const v of await axeViolations(page)) problems.push(`${state} at ${size}: ${v}`);
  }
  if (before) await page.setViewportSize(before);
}

/** True when the element lies wholly inside the viewport (seen without scrolling). */
export async function inView(locator: Locator): Promise<boolean> {
  return locator.evaluate((e) => {
    const r = e.getBoundingClientRect();
    return r.height > 0 && r.top >= 0 && r.left >= 0 && r.bottom <= window.innerHeight && r.right <= window.innerWidth;
  });
}

/** The row of one upload of this visit. */
export function uploadItem(page: Page, name: string): Locator {
  return page.locator('#uploads > li').filter({ hasText: name });
}

/** Bytes the row's progress bar shows as sent. */
export async function bytesDone(page: Page, name: string): Promise<number> {
  return uploadItem(page, name)
    .locator('progress')
    .evaluate((bar) => (bar as HTMLProgressElement).value);
}

/** Waits until the row shows at least `atLeast` bytes sent; returns what it shows then. */
export async function waitForBytes(page: Page, name: string, atLeast: number): Promise<number> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const done = await bytesDone(page, name);
    if (done >= atLeast) return done;
    if (Date.now() > deadline) throw new Error(`${name}: only ${done} bytes after 30 s, waited for ${atLeast}`);
    await page.waitForTimeout(50);
  }
}

/** The upload URLs tus-js-client keeps in localStorage to resume from (single-stream uploads). */
export async function storedUploadUrls(page: Page): Promise<string[]> {
  return page.evaluate(() =>
    Object.entries(localStorage)
      .filter(([k]) => k.startsWith('tus::'))
      .map(([, v]) => JSON.parse(v).uploadUrl as string),
  );
}

/** Starts a slow upload of one file, reloads once `atLeast` bytes are sent, and returns the stored upload URLs. */
export async function leaveUnfinished(
  session: PageSession,
  file: { path: string },
  atLeast: number,
  bytesPerSecond: number,
): Promise<string[]> {
  const { page } = session;
  await session.throttleUpload(bytesPerSecond);
  await page.setInputFiles('#file-input', file.path);
  await waitForBytes(page, path.basename(file.path), atLeast);
  await page.reload();
  return storedUploadUrls(page);
}
