// The package's root directory, found from wherever this code runs: server/ when run from source
// (tests, through tsx) and dist/ when run from the bundle (bin/tuspass.js). Files shipped beside the
// code (the built page, the hashing thread's source) are located from here, never from import.meta.url
// directly, because the bundle moves every module into one file.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (
      fs.existsSync(manifest) &&
      (JSON.parse(fs.readFileSync(manifest, 'utf8')) as { name?: string }).name === 'tuspass'
    )
      return dir;
    if (path.dirname(dir) === dir) throw new Error(`tuspass: cannot find the package root above ${start}`);
  }
}

export const PACKAGE_ROOT = findRoot(path.dirname(fileURLToPath(import.meta.url)));
