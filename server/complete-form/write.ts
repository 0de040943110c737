// Builds the nginx-upload-module style "altered form" for a finished upload (docs/completion-form.md).
import type { HookUpload } from '../../hooks/types.ts';

/** 2: purpose-bound, timestamped signatures (`t=…,v1=…`); generated keys never come from metadata. */
export const FORM_VERSION = '2';
const FIELD_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

export interface FormOptions {
  /** Metadata keys copied into the form as they are. */
  passFields: RegExp;
  /** Where dropped pass-through keys are reported. */
  log?: (line: string) => void;
}

/** The keys the form generates for a file: `<field>.<suffix>`. H6's `.owner` included. */
export const GENERATED_SUFFIXES = ['name', 'content_type', 'path', 'md5', 'size', 'sha1', 'crc32', 'id', 'owner'] as const;
const GENERATED_KEY = new RegExp(`^.+\\.(?:${GENERATED_SUFFIXES.join('|')})$`);

/**
 * Whether a key reads as a generated one of some field (`file1.path`, `x.y.md5`): such a key from
 * client metadata could stand in for the real file's path, digest or owner at the receiver, whatever
 * field it names, so it never passes through, whatever PASS_FIELDS allows.
 */
export const impersonatesGenerated = (key: string): boolean => GENERATED_KEY.test(key);

export function completionForm(upload: HookUpload, options: FormOptions): URLSearchParams {
  const meta = upload.MetaData;
  const field = meta.fieldname && FIELD_NAME.test(meta.fieldname) ? meta.fieldname : 'file1';
  const digests = upload.Digests;
  if (!digests || !upload.Storage) throw new Error(`upload ${upload.ID}: no digests or storage path to build the form from`);
  const form = new URLSearchParams();
  // upload_set_form_field equivalents: per-file fields.
  form.set(`${field}.name`, meta.filename ?? meta.name ?? '');
  form.set(`${field}.content_type`, meta.filetype || meta.type || 'application/octet-stream');
  form.set(`${field}.path`, upload.Storage.Path);
  // upload_aggregate_form_field equivalents: computed while the bytes arrived.
  form.set(`${field}.md5`, digests.md5);
  form.set(`${field}.size`, String(digests.size));
  if (digests.sha1) form.set(`${field}.sha1`, digests.sha1);
  if (digests.crc32) form.set(`${field}.crc32`, digests.crc32);
  form.set(`${field}.id`, upload.ID);
  // The verified subject that created the upload (server/auth/); empty when it was made anonymously.
  form.set(`${field}.owner`, upload.Owner ?? '');
  // upload_pass_form_field equivalents.
  for (const [key, value] of Object.entries(meta)) {
    if (!options.passFields.test(key)) continue;
    // Before the has() check: a key colliding with this field's own generated one is reported too.
    if (impersonatesGenerated(key)) {
      options.log?.(`complete-form: upload ${upload.ID}: metadata key ${JSON.stringify(key.slice(0, 100))} dropped: it reads as a generated form field (PASS_FIELDS cannot pass it)`);
      continue;
    }
    if (!form.has(key)) form.set(key, value);
  }
  return form;
}
