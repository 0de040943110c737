// The altered form of one multipart request, as the nginx upload module builds it: every file under
// its own prefix (its form-field name), the pass-through fields once; delivered by the one completion
// deliverer (server/complete-form/deliver.ts) exactly like the tus path's form: the same contract
// (version 2), headers, queueing when the app is down, CLEANUP_STATUSES removing the request's files.
// `<field>.path` is where the store keeps the file (a path, or s3://bucket/key), `<field>.url` the
// object's presigned URL with S3_FORM_URL_TTL, as the tus path's form has them (docs/completion-form.md).
import type { UploadStore } from '../../backends/store/upload-store.ts';
import type { Digests } from '../../../core/wire.ts';
import { errorText, type Log } from '../../../core/logger.ts';
import { COMPLETION_HEADER } from '../../../core/wire.ts';
import { UPLOAD_COMPLETE } from '../../../core/record.ts';
import { formKey, impersonatesGenerated } from '../../complete-form/fields.ts';
import type { CompletionDeliverer } from '../../complete-form/deliver.ts';
import { answerOf, type TusAnswer } from '../../pipeline/upload-events.ts';
import type { FormTemplates, Variable } from '../../config/form-templates.ts';

/** One file of the request, written and hashed. */
export interface ReceivedFile {
  /** The store's upload id of the file. */
  id: string;
  /** `<field>`: the part's form-field name, made unique within the request. */
  field: string;
  name: string;
  contentType: string;
  digests: Digests;
  owner: string;
}

/** A file of the form: where the store has it, and the URL of its bytes when the store gives one (S3_FORM_URL_TTL). */
type FormFile = ReceivedFile & { url?: string };

export interface MultipartCompletionDeps {
  store: UploadStore;
  deliverer: CompletionDeliverer;
  passFields: RegExp;
  templates: FormTemplates;
  log: Log;
}

/**
 * The form: per file what FORM templates say (django-nginx-upload's fields by default), then the pass-through fields.
 */
export function multipartForm(
  files: FormFile[],
  fields: Array<[string, string]>,
  deps: Pick<MultipartCompletionDeps, 'store' | 'passFields' | 'templates' | 'log'>,
): URLSearchParams {
  const form = new URLSearchParams();
  files.forEach((f, i) => {
    const path = deps.store.location(f.id);
    const d = f.digests;
    const vars: Record<Variable, string> = {
      upload_field_name: f.field,
      upload_file_name: f.name,
      upload_content_type: f.contentType,
      upload_tmp_path: path,
      upload_file_md5: d.md5,
      upload_file_md5_uc: d.md5.toUpperCase(),
      upload_file_sha1: d.sha1 ?? '',
      upload_file_sha1_uc: (d.sha1 ?? '').toUpperCase(),
      upload_file_crc32: d.crc32 ?? '',
      upload_file_size: String(d.size),
      upload_file_number: String(i + 1),
    };
    for (const [k, v] of deps.templates.apply(vars)) form.append(k, v);
    // The contract's keys, as the tus path's form has them (server/complete-form/fields.ts).
    const contract = [
      ['url', f.url],
      ['sha1', d.sha1],
      ['crc32', d.crc32],
      ['id', f.id],
      ['owner', f.owner],
    ] as const;
    for (const [suffix, value] of contract)
      if (value !== undefined && !form.has(formKey(f.field, suffix))) form.set(formKey(f.field, suffix), value);
  });
  // upload_pass_form_field: non-file fields matching PASS_FIELDS, the first of a repeated name only.
  for (const [key, value] of fields) {
    if (!deps.passFields.test(key) || form.has(key)) continue;
    if (impersonatesGenerated(key)) {
      deps.log(
        `multipart: field ${JSON.stringify(key.slice(0, 100))} dropped: it reads as a generated form field \
(PASS_FIELDS cannot pass it)`,
      );
      continue;
    }
    form.set(key, value);
  }
  return form;
}

/**
 * Whether the answer is the built-in completion service's (tuspass completion-server behind
 * COMPLETION_URL, as in the compose file): its record JSON with django-nginx-upload's message. Another app's
 * answer is relayed as it is, redirects included.
 */
function isBuiltInAnswer(body: string): boolean {
  try {
    const json = JSON.parse(body) as { message?: unknown; url?: unknown };
    return json.message === UPLOAD_COMPLETE && typeof json.url === 'string' && json.url.startsWith('/api/uploads/');
  } catch {
    return false;
  }
}

export class MultipartCompletion {
  constructor(private readonly deps: MultipartCompletionDeps) {}

  /**
   * Delivers the request's form; the answer is the client's. Rejected (`Tuspass-Completion:
   * rejected`): the files are removed. Delivered or queued: the journal notes them handled.
   * `recordedHere`: the form reached the built-in completion service and was recorded.
   */
  async complete(
    files: ReceivedFile[],
    fields: Array<[string, string]>,
    request: { requestId?: string; whenUnqueued: string },
  ): Promise<Required<TusAnswer> & { recordedHere: boolean }> {
    const { store, deliverer } = this.deps;
    const ids = files.map((f) => f.id);
    const located = [];
    for (const f of files) located.push({ ...f, url: await store.formUrl?.(f.id) });
    const response = await deliverer.deliver({
      form: multipartForm(located, fields, this.deps),
      uploadIds: ids,
      ...request,
    });
    if (response.RejectUpload) for (const id of ids) await store.remove(id);
    else await this.journal(ids);
    const { status_code = 204, body = '', headers = {} } = answerOf(response);
    const delivered = headers[COMPLETION_HEADER] === 'delivered';
    return { status_code, body, headers, recordedHere: delivered && (deliverer.recordsHere || isBuiltInAnswer(body)) };
  }

  /** Handled: the journal says so, so a restart does not announce these files again one by one. */
  private async journal(ids: string[]): Promise<void> {
    for (const id of ids) {
      await this.deps.store
        .completionHandled(id)
        .catch((e: unknown) => this.deps.log(`multipart: journal of ${id}: ${errorText(e)}`));
    }
  }
}
