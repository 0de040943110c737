// The concatenation extension's final upload, built from its finished partials in order, by either
// store (digest-store.ts, s3/s3-store.ts): the partials' bytes, read back one after the other, are one
// append to the final, so the final's digests are computed on that same read (md5 of a concatenation
// cannot be made from the partials' own).
import { ERRORS, TuspassError } from '../../../core/errors.ts';

/** A finished partial's bytes from its start, open; undefined when it is gone. */
export type PartialBytes = (
  id: string,
) => Promise<{ chunks: AsyncIterable<Buffer>; close(): Promise<void> | void } | undefined>;

/**
 * Appends the partials' bytes one after the other as one body (`append` hashes the whole on the
 * way); returns the final upload's offset. The caller holds the partials' locks (final-handler.ts),
 * so none is removed meanwhile; a partial missing all the same (removed by hand) is
 * ERR_CONCAT_PARTIAL_NOT_FOUND, found when it is opened, and ends the body there.
 */
export function concatenateParts(
  parts: readonly string[],
  bytesOf: PartialBytes,
  append: (source: AsyncIterable<Buffer>) => Promise<number>,
): Promise<number> {
  return append(partialsInOrder(parts, bytesOf));
}

async function* partialsInOrder(parts: readonly string[], bytesOf: PartialBytes): AsyncGenerator<Buffer> {
  for (const part of parts) {
    const opened = await bytesOf(part);
    if (!opened) throw new TuspassError(ERRORS.ERR_CONCAT_PARTIAL_NOT_FOUND, part);
    try {
      yield* opened.chunks;
    } finally {
      await opened.close();
    }
  }
}
