// A small tmpfs for disk-full tests, mounted by the test and unmounted when it ends. Mounting needs
// root (CI runs as root); where it is refused, the test is skipped with a message saying why.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import type { TestContext } from 'node:test';
import { tmpDir } from './tmp.ts';

/** Mounts a tmpfs of `bytes` and returns its path, or undefined after skipping the test. */
export function mountTmpfs(t: TestContext, bytes: number): string | undefined {
  const dir = tmpDir(t, 'tuspass-tmpfs-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0755`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (e) {
    const why = (e as { stderr?: Buffer }).stderr?.toString().trim() || (e as Error).message;
    t.skip(`cannot mount a tmpfs here (needs root): ${why}`);
    return undefined;
  }
  // Registered after tmpDir's removal, so it runs first (after-hooks run in reverse order).
  t.after(() => {
    try {
      execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
    } catch {
      // Already gone: nothing to do.
    }
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
