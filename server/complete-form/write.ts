// Builds the nginx-upload-module style "altered form" for a finished upload (docs/completion-form.md);
// its keys are fields.ts's, which read.ts parses with.
import type { HookUpload } from '../../hooks/types.ts';
import { DEFAULT_CONTENT_TYPE, DEFAULT_FIELD, FIELD_NAME, formKey, impersonatesGenerated } from './fields.ts';

export interface FormOptions {
  /** Metadata keys copied into the form as they are. */
  passFields: RegExp;
  /** Where dropped pass-through keys are reported. */
  log?: (line: string) => void;
}

/** `url`: where the app may fetch the bytes itself (S3_FORM_URL_TTL's presigned URL), sent as `<field>.url`. */
export function completionForm(upload: HookUpload, options: FormOptions, url?: string): URLSearchParams {
  const meta = upload.MetaData;
  const field = meta.fieldname && FIELD_NAME.test(meta.fieldname) ? meta.fieldname : DEFAULT_FIELD;
  const key = (suffix: Parameters<typeof formKey>[1]) => formKey(field, suffix);
  const digests = upload.Digests;
  if (!digests || !upload.Storage)
    throw new Error(`upload ${upload.ID}: no digests or storage path to build the form from`);
  const form = new URLSearchParams();
  // upload_set_form_field equivalents: per-file fields.
  form.set(key('name'), meta.filename ?? meta.name ?? '');
  form.set(key('content_type'), meta.filetype || meta.type || DEFAULT_CONTENT_TYPE);
  form.set(key('path'), upload.Storage.Path);
  if (url !== undefined) form.set(key('url'), url);
  // upload_aggregate_form_field equivalents: computed while the bytes arrived.
  form.set(key('md5'), digests.md5);
  form.set(key('size'), String(digests.size));
  if (digests.sha1) form.set(key('sha1'), digests.sha1);
  if (digests.crc32) form.set(key('crc32'), digests.crc32);
  form.set(key('id'), upload.ID);
  // The verified subject that created the upload (server/auth/); empty when it was made anonymously.
  form.set(key('owner'), upload.Owner ?? '');
  // upload_pass_form_field equivalents.
  for (const [name, value] of Object.entries(meta)) {
    if (!options.passFields.test(name)) continue;
    // Before the has() check: a key colliding with this field's own generated one is reported too.
    if (impersonatesGenerated(name)) {
      options.log?.(
        `complete-form: upload ${upload.ID}: metadata key ${JSON.stringify(name.slice(0, 100))} dropped: it reads ` +
          'as a generated form field (PASS_FIELDS cannot pass it)',
      );
      continue;
    }
    if (!form.has(name)) form.set(name, value);
  }
  return form;
}
