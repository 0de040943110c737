// The expiration extension. An unfinished upload expires EXPIRE_AFTER after its last write (or its
// creation, before any): an upload still receiving bytes never expires under its sender, however
// long it takes. "Its value MAY change over time" — it moves with every PATCH. One that received no
// byte expires EXPIRE_UNSTARTED_AFTER after its creation (backends/store/stored-upload.ts expiresAt).
import type { Upload } from '@tus/utils';
import { uploadsExpired } from '../ops/metrics.ts';
import type { UploadStore } from '../backends/store/upload-store.ts';
import { expiresAt as expiryOf } from '../backends/store/stored-upload.ts';
import { httpDate } from '../http/tus-headers.ts';

/** When the upload expires, or undefined if it never will (no expiration set, or finished). */
export async function expiresAt(store: UploadStore, upload: Upload): Promise<number | undefined> {
  if (upload.size !== undefined && upload.offset === upload.size) return undefined;
  return expiryOf(upload, await store.written(upload.id), store.expiry);
}

export async function isExpired(store: UploadStore, upload: Upload): Promise<boolean> {
  const at = await expiresAt(store, upload);
  return at !== undefined && Date.now() > at;
}

/** "This header MUST be included in every PATCH response if the upload is going to expire." */
export async function expiresHeader(store: UploadStore, upload: Upload): Promise<Record<string, string>> {
  return expiresField(await expiresAt(store, upload));
}

/**
 * "If the expiration is known at the creation, the Upload-Expires header MUST be included in the
 * response to the initial POST request": an upload just created, no byte of it written (nothing read back).
 */
export function createdExpiresHeader(store: UploadStore, upload: Upload): Record<string, string> {
  return expiresField(expiryOf(upload, { size: 0, mtimeMs: Date.now() }, store.expiry));
}

// HTTP dates have whole seconds: rounded up, so the header never says "expired" too early.
const expiresField = (at: number | undefined): Record<string, string> =>
  at === undefined ? {} : { 'Upload-Expires': httpDate(Math.ceil(at / 1000) * 1000) };

/** The first sweep after a start: soon, so a server restarted more often than `everyMs` still sweeps. */
const FIRST_SWEEP_MS = 60_000;

/**
 * Removes expired uploads now and then (their owed bytes leave the free-space ledger with them, see
 * the store's remove); returns a function that stops it. Each sweep is scheduled when the last
 * one ended, so a slow sweep over a large store never overlaps the next.
 */
export function startExpirySweep(store: UploadStore, everyMs: number, log: (line: string) => void): () => void {
  if (store.expiry.afterLastWrite <= 0 && store.expiry.unstarted <= 0) return () => {};
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const later = (ms: number) => {
    if (stopped) return;
    timer = setTimeout(sweep, ms);
    timer.unref();
  };
  const sweep = () => {
    store
      .deleteExpired()
      .then(
        (n) => {
          uploadsExpired.inc(n);
          if (n) log(`expiry: removed ${n} expired upload(s)`);
        },
        (e: Error) => log(`expiry: sweep failed: ${e.message}`),
      )
      .finally(() => later(everyMs));
  };
  later(Math.min(everyMs, FIRST_SWEEP_MS));
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
