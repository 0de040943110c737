// Parses the completion form (docs/completion-form.md, contract version 2) from its urlencoded body,
// with the keys write.ts builds (fields.ts).
// Only the shape is checked here; whether the path and size are true is store-path.ts's and app.ts's job.
import path from 'node:path';
import { ERRORS, TuspassError } from '../../core/errors.ts';
import { isObjectLocation } from '../../core/wire.ts';
import {
  DEFAULT_CONTENT_TYPE,
  fieldOfKey,
  FILE_SUFFIXES,
  formKey,
  impersonatesGenerated,
  type GeneratedSuffix,
} from './fields.ts';

export interface CompletionForm {
  /** `<field>`, the prefix of the file's keys (the upload's `fieldname` metadata). */
  field: string;
  uploadId: string;
  name: string;
  contentType: string;
  path: string;
  /**
   * `<field>.url` (S3_FORM_URL_TTL): a presigned URL of the object, for an app that fetches the bytes
   * itself. Not recorded by our completion service: it expires, and the catalog serves its own download.
   */
  url?: string;
  size: number;
  md5: string;
  sha1?: string;
  crc32?: string;
  /** `<field>.owner`: the verified subject that created the upload; '' when anonymous (or a form without it). */
  owner: string;
  /** Every key outside `<field>.*`: the pass-through metadata. */
  fields: Record<string, string>;
}

/** Every `<field>` some key of the form names with `.path`. */
const pathFields = (params: URLSearchParams): string[] => [
  ...new Set([...params.keys()].map((k) => fieldOfKey(k, 'path')).filter((f) => f !== undefined)),
];

/**
 * `<field>` is whatever prefix carries `.path`. A pass-through key could also end in `.path`, so when
 * several do, the one that also has `.size` wins; still more than one is ambiguous and refused.
 */
function findField(params: URLSearchParams): string {
  const prefixes = pathFields(params);
  if (prefixes.length === 0) throw new TuspassError(ERRORS.ERR_FORM_FIELD_MISSING, formKey('<field>', 'path'));
  const withSize = prefixes.filter((p) => params.has(formKey(p, 'size')));
  const candidates = withSize.length ? withSize : prefixes;
  if (candidates.length > 1)
    throw new TuspassError(ERRORS.ERR_FORM_FIELD_INVALID, `several file fields: ${candidates.join(', ')}`);
  return candidates[0]!;
}

/**
 * Every file of a form: a multipart request's form (server/upload/nginx/) names several, each
 * under its own prefix with all of `.path`, `.size`, `.md5` and `.id`; the pass-through fields are
 * the keys under none of them. A form with one such prefix is parseCompletionForm's.
 */
export function parseCompletionForms(body: string | URLSearchParams): CompletionForm[] {
  // In `tuspass start` the form arrives as the writer built it (receive.ts localCompletion): its
  // fields are read as they are, never turned into text and parsed back.
  const params = typeof body === 'string' ? new URLSearchParams(body) : body;
  const complete = pathFields(params).filter((p) => FILE_SUFFIXES.every((s) => params.has(formKey(p, s))));
  if (complete.length < 2) return [parseCompletionForm(params)];
  return complete.map((field) => parseFields(params, field, complete));
}

export function parseCompletionForm(body: string | URLSearchParams): CompletionForm {
  const params = typeof body === 'string' ? new URLSearchParams(body) : body;
  const field = findField(params);
  return parseFields(params, field, [field]);
}

function parseFields(params: URLSearchParams, field: string, files: string[]): CompletionForm {
  const key = (name: GeneratedSuffix) => formKey(field, name);
  const optional = (name: GeneratedSuffix) => params.get(key(name)) ?? undefined;
  const required = (name: GeneratedSuffix): string => {
    const v = params.get(key(name));
    if (v === null || v === '') throw new TuspassError(ERRORS.ERR_FORM_FIELD_MISSING, key(name));
    return v;
  };
  const hex = (name: GeneratedSuffix, value: string | undefined, length: number): string | undefined => {
    if (value === undefined) return undefined;
    if (!new RegExp(`^[0-9a-fA-F]{${length}}$`).test(value)) {
      throw new TuspassError(ERRORS.ERR_FORM_FIELD_INVALID, `${key(name)} must be ${length} hex digits`);
    }
    return value.toLowerCase();
  };

  const sizeText = required('size');
  const size = Number(sizeText);
  if (!/^\d+$/.test(sizeText) || !Number.isSafeInteger(size)) {
    throw new TuspassError(ERRORS.ERR_FORM_FIELD_INVALID, `${key('size')} must be a decimal integer`);
  }
  const filePath = required('path');
  // The store check resolves paths; a relative one would resolve against our cwd, which means nothing.
  // An upload in the S3 store is named by its object's URL (s3://bucket/key).
  if (!path.isAbsolute(filePath) && !isObjectLocation(filePath))
    throw new TuspassError(ERRORS.ERR_FORM_FIELD_INVALID, `${key('path')} must be absolute or s3://`);

  const fields: Record<string, string> = {};
  // A key that reads as another field's generated one (`file2.md5`) is no pass-through field: the
  // sender never passes such keys (contract version 2), so it is not recorded as one either.
  for (const [k, v] of params)
    if (!files.some((f) => k.startsWith(`${f}.`)) && !impersonatesGenerated(k) && !(k in fields)) fields[k] = v;

  // A URL the app may fetch: http(s) only (never file: or a relative one).
  const url = optional('url');
  if (url !== undefined && !/^https?:\/\/[^/]/i.test(url))
    throw new TuspassError(ERRORS.ERR_FORM_FIELD_INVALID, `${key('url')} must be an http(s) URL`);
  const sha1 = hex('sha1', optional('sha1'), 40);
  const crc32 = hex('crc32', optional('crc32'), 8);
  return {
    field,
    uploadId: required('id'),
    // The contract allows an empty name (no filename metadata) and defaults the type.
    name: optional('name') ?? '',
    contentType: optional('content_type') || DEFAULT_CONTENT_TYPE,
    owner: optional('owner') ?? '',
    path: filePath,
    ...(url !== undefined && { url }),
    size,
    md5: hex('md5', required('md5'), 32)!,
    ...(sha1 && { sha1 }),
    ...(crc32 && { crc32 }),
    fields,
  };
}
