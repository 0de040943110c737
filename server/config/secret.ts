// The completion secret: taken from the configuration, or generated at first start and kept in the
// data directory (mode 0600, core/file-modes.ts) so that restarts and separate processes sharing the volume agree on
// it.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, type Config } from './config.ts';
import { makeDirectory } from '../../core/make-directory.ts';
import { fileModesOf, needsChmod } from '../../core/file-modes.ts';

/** Where the generated secret is kept (COMPLETION_SECRET's default). */
export const secretFile = (config: Pick<Config, 'dataDir'>): string => path.join(config.dataDir, 'completion-secret');

export function completionSecret(config: Config): string {
  if (config.completionSecret) return config.completionSecret;
  const file = secretFile(config);
  // 0600, or 0640 with SHARED_GROUP_READ: a completion service running as another user reads it too.
  const mode = fileModesOf(config).file;
  try {
    const secret = fs.readFileSync(file, 'utf8').trim();
    try {
      if ((fs.statSync(file).mode & 0o777) !== mode) fs.chmodSync(file, mode);
    } catch {
      // Not ours to change (the other user of a split deployment): it is readable, which is what matters here.
    }
    return secret;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const secret = crypto.randomBytes(32).toString('hex');
  try {
    makeDirectory(config.dataDir);
    // 'wx' so that two processes starting together keep the first one's secret.
    fs.writeFileSync(file, `${secret}\n`, { mode, flag: 'wx' });
    if (needsChmod(mode)) fs.chmodSync(file, mode);
    return secret;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return fs.readFileSync(file, 'utf8').trim();
    throw new ConfigError([
      `DATA_DIR: cannot keep the generated completion secret in ${file} (${code ?? (e as Error).message}); make ` +
        'DATA_DIR writable, or set COMPLETION_SECRET',
    ]);
  }
}
