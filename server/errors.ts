// One table of the errors tuspass answers with, each with a stable code. Throw `new TuspassError(ERRORS.X)`;
// the HTTP layers turn it into a response in one place and log the code.
export interface ErrorEntry {
  readonly code: string;
  readonly status: number;
  readonly message: string;
}

const table = <T extends Record<string, Omit<ErrorEntry, 'code'>>>(t: T) =>
  Object.fromEntries(Object.entries(t).map(([code, e]) => [code, { code, ...e }])) as { [K in keyof T]: ErrorEntry };

export const ERRORS = table({
  ERR_SIGNATURE_INVALID: { status: 401, message: 'completion form signature missing or wrong' },
  ERR_FORM_FIELD_MISSING: { status: 400, message: 'completion form lacks a required field' },
  ERR_FORM_FIELD_INVALID: { status: 400, message: 'completion form has an invalid field' },
  ERR_PATH_OUTSIDE_STORE: { status: 403, message: 'path lies outside the shared store' },
  ERR_FILE_MISSING: { status: 422, message: 'uploaded file not found in the store' },
  ERR_SIZE_MISMATCH: { status: 422, message: 'size on disk differs from the form' },
  ERR_RECORD_NOT_FOUND: { status: 404, message: 'no such upload record' },
  ERR_RECORD_FILE_GONE: { status: 404, message: 'the recorded file is no longer in the store' },
  ERR_UPLOAD_NOT_FOUND: { status: 404, message: 'upload not found' },
  ERR_COMPLETION_UNREACHABLE: { status: 502, message: 'completion service unreachable' },
  ERR_DIGEST_STATE: { status: 500, message: 'digest state of the upload is unreadable' },
  ERR_STORE_WRITE: { status: 500, message: 'writing the upload to the store failed' },
  ERR_FORM_TOO_LARGE: { status: 413, message: 'completion form body is too large' },
  ERR_FORM_UNREADABLE: { status: 400, message: 'completion form body could not be read' },
  ERR_QUERY_INVALID: { status: 400, message: 'invalid query parameter' },
  ERR_CATALOG_OPEN: { status: 500, message: 'the catalog (CATALOG_PATH) cannot be opened' },
  ERR_HOOK_FAILED: { status: 500, message: 'a blocking hook failed' },
  ERR_HOOK_TIMEOUT: { status: 504, message: 'a blocking hook did not answer in time' },
  ERR_INTERNAL: { status: 500, message: 'internal error' },
});

export class TuspassError extends Error {
  readonly code: string;
  readonly status: number;
  constructor(entry: ErrorEntry, detail?: string) {
    super(detail ? `${entry.message}: ${detail}` : entry.message);
    this.code = entry.code;
    this.status = entry.status;
  }
  toJSON() {
    return { error: { code: this.code, message: this.message } };
  }
}
