// The draft's header fields as Structured Fields (RFC 9651) and the fields it borrows:
// Content-Disposition's filename (RFC 6266) and the digests of RFC 9530.
import type { ChecksumAlgorithm } from '../../hashing/checksum.ts';

/**
 * A Boolean item (`?0`, `?1`, parameters allowed). "Other values MUST cause the entire header field
 * to be ignored": anything else reads as absent.
 */
export function sfBoolean(value: string | undefined): boolean | undefined {
  const m = value === undefined ? null : /^\s*\?([01])\s*(?:;.*)?$/.exec(value);
  return m ? m[1] === '1' : undefined;
}

/** A non-negative Integer item (at most 15 digits, parameters allowed); anything else reads as absent. */
export function sfNonNegativeInteger(value: string | undefined): number | undefined {
  const m = value === undefined ? null : /^\s*(\d{1,15})\s*(?:;.*)?$/.exec(value);
  return m ? Number(m[1]) : undefined;
}

/** Upload-Limit, a Dictionary of Integers; members without a value are left out. */
export function uploadLimit(limits: Record<string, number | undefined>): string | undefined {
  const members = Object.entries(limits)
    .filter((e): e is [string, number] => e[1] !== undefined && Number.isFinite(e[1]))
    .map(([k, n]) => `${k}=${Math.max(0, Math.floor(n))}`);
  return members.length ? members.join(', ') : undefined;
}

/** RFC 9530's algorithm names for the checksums tuspass computes. */
const DIGEST_ALGORITHMS: Record<string, ChecksumAlgorithm> = {
  'sha-256': 'sha256',
  'sha-512': 'sha512',
  md5: 'md5',
  sha: 'sha1',
};

export interface FieldDigest {
  algorithm: ChecksumAlgorithm;
  digest: Buffer;
}

export class DigestFieldError extends Error {}

/**
 * Repr-Digest / Content-Digest: a Dictionary of Byte Sequences (`sha-256=:base64:, md5=:...:`).
 * Returns every member whose algorithm tuspass computes, in the field's order; members of other
 * algorithms are skipped ("a recipient MAY ignore" them). A field that is not such a dictionary is
 * a DigestFieldError.
 */
export function digestField(value: string | undefined): FieldDigest[] {
  if (value === undefined) return [];
  const found: FieldDigest[] = [];
  for (const member of value.split(',')) {
    const m = /^\s*([a-z*][a-z0-9_.*-]*)=:([A-Za-z0-9+/]*={0,2}):\s*(?:;.*)?$/.exec(member);
    if (!m) throw new DigestFieldError(`not a dictionary of byte sequences: ${JSON.stringify(value.slice(0, 80))}`);
    const algorithm = DIGEST_ALGORITHMS[m[1]!];
    if (algorithm) found.push({ algorithm, digest: Buffer.from(m[2]!, 'base64') });
  }
  return found;
}

/**
 * The filename of a Content-Disposition (RFC 6266): `filename*` (RFC 8187, UTF-8) over `filename`.
 * Only the last path segment is kept, as a file name and never a path.
 */
export function dispositionFilename(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  let name: string | undefined;
  const extended = /(?:^|;)\s*filename\*\s*=\s*(?:UTF-8|utf-8)'[^']*'([^;\s]+)/.exec(value);
  if (extended) {
    try {
      name = decodeURIComponent(extended[1]!);
    } catch {
      name = undefined;
    }
  }
  if (name === undefined) {
    const plain = /(?:^|;)\s*filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/.exec(value);
    name = plain ? (plain[1] !== undefined ? plain[1].replace(/\\(.)/g, '$1') : plain[2]) : undefined;
  }
  const base = name
    ?.split(/[/\\]/)
    .pop()
    ?.replace(/[\x00-\x1f\x7f]/g, '');
  return base && base !== '.' && base !== '..' ? base : undefined;
}
