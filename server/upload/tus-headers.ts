// Parsing of tus request headers shared by tuspass's own handlers.
export const TUS_VERSION = '1.0.0';

/** A non-negative decimal integer header value, or undefined when it is anything else. */
export function nonNegativeInteger(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,16}$/.test(value.trim())) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** RFC 9110 (formerly RFC 7231) IMF-fixdate, as Upload-Expires requires. */
export const httpDate = (ms: number) => new Date(ms).toUTCString();
