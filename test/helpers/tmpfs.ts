// A small tmpfs for disk-full tests, mounted by the test and unmounted when it ends. Mounting needs
// root (CI runs as root); where it is refused, the test is skipped with a message saying why.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import type { TestContext } from 'node:test';
import os from 'node:os';
import path from 'node:path';

/** Mounts a tmpfs of `bytes` and returns its path, or undefined after skipping the test. */
export function mountTmpfs(t: TestContext, bytes: number): string | undefined {
  // A mount point of our own (not tmpDir's): node runs after-hooks in the order they were registered,
  // so tmpDir's removal would run first and fail on the still-mounted directory (EBUSY).
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tuspass-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0755`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (e) {
    const why = (e as { stderr?: Buffer }).stderr?.toString().trim() || (e as Error).message;
    fs.rmSync(dir, { recursive: true, force: true });
    t.skip(`cannot mount a tmpfs here (needs root): ${why}`);
    return undefined;
  }
  t.after(() => {
    try {
      execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
    } catch {
      // Already gone: nothing to do.
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Fills the file system holding `dir` until a write fails with ENOSPC; returns the filler's path. */
export function fillDisk(dir: string, leaveBytes = 0): string {
  const filler = `${dir}/.filler`;
  const fd = fs.openSync(filler, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (;;) {
      const free = fs.statfsSync(dir).bavail * fs.statfsSync(dir).bsize;
      if (free <= leaveBytes) break;
      fs.writeSync(fd, chunk, 0, Math.min(chunk.length, Math.max(1, free - leaveBytes)));
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    fs.closeSync(fd);
  }
  return filler;
}
