// How large an upload's multipart parts are. S3 allows at most 10,000 parts, each but the last at
// least 5 MiB and at most 5 GiB: a part size fixed whatever the length (tusd's default 5 MiB) caps an
// upload at 50 GB. Here the length decides: the smallest size, in whole MiB, at which the rest of
// the upload fits in the parts left.

export const MAX_PARTS = 10_000;
export const MIN_PART = 5 * 2 ** 20;
export const MAX_PART = 5 * 2 ** 30;
/** S3's largest object: a longer Upload-Length is refused at once. */
export const MAX_OBJECT = 5 * 2 ** 40;
const MIB = 2 ** 20;

/**
 * The part size from here on. `minimum`: S3_PART_SIZE. `length`: the upload's, undefined while
 * deferred. `offset`/`partsUsed`: where the upload is (the parts already sent keep their size).
 * Equal parts (S3_EQUAL_PARTS): the size chosen at the first part is kept (`current`), so an upload of
 * unknown length stays at `minimum` and holds at most 10,000 × S3_PART_SIZE.
 */
export function partSize(
  minimum: number,
  length: number | undefined,
  offset = 0,
  partsUsed = 0,
  equal = false,
  current?: number,
): number {
  if (equal && current !== undefined) return current;
  const floor = Math.max(minimum, current ?? 0, MIN_PART);
  if (length === undefined) return floor;
  const left = MAX_PARTS - partsUsed;
  if (left <= 0) return MAX_PART;
  const needed = Math.ceil(Math.ceil((length - offset) / left) / MIB) * MIB;
  return Math.min(MAX_PART, Math.max(floor, needed));
}

/** The most bytes an upload can reach with parts of this size from where it is. */
export const capacity = (size: number, offset: number, partsUsed: number): number =>
  offset + size * (MAX_PARTS - partsUsed);
