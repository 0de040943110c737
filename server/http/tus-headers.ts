// tus names and header parsing shared by the upload server's modules.
import { ERRORS, TuspassError } from '../../core/errors.ts';
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
/** Headers browsers may send and read beyond tus's own list (options-handler.ts, tus-response.ts). */
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

/** A metadata key "MUST NOT contain spaces and commas and MUST NOT be empty"; "SHOULD be ASCII encoded": kept ASCII. */
const METADATA_KEY = /^[\x21-\x2b\x2d-\x7e]+$/;
/** A base64 value: whole groups of four, padding only at the end. */
const METADATA_VALUE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Upload-Metadata: "one or more comma-separated key-value pairs. The key and value MUST be separated
 * by a space ... the value MUST be Base64 encoded. All keys MUST be unique." A key may come without
 * a value (null). Undefined when the header breaks any of that. The result has no prototype, so keys
 * such as `__proto__` or `constructor` are keys like any other.
 */
export function parseMetadata(header: string): Record<string, string | null> | undefined {
  const meta: Record<string, string | null> = Object.create(null);
  if (header.trim() === '') return undefined;
  for (const pair of header.split(',')) {
    const space = pair.indexOf(' ');
    const key = space < 0 ? pair : pair.slice(0, space);
    const value = space < 0 ? undefined : pair.slice(space + 1);
    if (!METADATA_KEY.test(key) || Object.hasOwn(meta, key)) return undefined;
    if (value !== undefined && !METADATA_VALUE.test(value)) return undefined;
    // A key with an empty value ("name ") reads as one without (null), as tus-js-client and @tus/server read it.
    meta[key] = value ? Buffer.from(value, 'base64').toString('utf8') : null;
  }
  return meta;
}

/** A request's Upload-Metadata: undefined when absent, 400 ERR_METADATA_INVALID when malformed. */
export function requestMetadata(header: string | undefined): Record<string, string | null> | undefined {
  if (header === undefined) return undefined;
  const meta = parseMetadata(header);
  if (!meta) throw new TuspassError(ERRORS.ERR_METADATA_INVALID);
  return meta;
}
