// Writes and reads `tuspass push`'s fingerprint file as a killed run leaves it, so tests can
// set up an earlier upload (e.g. one that then expires) without racing a real kill.
import fs from 'node:fs';
import path from 'node:path';

interface StoredEntry {
  uploadUrl?: string | null;
  parallelUploadUrls?: (string | null)[] | null;
}

/** tus-js-client's Node fingerprint: node-file-<absolute path>-<size>-<mtime ms>-<endpoint>. */
export function nodeFingerprint(file: string, endpoint: string): string {
  const stat = fs.statSync(file);
  return ['node-file', path.resolve(file), stat.size, stat.mtime.getTime(), endpoint].join('-');
}

export function storeEarlierUpload(fingerprintFile: string, file: string, endpoint: string, entry: StoredEntry): void {
  const existing = fs.existsSync(fingerprintFile)
    ? (JSON.parse(fs.readFileSync(fingerprintFile, 'utf8')) as Record<string, unknown>)
    : {};
  const key = `tus::${nodeFingerprint(file, endpoint)}::1`;
  existing[key] = { size: fs.statSync(file).size, metadata: {}, creationTime: new Date().toString(), ...entry };
  fs.writeFileSync(fingerprintFile, JSON.stringify(existing));
}

export function readStoredUploads(fingerprintFile: string): StoredEntry[] {
  if (!fs.existsSync(fingerprintFile)) return [];
  return Object.values(JSON.parse(fs.readFileSync(fingerprintFile, 'utf8')) as Record<string, StoredEntry>);
}

/** As readStoredUploads, while a push may be rewriting the file (FileUrlStorage writes it in place): a
 * half-written file reads as nothing stored yet. */
export function storedUploadsSoFar(fingerprintFile: string): StoredEntry[] {
  try {
    return readStoredUploads(fingerprintFile);
  } catch (e) {
    if (e instanceof SyntaxError) return [];
    throw e;
  }
}
