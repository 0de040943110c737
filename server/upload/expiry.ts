// The expiration extension: when an unfinished upload expires, and the header that says so.
import type { Upload } from '@tus/utils';
import type { DigestFileStore } from './digest-store.ts';
import { httpDate } from './tus-headers.ts';

/** When the upload expires, or undefined if it never will (no expiration set, or finished). */
export function expiresAt(store: DigestFileStore, upload: Upload): number | undefined {
  const period = store.getExpiration();
  if (period <= 0 || !upload.creation_date) return undefined;
  if (upload.size !== undefined && upload.offset === upload.size) return undefined;
  return new Date(upload.creation_date).getTime() + period;
}

export const isExpired = (store: DigestFileStore, upload: Upload) => {
  const at = expiresAt(store, upload);
  return at !== undefined && Date.now() > at;
};

/** "This header MUST be included in every PATCH response if the upload is going to expire." */
export function expiresHeader(store: DigestFileStore, upload: Upload): Record<string, string> {
  const at = expiresAt(store, upload);
  return at === undefined ? {} : { 'Upload-Expires': httpDate(at) };
}

/** Removes expired uploads now and then; returns a function that stops it. */
export function startExpirySweep(store: DigestFileStore, everyMs: number, log: (line: string) => void): () => void {
  if (store.getExpiration() <= 0) return () => {};
  const timer = setInterval(() => {
    store.deleteExpired().then(
      (n) => n && log(`expiry: removed ${n} expired upload(s)`),
      (e: Error) => log(`expiry: sweep failed: ${e.message}`),
    );
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
