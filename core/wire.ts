// The names that cross the wire between tuspass's parts and their clients: headers beyond tus's own,
// id forms, digest names. One home, so the server, the hooks and the clients cannot drift apart.
// The page bundles this file (client/web/build.ts): nothing here may import node: modules.

/** The answer header of a final PATCH: delivered, pending (queued) or rejected (docs/completion-form.md). */
export const COMPLETION_HEADER = 'Tuspass-Completion';

/** A request's id: kept from a proxy when sane, else assigned; echoed in answers and hook payloads. */
export const REQUEST_ID_HEADER = 'x-request-id';

/** The request id a hook payload's headers carry (the server puts it there, lower-cased). */
export function requestIdOfHeaders(header: Record<string, string[] | undefined> | undefined): string | undefined {
  return header?.[REQUEST_ID_HEADER]?.[0];
}

// The completion form's POST (server/complete-form/post.ts; docs/completion-form.md, "Request").
/** `t=<unix seconds>,v1=<hex HMAC>` over the body: on completion forms and HTTP hook payloads (core/signature.ts). */
export const SIGNATURE_HEADER = 'Tuspass-Signature';
/** The form's contract version (server/complete-form/fields.ts: FORM_VERSION). */
export const FORM_VERSION_HEADER = 'Tuspass-Form-Version';
/** The tus upload id the form is about. */
export const FORM_UPLOAD_ID_HEADER = 'Tuspass-Upload-Id';
/** The same on every attempt of one form, for the receiver to drop duplicates. */
export const FORM_NOTICE_ID_HEADER = 'Tuspass-Notice-Id';

/** On HTTP hook requests of notices (post-*): the same on every retry (hooks/transports/http.ts). */
export const HOOK_NOTICE_ID_HEADER = 'Hook-Notice-Id';

/**
 * The one form an upload id has: the store makes 32 lowercase hex digits, a pre-create hook may
 * choose its own within this alphabet. No '.', '/', '%' or '\': an id names one file in the store
 * and nothing beside it (`<id>.json`, `<id>.digest`), and it has exactly one spelling in a URL.
 * The characters, for patterns that embed an id (upload URLs); UPLOAD_ID for a whole id.
 */
/**
 * Where an upload in an object store is (the completion form's `.path`, a hook's Storage): its object's
 * URL, s3://bucket/key; a file path otherwise.
 */
export const OBJECT_LOCATION = /^s3:\/\/([^/]+)\/(.+)$/;
export const isObjectLocation = (location: string): boolean => location.startsWith('s3://');

export const UPLOAD_ID_CHARS = '[A-Za-z0-9_-]{1,128}';
export const UPLOAD_ID = new RegExp(`^${UPLOAD_ID_CHARS}$`);

/** The digests tuspass computes on the way in: md5 always, the others when DIGESTS asks. Their names are form keys
 * (`<field>.md5`) and hook payload fields. */
export const DIGEST_NAMES = ['md5', 'sha1', 'crc32'] as const;
export type DigestName = (typeof DIGEST_NAMES)[number];

/** An upload's digests as hooks and the completion form carry them: lowercase hex, and the size they cover. */
export type Digests = { md5: string; size: number } & Partial<Record<Exclude<DigestName, 'md5'>, string>>;
