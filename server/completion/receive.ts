// Receiving one completion form: the signature, the path (inside the store, a regular file), the size
// on disk, then the catalog. The checks and the catalog are one function (formRecorder) for both ways a
// form arrives: signed over HTTP to POST /complete/ (app.ts, formReceiver), and in `tuspass start` as
// a direct call from the completion deliverer of the same process (localCompletion).
import type { ClientResponse } from '../../core/http-client.ts';
import type { Config } from '../config/config.ts';
import { ERRORS, TuspassError } from '../../core/errors.ts';
import { completionSecret } from '../config/secret.ts';
import { checkSignature } from '../../core/signature.ts';
import { UPLOAD_COMPLETE, type CompletionRecord, type FormAnswer } from '../../core/record.ts';
import type { Catalog, UploadRecord } from '../backends/catalog/catalog.ts';
import { findDuplicate } from './dedupe.ts';
import { parseCompletionForms, type CompletionForm } from '../complete-form/read.ts';
import { checkStorePath, inStoreName } from './store-path.ts';
import { checkStoreObject } from './store-object.ts';
import { isObjectLocation } from '../../core/wire.ts';

/** A record's download URL: CompletionRecord's `url`. */
export const fileUrl = (r: UploadRecord) => `/api/uploads/${encodeURIComponent(r.id)}/file`;

export type FormReceiver = (body: Buffer, signature: string | undefined) => Promise<FormAnswer>;

/** Records the files of one form (parsed already): the checks, then the catalog. */
export type FormRecorder = (forms: CompletionForm[]) => Promise<FormAnswer>;

/** Throws TuspassError (401 signature, 403 path, 422 missing file or size, 400 form) for a refused form. */
export function formReceiver(config: Config, record: FormRecorder): FormReceiver {
  const secret = completionSecret(config);
  return async (body, signature) => {
    // The completion-form key, within SIGNATURE_TOLERANCE: a hook payload or an old form replayed here is refused.
    const check = checkSignature(secret, 'completion-form', body, signature, {
      toleranceMs: config.signatureToleranceMs,
    });
    if (!check.ok) throw new TuspassError(ERRORS.ERR_SIGNATURE_INVALID, undefined, `signature ${check.reason}`);
    return record(parseCompletionForms(body.toString('utf8')));
  };
}

/**
 * What every form goes through, however it arrived: each file inside the store and of the size the
 * form says (403, 422), then the catalog, deduplicated by upload id (and by md5 with DEDUPE=md5).
 */
export function formRecorder(config: Config, catalog: Catalog): FormRecorder {
  return async (forms) => {
    // Every file checked before any is recorded: a form is recorded whole or not at all.
    for (const form of forms) {
      const onDisk = isObjectLocation(form.path)
        ? await checkStoreObject(config, form.path)
        : await checkStorePath(config.storeDir, form.path);
      if (onDisk.size !== form.size) {
        // The answer may reach the uploading client (the complete-form hook passes it on): the path relative to the
        // store.
        throw new TuspassError(
          ERRORS.ERR_SIZE_MISMATCH,
          `${inStoreName(config.storeDir, form.path)}: form says ${form.size}, disk has ${onDisk.size}`,
          form.path,
        );
      }
    }
    const answers: CompletionRecord[] = [];
    for (const form of forms) {
      const { field: _field, ...upload } = form;
      // DEDUPE=md5: the same owner's same file (name and md5) answers the first record (dedupe.ts).
      // A repeated notice of an upload already recorded is not a duplicate: catalog.record answers it below.
      const first =
        config.dedupe === 'md5' && !(await catalog.byUploadId(upload.uploadId))
          ? await findDuplicate(catalog, upload)
          : undefined;
      if (first) {
        answers.push({
          id: first.id,
          name: first.name,
          size: first.size,
          md5: first.md5,
          url: fileUrl(first),
          duplicate: true,
        });
        continue;
      }
      // A repeated notice (retry of a delivered one) answers the existing record: the contract's idempotency.
      const { record } = await catalog.record(upload);
      answers.push({ id: record.id, name: record.name, size: record.size, md5: record.md5, url: fileUrl(record) });
    }
    return { message: UPLOAD_COMPLETE, ...answers[0]!, ...(answers.length > 1 && { files: answers }) };
  };
}

/**
 * The completion service as the deliverer's transport in `tuspass start` (complete-form/post.ts):
 * the form as the writer built it goes straight to the recorder — no HTTP, no signature (nothing
 * leaves the process), the fields not turned into text and parsed back — and answers as POST
 * /complete/ does (status and JSON), so the client's answer is the same either way. An error that is
 * not a refusal (the catalog's database away) is thrown: the deliverer queues the form and retries.
 */
export function localCompletion(record: FormRecorder, log: (line: string) => void) {
  return async (form: URLSearchParams): Promise<ClientResponse> => {
    const json = { 'content-type': 'application/json; charset=utf-8' };
    try {
      const answer = await record(parseCompletionForms(form));
      return { status: 200, headers: json, body: JSON.stringify(answer) };
    } catch (e) {
      if (!(e instanceof TuspassError)) throw e;
      log(`completion: ${e.code} (in-process form): ${e.message}${e.logDetail ? ` (${e.logDetail})` : ''}`);
      return { status: e.status, headers: json, body: JSON.stringify(e.toJSON()) };
    }
  };
}
