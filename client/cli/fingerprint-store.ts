// Where `tuspass push` remembers the upload URL of each file it started, so a second run on
// the same file resumes from the server's offset (tus-js-client's UrlStorage interface).
// A JSON file: $TUSPASS_FINGERPRINTS, else $XDG_CONFIG_HOME/tuspass/uploads.json,
// else ~/.config/tuspass/uploads.json.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { PreviousUpload, UrlStorage } from 'tus-js-client';
import { writeAtomicallySync } from '../../core/file-modes.ts';
import { makeDirectory } from '../../core/make-directory.ts';

export const FINGERPRINTS_ENV = 'TUSPASS_FINGERPRINTS';

export function fingerprintFilePath(env: NodeJS.ProcessEnv = process.env): string {
  if (env[FINGERPRINTS_ENV]) return path.resolve(env[FINGERPRINTS_ENV]);
  const configHome = env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
  return path.join(configHome, 'tuspass', 'uploads.json');
}

type Entries = Record<string, Omit<PreviousUpload, 'urlStorageKey'>>;

export class JsonFileUrlStorage implements UrlStorage {
  constructor(readonly file: string) {}

  async findAllUploads(): Promise<PreviousUpload[]> {
    return this.find('tus::');
  }

  async findUploadsByFingerprint(fingerprint: string): Promise<PreviousUpload[]> {
    return this.find(`tus::${fingerprint}::`);
  }

  async removeUpload(urlStorageKey: string): Promise<void> {
    this.update((entries) => {
      delete entries[urlStorageKey];
    });
  }

  async addUpload(fingerprint: string, upload: PreviousUpload): Promise<string> {
    const key = `tus::${fingerprint}::${Date.now()}${Math.floor(Math.random() * 1e6)}`;
    this.update((entries) => {
      const { urlStorageKey: _ignored, ...rest } = upload;
      entries[key] = rest;
    });
    return key;
  }

  /** Forgets every upload of this fingerprint (--no-resume starts over cleanly). */
  async removeFingerprint(fingerprint: string): Promise<void> {
    this.update((entries) => {
      for (const key of Object.keys(entries)) if (key.startsWith(`tus::${fingerprint}::`)) delete entries[key];
    });
  }

  private find(prefix: string): PreviousUpload[] {
    const entries = this.read();
    return Object.entries(entries)
      .filter(([key]) => key.startsWith(prefix))
      .map(([key, value]) => ({ ...value, urlStorageKey: key }));
  }

  private read(): Entries {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw e;
    }
    try {
      const parsed = JSON.parse(text) as unknown;
      return parsed && typeof parsed === 'object' ? (parsed as Entries) : {};
    } catch {
      // A damaged file only costs the ability to resume; never refuse to upload over it.
      return {};
    }
  }

  /** Read-modify-write through a temporary file and rename, so a kill mid-write leaves the old file whole. */
  private update(change: (entries: Entries) => void): void {
    const entries = this.read();
    change(entries);
    makeDirectory(path.dirname(this.file));
    // A temporary file of this process's own: two pushes at once never write into one.
    writeAtomicallySync(this.file, `${JSON.stringify(entries, null, 2)}\n`, 0o600, `${this.file}.${process.pid}.tmp`);
  }
}
