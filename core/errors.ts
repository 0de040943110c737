// One table of the errors tuspass answers with, each with a stable code. Throw `new TuspassError(ERRORS.X)`;
// the HTTP layers turn it into a response in one place and log the code.
export interface ErrorEntry {
  readonly code: string;
  readonly status: number;
  readonly message: string;
  /**
   * A refusal by design, not a fault: the server is busy or full, or a caller is at its limits
   * (503, 507, 429 that say "try again later"). Logged once, at warn (server/http/request-id.ts), so an
   * alert on error lines does not fire on them.
   */
  readonly capacity?: true;
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
  ERR_COMPLETION_UNREACHABLE: { status: 502, message: 'completion service unreachable' },
  ERR_FORM_TOO_LARGE: { status: 413, message: 'completion form body is too large' },
  ERR_FORM_UNREADABLE: { status: 400, message: 'completion form body could not be read' },
  ERR_QUERY_INVALID: { status: 400, message: 'invalid query parameter' },
  ERR_PAGE_NOT_BUILT: {
    status: 503,
    message: 'the upload page is not built: run `npm run build` (npm start and npm test do it)',
  },
  ERR_CATALOG_OPEN: { status: 500, message: 'the catalog (CATALOG_PATH) cannot be opened' },
  ERR_CATALOG_UNAVAILABLE: {
    status: 503,
    message: 'the catalog (DATABASE_URL) cannot be reached; nothing was recorded; try again later',
  },
  ERR_HOOK_FAILED: { status: 500, message: 'a blocking hook failed' },
  ERR_HOOK_TIMEOUT: { status: 504, message: 'a blocking hook did not answer in time' },
  // A pre-access hook's RejectAccess without an HTTPResponse of its own (tusd's proposed pre-access: 403).
  ERR_ACCESS_DENIED: { status: 403, message: 'access to this upload was refused by a hook' },
  // tus requests (the protocol fixes most of these statuses). Where tusd has a code for the same
  // answer and dashboards count it (tusd_errors_total), its name is kept: ERR_UNSUPPORTED_VERSION,
  // ERR_INVALID_CONTENT_TYPE, ERR_UPLOAD_STOPPED, ERR_UPLOAD_INTERRUPTED.
  ERR_UNSUPPORTED_VERSION: {
    status: 412,
    message: 'Tus-Resumable 1.0.0 required: the only tus version this server speaks',
  },
  ERR_INVALID_CONTENT_TYPE: { status: 415, message: 'Content-Type must be application/offset+octet-stream' },
  ERR_LENGTH_REQUIRED: {
    status: 400,
    message: 'a creation needs Upload-Length or Upload-Defer-Length: 1 (one of them, not both)',
  },
  ERR_HEADER_INVALID: { status: 400, message: 'a request header has a value the tus protocol does not allow' },
  ERR_UPLOAD_STOPPED: { status: 400, message: 'the upload was stopped by a post-receive hook and removed' },
  ERR_UPLOAD_INTERRUPTED: {
    status: 400,
    message: 'the request was cut: the client went away or another request took the upload; resume from HEAD',
  },
  ERR_OFFSET_INVALID: { status: 400, message: 'Upload-Offset missing or not a non-negative integer' },
  ERR_OFFSET_MISMATCH: { status: 409, message: 'Upload-Offset does not match the upload offset' },
  ERR_LENGTH_INVALID: { status: 400, message: 'Upload-Length invalid, or already set to another value' },
  ERR_SIZE_EXCEEDED: { status: 413, message: 'the body goes past Upload-Length or the maximum size' },
  ERR_MAX_SIZE_EXCEEDED: { status: 413, message: 'the upload is larger than the maximum size (MAX_SIZE)' },
  ERR_CHECKSUM_HEADER: { status: 400, message: 'Upload-Checksum malformed or its algorithm unsupported' },
  ERR_CHECKSUM_MISMATCH: { status: 460, message: 'Upload-Checksum does not match the body; nothing of it was kept' },
  ERR_METADATA_INVALID: { status: 400, message: 'Upload-Metadata is not comma-separated "key base64" pairs' },
  ERR_UPLOAD_EXPIRED: { status: 410, message: 'the upload expired' },
  ERR_FINAL_UPLOAD_READONLY: { status: 403, message: 'a final upload cannot be patched' },
  ERR_CONCAT_INVALID: {
    status: 400,
    message: 'Upload-Concat final list is empty, names foreign URLs, or comes with Upload-Length',
  },
  ERR_CONCAT_PARTIAL_NOT_FOUND: { status: 404, message: 'a partial upload of the final upload does not exist' },
  ERR_CONCAT_NOT_PARTIAL: { status: 400, message: 'an upload of the final upload was not created as partial' },
  ERR_CONCAT_UNFINISHED: { status: 400, message: 'a partial upload of the final upload is not finished' },
  ERR_CONCAT_UNSUPPORTED: { status: 501, message: 'this store does not concatenate uploads (Upload-Concat)' },
  ERR_UPLOAD_NOT_FOUND: { status: 404, message: 'no such upload' },
  ERR_UPLOAD_UNFINISHED: {
    status: 404,
    message: 'the upload is not finished; only finished uploads can be downloaded',
  },
  ERR_METHOD_OVERRIDE_INVALID: {
    status: 400,
    message: 'X-HTTP-Method-Override is honoured on POST only, naming GET, HEAD, PATCH, DELETE or OPTIONS',
  },
  ERR_CONCAT_TOO_MANY_PARTS: {
    status: 400,
    message: 'the final upload lists more partial uploads than MAX_CONCAT_PARTS allows',
  },
  ERR_STORAGE_FULL: {
    status: 507,
    message: 'not enough free space in the store for this upload; try again later',
    capacity: true,
  },
  // One owner's share of the store (OWNER_MAX_OPEN, OWNER_MAX_OWED). 429, not 507: the store is not
  // full, this owner's own unfinished uploads stand in the way; tus clients (tus-js-client) retry a
  // 5xx but report a 4xx at once, with this message. Not 403: the caller may upload once it finishes
  // or removes an upload, or its unstarted ones expire.
  ERR_OWNER_UPLOADS_LIMIT: {
    status: 429,
    message:
      'you have too many unfinished uploads; finish or remove one (DELETE), or wait until those that received no ' +
      'byte expire',
    capacity: true,
  },
  ERR_OWNER_SPACE_LIMIT: {
    status: 429,
    message:
      'your unfinished uploads already hold your share of the store; finish or remove one (DELETE), or wait until ' +
      'those that received no byte expire',
    capacity: true,
  },
  ERR_QUEUE_FULL: {
    status: 503,
    message: 'too many completion notices are waiting for delivery; try again later',
    capacity: true,
  },
  ERR_BODY_TIMEOUT: {
    status: 408,
    message: 'the request body stopped arriving (NETWORK_TIMEOUT); the bytes received are kept',
  },
  // tusd's answer for an upload another request holds (ERR_UPLOAD_LOCKED, 423 Locked).
  ERR_UPLOAD_LOCKED: {
    status: 423,
    message: 'another request holds this upload and did not let go in time; try again',
  },
  // What a HEAD answers when it cannot read the upload now: tus clients (tus-js-client, Uppy) retry a
  // HEAD answered 423 and start the upload over on any other failure (server/upload/tus/head-handler.ts).
  ERR_UPLOAD_UNAVAILABLE: {
    status: 423,
    message: 'the upload cannot be read right now; its bytes are kept: try again',
  },
  ERR_LOCK_UNAVAILABLE: {
    status: 503,
    message: 'the lock service (Redis) cannot be reached; nothing was written; try again later',
  },
  ERR_LOCK_LOST: {
    status: 503,
    message: 'this request lost the upload lock; writing stopped, the bytes written before are kept: resume from HEAD',
  },
  ERR_NOT_ON_S3: {
    status: 501,
    message: 'not served with the S3 store (S3_BUCKET): this needs the file store (STORE_DIR)',
  },
  ERR_OBJECT_STORE_UNAVAILABLE: {
    status: 503,
    message: 'the object store (S3_BUCKET) did not take the bytes; what it took before is kept: resume from HEAD',
  },
  ERR_SHUTTING_DOWN: {
    status: 503,
    message: 'the server is shutting down; the bytes received are kept: resume from Upload-Offset',
  },
  ERR_NOT_FOUND: { status: 404, message: 'not found' },
  ERR_HOST_NOT_LOOPBACK: {
    status: 421,
    message:
      'without authentication this server answers only requests addressed to this machine (Host localhost or ' +
      '127.0.0.1); set AUTH_JWT_SECRET, or ALLOW_ANONYMOUS=true to serve other names',
  },
  ERR_ORIGIN_FORBIDDEN: { status: 403, message: 'a page on another origin may not post here; list it in CORS_ORIGINS' },
  ERR_METHOD_NOT_ALLOWED: { status: 405, message: 'this method is not allowed on this URL' },
  ERR_URL_INVALID: { status: 400, message: 'the request URL is malformed' },
  // Refused by node's HTTP parser before any route (server/http/client-errors.ts).
  ERR_REQUEST_MALFORMED: {
    status: 400,
    message: 'the request is not valid HTTP/1.1 (request line or a header malformed)',
  },
  ERR_HEADERS_TOO_LARGE: {
    status: 431,
    message: 'the request headers are larger than 16 KiB (Upload-Metadata counts): send less metadata',
  },
  ERR_HEADERS_TIMEOUT: { status: 408, message: 'the request headers did not arrive within NETWORK_TIMEOUT' },
  ERR_RANGE_NOT_SATISFIABLE: { status: 416, message: 'the Range asked for lies outside the file' },
  ERR_PRECONDITION_FAILED: {
    status: 412,
    message: 'a condition of the request (If-Match, If-Unmodified-Since) does not hold',
  },
  // Authentication (server/auth/): bearer JWTs, scopes, ownership.
  ERR_AUTH_REQUIRED: { status: 401, message: 'this server needs a bearer token (Authorization: Bearer <token>)' },
  ERR_TOKEN_INVALID: {
    status: 401,
    message: 'the bearer token is malformed, expired, not yet valid or wrongly signed',
  },
  ERR_SCOPE_MISSING: { status: 403, message: 'the bearer token lacks the scope this request needs' },
  ERR_TOKEN_MAX_SIZE_EXCEEDED: { status: 413, message: 'the upload is larger than the token allows (max_size)' },
  ERR_UPLOAD_FINISHED: {
    status: 403,
    message: 'a finished upload belongs to the catalog: remove it with DELETE /api/uploads/<id>',
  },
  // The nginx upload module's endpoint (server/upload/nginx/): multipart/form-data and its resumable mode.
  ERR_MULTIPART_INVALID: {
    status: 400,
    message:
      'the multipart/form-data body is malformed (no boundary, cut short, part headers too large or too many ' +
      'parts); nothing of it is kept',
  },
  ERR_MULTIPART_NO_FILE: { status: 400, message: 'the multipart/form-data body holds no file' },
  ERR_MULTIPART_TIMEOUT: {
    status: 408,
    message: 'the multipart body stopped arriving (NETWORK_TIMEOUT); nothing of it is kept',
  },
  ERR_RESUMABLE_HEADERS: {
    status: 400,
    message:
      'resumable upload: Session-ID, X-Content-Range (bytes a-b/total) or Content-Disposition (filename) missing ' +
      'or malformed',
  },
  ERR_RESUMABLE_SESSIONS_FULL: {
    status: 503,
    message: 'resumable upload: too many sessions are open (RESUMABLE_SESSIONS_MAX); finish one or try again later',
    capacity: true,
  },
  ERR_RESUMABLE_RANGE: {
    status: 416,
    message:
      'resumable upload: the range does not fit the session (another total, past the end, or not matching the ' +
      'body length)',
  },
  // The IETF Resumable Uploads draft on the tus endpoint (server/upload/ietf/).
  ERR_DRAFT_VERSION_UNSUPPORTED: {
    status: 412,
    message: 'Upload-Draft-Interop-Version names a draft this server does not serve (it serves 3 to 8)',
  },
  ERR_DRAFT_COMPLETE_INVALID: {
    status: 400,
    message: 'Upload-Complete (Upload-Incomplete in interop version 3) missing or not a structured boolean, ?0 or ?1',
  },
  ERR_DRAFT_CONTENT_TYPE: { status: 415, message: 'an append must be Content-Type: application/partial-upload' },
  ERR_DRAFT_UPLOAD_COMPLETED: { status: 400, message: 'the upload is already complete: nothing can be appended to it' },
  ERR_DRAFT_DIGEST_INVALID: {
    status: 400,
    message: 'Repr-Digest or Content-Digest is not a dictionary of byte sequences (RFC 9530)',
  },
  ERR_DRAFT_DIGEST_MISMATCH: {
    status: 400,
    message: 'Repr-Digest does not match the uploaded bytes; the upload was removed',
  },
  ERR_INTERNAL: { status: 500, message: 'internal error' },
});

const BY_CODE = new Map<string, ErrorEntry>(Object.values(ERRORS).map((e) => [e.code, e]));

/** Whether an answer's ERR_ code is a refusal by design (ErrorEntry.capacity). */
export const isCapacityRefusal = (code: string | undefined): boolean =>
  code !== undefined && BY_CODE.get(code)?.capacity === true;

export class TuspassError extends Error {
  readonly code: string;
  readonly status: number;
  /** For the log only (absolute paths, causes): never part of the answer. */
  readonly logDetail?: string;
  constructor(entry: ErrorEntry, detail?: string, logDetail?: string) {
    super(detail ? `${entry.message}: ${detail}` : entry.message);
    this.code = entry.code;
    this.status = entry.status;
    if (logDetail !== undefined) this.logDetail = logDetail;
  }
  /**
   * The JSON answer: the code and message, and the message again at the top, where clients of the
   * nginx upload module's app read it (django-nginx-upload's push.py prints `r.json()["message"]`).
   */
  toJSON() {
    return { error: { code: this.code, message: this.message }, message: this.message };
  }
}

/**
 * Any error as one of ours, for the services' last error handlers: express's own errors keep their
 * meaning (a URL that does not decode, a file not found by the static route); everything else is
 * ERR_INTERNAL, whose details go to the log only.
 */
export function asTuspassError(err: unknown): TuspassError {
  if (err instanceof TuspassError) return err;
  const status = (err as { status?: unknown } | undefined)?.status;
  if (err instanceof URIError) return new TuspassError(ERRORS.ERR_URL_INVALID);
  if (status === 404) return new TuspassError(ERRORS.ERR_NOT_FOUND);
  // A download's Range or condition that does not hold (express's sendFile) is the client's.
  if (status === 416) return new TuspassError(ERRORS.ERR_RANGE_NOT_SATISFIABLE);
  if (status === 412) return new TuspassError(ERRORS.ERR_PRECONDITION_FAILED);
  return new TuspassError(ERRORS.ERR_INTERNAL);
}
