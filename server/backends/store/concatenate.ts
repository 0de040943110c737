// The concatenation extension's final upload, built from its finished partials in order.
import fsp from 'node:fs/promises';
import { ERRORS, TuspassError } from '../../../core/errors.ts';
import { readChunks } from '../../hashing/read-chunks.ts';

/**
 * Appends the partials' bytes one after the other (`append` hashes the whole on the way); returns the
 * final upload's offset. The caller holds the partials' locks (final-handler.ts), so none is removed
 * meanwhile; a partial missing all the same (removed by hand) is ERR_CONCAT_PARTIAL_NOT_FOUND, found
 * when it is opened — a read stream's open failing before anyone listens would be an unhandled
 * 'error'.
 */
export async function concatenateParts(
  parts: readonly string[],
  filePath: (id: string) => string,
  append: (source: AsyncIterable<Buffer>, offset: number) => Promise<number>,
): Promise<number> {
  let offset = 0;
  for (const part of parts) {
    const handle = await fsp.open(filePath(part), 'r').catch((e: NodeJS.ErrnoException) => {
      throw e.code === 'ENOENT' ? new TuspassError(ERRORS.ERR_CONCAT_PARTIAL_NOT_FOUND, part) : e;
    });
    try {
      offset = await append(readChunks(handle, 0, Infinity), offset);
    } finally {
      await handle.close();
    }
  }
  return offset;
}
