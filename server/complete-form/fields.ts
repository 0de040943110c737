// The completion form's one definition (docs/completion-form.md, contract version 2): its version, the
// `<field>` name, the keys generated for a file and how they are spelled. The writers (write.ts, and
// the multipart path's server/upload/nginx/completion.ts) and the reader (read.ts) all go through
// it, so what is sent and what is read cannot drift apart.
import { DIGEST_NAMES } from '../../core/wire.ts';

/** 2: purpose-bound, timestamped signatures (`t=…,v1=…`); generated keys never come from metadata. Sent as
 * Tuspass-Form-Version. */
export const FORM_VERSION = '2';

/** `<field>`: the upload's `fieldname` metadata when it matches, else DEFAULT_FIELD. */
export const FIELD_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
export const DEFAULT_FIELD = 'file1';

/** `<field>.content_type` when the metadata names no type (and when a form carries none). */
export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

/** The keys the form generates for a file: `<field>.<suffix>`, the digests by their names on the wire. H6's `.owner`
 * included. */
export const GENERATED_SUFFIXES = [
  'name',
  'content_type',
  'path',
  'url',
  ...DIGEST_NAMES,
  'size',
  'id',
  'owner',
] as const;
export type GeneratedSuffix = (typeof GENERATED_SUFFIXES)[number];

/** The suffixes every file of a form carries; a multipart form's files are told apart by them (read.ts). */
export const FILE_SUFFIXES = ['path', 'size', 'md5', 'id'] as const satisfies readonly GeneratedSuffix[];

/** A file's key: `<field>.<suffix>`. */
export const formKey = (field: string, suffix: GeneratedSuffix): string => `${field}.${suffix}`;

/** The `<field>` of a key that ends in `.<suffix>` (and whose prefix is a field name), else undefined. */
export function fieldOfKey(key: string, suffix: GeneratedSuffix): string | undefined {
  const end = `.${suffix}`;
  if (!key.endsWith(end)) return undefined;
  const field = key.slice(0, -end.length);
  return FIELD_NAME.test(field) ? field : undefined;
}

const GENERATED_KEY = new RegExp(`^.+\\.(?:${GENERATED_SUFFIXES.join('|')})$`);

/**
 * Whether a key reads as a generated one of some field (`file1.path`, `x.y.md5`): such a key from
 * client metadata could stand in for the real file's path, digest or owner at the receiver, whatever
 * field it names, so it never passes through, whatever PASS_FIELDS allows.
 */
export const impersonatesGenerated = (key: string): boolean => GENERATED_KEY.test(key);
