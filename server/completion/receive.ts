// Receiving one completion form: the signature, the path (inside the store, a regular file), the size
// on disk, then the catalog. One function for both ways a form arrives: POST /complete/ (app.ts) and,
// in `tuspass start`, straight from the complete-form hook of the same process (localCompletion).
import type { ClientResponse } from '../../core/http-client.ts';
import type { Config } from '../config.ts';
import { ERRORS, TuspassError } from '../../core/errors.ts';
import { completionSecret } from '../secret.ts';
import { checkSignature } from '../../core/signature.ts';
import { UPLOAD_COMPLETE, type CompletionRecord, type FormAnswer } from '../../core/record.ts';
import { SIGNATURE_HEADER } from '../../core/wire.ts';
import type { Catalog, UploadRecord } from './catalog.ts';
import { findDuplicate } from './dedupe.ts';
import { parseCompletionForms } from '../complete-form/read.ts';
import { checkStorePath, inStoreName } from './store-path.ts';
import { checkStoreObject, isObjectUrl } from './store-object.ts';

/** A record's download URL: CompletionRecord's `url`. */
export const fileUrl = (r: UploadRecord) => `/api/uploads/${encodeURIComponent(r.id)}/file`;

export type FormReceiver = (body: Buffer, signature: string | undefined) => Promise<FormAnswer>;

/** Throws TuspassError (401 signature, 403 path, 422 missing file or size, 400 form) for a refused form. */
export function formReceiver(config: Config, catalog: Catalog): FormReceiver {
  const secret = completionSecret(config);
  return async (body, signature) => {
    // The completion-form key, within SIGNATURE_TOLERANCE: a hook payload or an old form replayed here is refused.
    const check = checkSignature(secret, 'completion-form', body, signature, { toleranceMs: config.signatureToleranceMs });
    if (!check.ok) throw new TuspassError(ERRORS.ERR_SIGNATURE_INVALID, undefined, `signature ${check.reason}`);
    const forms = parseCompletionForms(body.toString('utf8'));
    // Every file checked before any is recorded: a form is recorded whole or not at all.
    for (const form of forms) {
      const onDisk = isObjectUrl(form.path) ? await checkStoreObject(config, form.path) : await checkStorePath(config.storeDir, form.path);
      if (onDisk.size !== form.size) {
        // The answer may reach the uploading client (the complete-form hook passes it on): the path relative to the store.
        throw new TuspassError(ERRORS.ERR_SIZE_MISMATCH, `${inStoreName(config.storeDir, form.path)}: form says ${form.size}, disk has ${onDisk.size}`, form.path);
      }
    }
    const answers: CompletionRecord[] = [];
    for (const form of forms) {
      const { field: _field, ...upload } = form;
      // DEDUPE=md5: the same owner's same file (name and md5) answers the first record (dedupe.ts).
      // A repeated notice of an upload already recorded is not a duplicate: catalog.record answers it below.
      const first = config.dedupe === 'md5' && !(await catalog.byUploadId(upload.uploadId)) ? await findDuplicate(catalog, upload) : undefined;
      if (first) {
        answers.push({ id: first.id, name: first.name, size: first.size, md5: first.md5, url: fileUrl(first), duplicate: true });
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
 * The receiver as the complete-form hook's transport in `tuspass start`: the same signed body and
 * headers, the same answers (status and JSON) as over HTTP, without a loopback connection per upload.
 */
export function localCompletion(receive: FormReceiver, log: (line: string) => void) {
  return async (body: string, headers: Record<string, string>): Promise<ClientResponse> => {
    const json = { 'content-type': 'application/json; charset=utf-8' };
    try {
      const answer = await receive(Buffer.from(body, 'utf8'), headers[SIGNATURE_HEADER]);
      return { status: 200, headers: json, body: JSON.stringify(answer) };
    } catch (e) {
      if (!(e instanceof TuspassError)) throw e;
      log(`completion: ${e.code} (in-process form): ${e.message}${e.logDetail ? ` (${e.logDetail})` : ''}`);
      return { status: e.status, headers: json, body: JSON.stringify(e.toJSON()) };
    }
  };
}
