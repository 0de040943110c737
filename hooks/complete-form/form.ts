// Builds the nginx-upload-module style "altered form" for a finished upload (docs/completion-form.md).
import type { HookUpload } from '../types.ts';

export const FORM_VERSION = '1';
const FIELD_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

export interface FormOptions {
  /** Metadata keys copied into the form as they are. */
  passFields: RegExp;
}

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
  // upload_pass_form_field equivalents.
  for (const [key, value] of Object.entries(meta)) {
    if (options.passFields.test(key) && !form.has(key)) form.set(key, value);
  }
  return form;
}
