// The completion secret: taken from the configuration, or generated at first start and kept in the
// data directory (mode 0600) so that restarts and separate processes sharing the volume agree on it.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from './config.ts';

export function completionSecret(config: Config): string {
  if (config.completionSecret) return config.completionSecret;
  const file = path.join(config.dataDir, 'completion-secret');
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  fs.mkdirSync(config.dataDir, { recursive: true });
  const secret = crypto.randomBytes(32).toString('hex');
  try {
    // 'wx' so that two processes starting together keep the first one's secret.
    fs.writeFileSync(file, secret + '\n', { mode: 0o600, flag: 'wx' });
    return secret;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return fs.readFileSync(file, 'utf8').trim();
    throw e;
  }
}
