#!/usr/bin/env node
// `npm start`'s prestart: builds the page and the server bundle only when a source is newer than
// what was built (npm run build rebuilds both every time; a start after no edit should not wait).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleIsStale } from './bundle.js';

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const PAGE = path.join(ROOT, 'client', 'web', 'dist', 'index.html');
// What the page bundle is made of (client/web/build.ts): the page, client/shared and the names on the wire it takes
// from core/.
const PAGE_SOURCES = [
  'client/web/src',
  'client/web/index.html',
  'client/web/style.css',
  'client/web/build.ts',
  'client/shared',
  'core/wire.ts',
  'core/record.ts',
];

function newest(file) {
  const stat = fs.statSync(file);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(0, ...fs.readdirSync(file).map((name) => newest(path.join(file, name))));
}

export function pageIsStale() {
  let built;
  try {
    built = fs.statSync(PAGE).mtimeMs;
  } catch {
    return true;
  }
  return PAGE_SOURCES.some((p) => fs.existsSync(path.join(ROOT, p)) && newest(path.join(ROOT, p)) > built);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const stale = [pageIsStale() && 'page', bundleIsStale() && 'server bundle'].filter(Boolean);
  if (stale.length === 0) {
    console.log('tuspass: page and server bundle are up to date, nothing to build');
  } else {
    const run = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
    process.exit(run.status ?? 1);
  }
}
