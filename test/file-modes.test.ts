// The one atomic write (core/file-modes.ts), async and sync: the whole file or the old one, the mode
// given (not the umask's), and no temp file left when the write fails.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { writeAtomically, writeAtomicallySync } from '../core/file-modes.ts';
import { tmpDir } from './helpers/tmp.ts';

const forms = {
  async: writeAtomically,
  sync: async (file: string, data: string, mode: number, tmp?: string) => writeAtomicallySync(file, data, mode, tmp),
};

for (const [name, write] of Object.entries(forms)) {
  test(`writeAtomically (${name}): replaces the file whole, with the mode given`, async (t) => {
    const file = path.join(tmpDir(t), 'state.json');
    await write(file, 'old', 0o600);
    const umask = process.umask(0o077);
    try {
      await write(file, 'new', 0o640);
    } finally {
      process.umask(umask);
    }
    assert.equal(fs.readFileSync(file, 'utf8'), 'new');
    assert.equal(fs.statSync(file).mode & 0o777, 0o640);
    assert.deepEqual(fs.readdirSync(path.dirname(file)), ['state.json']);
  });

  test(`writeAtomically (${name}): a failed rename leaves no temp file and the target as it was`, async (t) => {
    const dir = tmpDir(t);
    // A directory where the file should go: the rename fails (EISDIR / ENOTEMPTY).
    const file = path.join(dir, 'taken');
    fs.mkdirSync(path.join(file, 'inside'), { recursive: true });
    await assert.rejects(write(file, 'x', 0o600, `${file}.${process.pid}.tmp`));
    assert.deepEqual(fs.readdirSync(dir), ['taken']);
  });
}
