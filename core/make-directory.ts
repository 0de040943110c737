// Creating a directory and its missing parents, the one way tuspass does it. Not node's
// `mkdir(dir, { recursive: true })`: on Node 20 that loops for ever, at full CPU and deaf to signals
// (the loop is synchronous), when mkdir of a directory answers ENOENT although its parent exists —
// as it does anywhere under /proc (`DATA_DIR=/proc/x`). Here every missing directory is made once,
// from the top, and the first refusal is thrown with its code.
import fs from 'node:fs';
import path from 'node:path';

const codeOf = (e: unknown) => (e as NodeJS.ErrnoException).code;

function isDirectory(dir: string): boolean {
  try {
    return fs.statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

/** Creates `dir` and its missing parents with `mode` (before the umask); a directory already there is fine. */
export function makeDirectory(dir: string, mode = 0o777): void {
  const missing: string[] = [];
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    try {
      if (fs.statSync(current).isDirectory()) break;
      throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${dir}'`), { code: 'ENOTDIR', path: current });
    } catch (e) {
      // ENOTDIR, EACCES and the rest are the answer; only a missing directory is made.
      if (codeOf(e) !== 'ENOENT' || path.dirname(current) === current) throw e;
      missing.push(current);
    }
  }
  for (const each of missing.reverse()) {
    try {
      fs.mkdirSync(each, { mode });
    } catch (e) {
      // Another process made it meanwhile (two instances starting on one volume).
      if (codeOf(e) !== 'EEXIST' || !isDirectory(each)) throw e;
    }
  }
}
