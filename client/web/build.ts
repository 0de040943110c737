// Bundles the page at build time (npm run build, run before npm test and npm start), so the
// server serves static files and nothing is compiled or fetched from a CDN at run time.
// Output: client/web/dist/{index.html, assets/app.js, assets/style.css}.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
export const DIST_DIR = path.join(here, 'dist');

export async function buildPage(): Promise<void> {
  fs.rmSync(DIST_DIR, { recursive: true, force: true });
  fs.mkdirSync(path.join(DIST_DIR, 'assets'), { recursive: true });
  await build({
    entryPoints: [path.join(here, 'src', 'main.ts')],
    outfile: path.join(DIST_DIR, 'assets', 'app.js'),
    bundle: true,
    format: 'esm',
    // 'browser' makes esbuild follow tus-js-client's "browser" field (XHR, localStorage) instead of its Node build.
    platform: 'browser',
    target: ['chrome100', 'firefox100', 'safari15'],
    minify: true,
    sourcemap: true,
    legalComments: 'linked',
    logLevel: 'warning',
  });
  fs.copyFileSync(path.join(here, 'index.html'), path.join(DIST_DIR, 'index.html'));
  fs.copyFileSync(path.join(here, 'style.css'), path.join(DIST_DIR, 'assets', 'style.css'));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await buildPage();
  console.log(`page built into ${path.relative(process.cwd(), DIST_DIR) || DIST_DIR}`);
}
