// Integrity by RFC 9530's fields, on the checks tuspass already makes: Content-Digest covers one
// request's content and is verified as it streams, exactly as Upload-Checksum is (nothing of a
// mismatching body is kept); Repr-Digest covers the whole representation and is compared with
// the digests the store computed, once the request carrying it has completed the upload.
import type express from 'express';
import { ERRORS, TuspassError } from '../../../core/errors.ts';
import type { Upload } from '@tus/utils';
import { bodyChecksum } from '../../hashing/checksum.ts';
import type { AppendOptions, UploadStore } from '../../backends/store/upload-store.ts';
import { DigestFieldError, digestField, type FieldDigest } from './fields.ts';

function digestsOf(req: express.Request, name: string): FieldDigest[] {
  try {
    return digestField(req.get(name));
  } catch (e) {
    if (e instanceof DigestFieldError) throw new TuspassError(ERRORS.ERR_DRAFT_DIGEST_INVALID, e.message);
    throw e;
  }
}

/** The request's Content-Digest as the checksum its body must match (its first algorithm tuspass computes). */
export async function contentChecksum(req: express.Request): Promise<AppendOptions['checksum']> {
  const first = digestsOf(req, 'content-digest')[0];
  return first && { expected: first, running: await bodyChecksum(first.algorithm) };
}

/** The store's digest names for RFC 9530's algorithms it keeps for whole uploads. */
const STORED = { md5: 'md5', sha1: 'sha1' } as const;

/**
 * The Repr-Digest check, for the request that completes the upload: "If the digests don't match,
 * the server SHOULD consider the upload failed, not process the representation further" — the
 * upload is removed before any completion hook or form sees it.
 */
export function reprDigestCheck(
  req: express.Request,
  store: UploadStore,
): ((upload: Upload) => Promise<void>) | undefined {
  const wanted = digestsOf(req, 'repr-digest').filter(
    (d) => d.algorithm === 'md5' || (d.algorithm === 'sha1' && store.algorithms.includes('sha1')),
  );
  if (!wanted.length) return undefined;
  return async (upload) => {
    const digests = await store.digests(upload.id, upload.offset);
    for (const d of wanted) {
      const hex = digests[STORED[d.algorithm as keyof typeof STORED]];
      if (hex !== undefined && !Buffer.from(hex, 'hex').equals(d.digest)) {
        await store.remove(upload.id);
        throw new TuspassError(ERRORS.ERR_DRAFT_DIGEST_MISMATCH, `${d.algorithm} differs`);
      }
    }
  };
}
