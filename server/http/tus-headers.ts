// tus names and header parsing shared by the upload server's modules.
import { COMPLETION_HEADER } from '../../core/wire.ts';
import { ALWAYS_EXPOSED, DOWNLOAD_EXPOSED } from './cors.ts';

export const TUS_VERSION = '1.0.0';
export const TUS_PATH = '/files';
/**
 * The IETF draft's request headers (server/upload/ietf/): a browser's preflight names them without
 * Upload-Draft-Interop-Version, so the tus OPTIONS answers it and must allow them.
 */
const DRAFT_REQUEST_HEADERS = [
  'Upload-Draft-Interop-Version',
  'Upload-Complete',
  'Upload-Incomplete',
  'Content-Digest',
  'Repr-Digest',
  'Content-Disposition',
];
/** Headers browsers may send and read beyond @tus/server's own list. */
export const EXTRA_ALLOWED_HEADERS = ['Upload-Checksum', ...DRAFT_REQUEST_HEADERS];
export const EXTRA_EXPOSED_HEADERS = [
  COMPLETION_HEADER,
  'Upload-Expires',
  'Tus-Checksum-Algorithm',
  ...ALWAYS_EXPOSED,
  ...DOWNLOAD_EXPOSED,
];

/** A non-negative decimal integer header value, or undefined when it is anything else. */
export function nonNegativeInteger(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,16}$/.test(value.trim())) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** RFC 9110 (formerly RFC 7231) IMF-fixdate, as Upload-Expires requires. */
export const httpDate = (ms: number) => new Date(ms).toUTCString();
