// Lists the lines over 120 characters in the files Biome checks, and fails when there is one.
// The formatter wraps code to 120 columns but never a string or a comment: those are wrapped by
// hand (a concatenation, a line continuation in a test name), and this check keeps them so.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const MAX = 120;
const FOLDERS = ['core', 'hooks', 'server', 'client', 'cli', 'bench', 'test', 'bin', 'examples'];
// Built output, measured data and installed packages are not written by hand.
const SKIPPED = new Set(['node_modules', 'dist', 'results', '__pycache__']);
const CHECKED = /\.(ts|js|mjs|cjs|css|json)$/;

function* files(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (SKIPPED.has(entry.name)) continue;
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* files(file);
    else if (CHECKED.test(entry.name)) yield file;
  }
}

let found = 0;
for (const folder of FOLDERS) {
  for (const file of files(path.join(ROOT, folder))) {
    fs.readFileSync(file, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (line.length <= MAX) return;
        found++;
        console.log(`${path.relative(ROOT, file)}:${i + 1}: ${line.length} characters`);
      });
  }
}
if (found) {
  console.log(`${found} line(s) over ${MAX} characters: wrap the string or comment by hand`);
  process.exit(1);
}
