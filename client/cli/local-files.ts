// Checks every FILE before anything is sent, naming each problem, so a typo in the third
// name does not show up only after the first two gigabytes went out.
import fs from 'node:fs';

export interface LocalFile {
  path: string;
  size: number;
}

export function checkLocalFiles(paths: string[]): { files: LocalFile[]; problems: string[] } {
  const files: LocalFile[] = [];
  const problems: string[] = [];
  for (const p of paths) {
    try {
      const stat = fs.statSync(p);
      if (!stat.isFile()) {
        problems.push(`${p}: not a regular file`);
        continue;
      }
      fs.accessSync(p, fs.constants.R_OK);
      files.push({ path: p, size: stat.size });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const reason =
        code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
      problems.push(`${p}: ${reason}`);
    }
  }
  return { files, problems };
}
