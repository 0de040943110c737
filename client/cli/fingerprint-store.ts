// Where `tuspass push` remembers the upload URL of each file it started, so a second run on
// the same file resumes from the server's offset. The storage is tus-js-client's own
// FileUrlStorage (Node build): a JSON object of `tus::<fingerprint>::<id>` keys, each change
// made under a lock file (proper-lockfile), so two pushes at once keep both entries.
// The file: $TUSPASS_FINGERPRINTS, else $XDG_CONFIG_HOME/tuspass/uploads.json,
// else ~/.config/tuspass/uploads.json.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FileUrlStorage, PreviousUpload, UrlStorage } from 'tus-js-client';
import { makeDirectory } from '../../core/make-directory.ts';
import { tusClient } from './tus-client.ts';

declare module 'tus-js-client' {
  // Exported by tus-js-client's Node build, missing from its type declarations.
  export class FileUrlStorage implements UrlStorage {
    constructor(filePath: string);
    findAllUploads(): Promise<PreviousUpload[]>;
    findUploadsByFingerprint(fingerprint: string): Promise<PreviousUpload[]>;
    removeUpload(urlStorageKey: string): Promise<void>;
    addUpload(fingerprint: string, upload: PreviousUpload): Promise<string>;
  }
}

export const FINGERPRINTS_ENV = 'TUSPASS_FINGERPRINTS';

export function fingerprintFilePath(env: NodeJS.ProcessEnv = process.env): string {
  if (env[FINGERPRINTS_ENV]) return path.resolve(env[FINGERPRINTS_ENV]);
  const configHome = env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
  return path.join(configHome, 'tuspass', 'uploads.json');
}

/** FileUrlStorage, plus what push needs around it: a private file, a damaged one forgotten, writes waited for. */
export class SavedUploads implements UrlStorage {
  private readonly storage: FileUrlStorage;
  private readonly pending = new Set<Promise<unknown>>();

  constructor(readonly file: string) {
    makeDirectory(path.dirname(file));
    forgetIfDamaged(file);
    this.storage = new (tusClient().FileUrlStorage)(file);
  }

  findAllUploads(): Promise<PreviousUpload[]> {
    return this.storage.findAllUploads();
  }

  findUploadsByFingerprint(fingerprint: string): Promise<PreviousUpload[]> {
    return this.storage.findUploadsByFingerprint(fingerprint);
  }

  removeUpload(urlStorageKey: string): Promise<void> {
    return this.track(this.storage.removeUpload(urlStorageKey));
  }

  addUpload(fingerprint: string, upload: PreviousUpload): Promise<string> {
    const add = async () => {
      createPrivately(this.file);
      return this.storage.addUpload(fingerprint, upload);
    };
    return this.track(add());
  }

  /** tus-js-client forgets a finished upload without waiting for the write: push waits here before it exits. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }

  private track<T>(write: Promise<T>): Promise<T> {
    this.pending.add(write);
    const done = () => this.pending.delete(write);
    write.then(done, done);
    return write;
  }
}

/** Made here, 0600: FileUrlStorage would create it 0660 less the umask, and an upload URL lets
 * whoever reads it write to or delete the upload. Only once there is something to keep. */
function createPrivately(file: string): void {
  try {
    fs.writeFileSync(file, '{}\n', { mode: 0o600, flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
}

/** A damaged file (FileUrlStorage refuses to read one) only costs the ability to resume; never refuse to upload over
 * it. */
function forgetIfDamaged(file: string): void {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  try {
    if (text.trim()) JSON.parse(text);
  } catch {
    fs.writeFileSync(file, '{}\n');
  }
}
