// The completion service's records as they cross the wire: its answer to a form (which the
// complete-form hook relays as the answer to the final PATCH) and the rows of GET /api/uploads.
// The server makes them (server/completion/receive.ts, app.ts); the page and `tuspass push` read
// them (client/shared/completion-answer.ts, client/web/src/completed-table.ts). The page bundles
// this file: types and constants only, no node: imports.

/** The message of the answer, as django-nginx-upload's Django view answered (`{"message": "Upload Complete"}`): its
 * clients read it. */
export const UPLOAD_COMPLETE = 'Upload Complete';

/** A recorded upload as an answer names it: `200 {"id","name","size","md5","url"}` (docs/completion-form.md). */
export interface CompletionRecord {
  /** The catalog's own id (short, URL-safe); not the tus upload id. */
  id: string;
  name: string;
  size: number;
  /** Lowercase hex. */
  md5: string;
  /** Where the file is downloaded: `/api/uploads/<id>/file`. */
  url: string;
  /** DEDUPE=md5: this upload duplicates the record answered, which an earlier upload made
   * (server/completion/dedupe.ts). */
  duplicate?: true;
}

/** The completion service's answer to a recorded form: the (first) file's record, and the message. */
export interface FormAnswer extends CompletionRecord {
  message: typeof UPLOAD_COMPLETE;
  /** Every file of a multipart request's form, when it names several (the first one's record is the answer's own). */
  files?: CompletionRecord[];
}

/** A record as GET /api/uploads and /api/uploads/:id answer it: snake_case, as the page and other apps read it. */
export interface RecordJson extends Omit<CompletionRecord, 'duplicate'> {
  /** The tus upload id. */
  upload_id: string;
  sha1?: string;
  crc32?: string;
  content_type: string;
  /** The absolute path in the store: for admins (and a server without authentication) only. */
  path?: string;
  /** The subject that created the upload; '' when created anonymously. */
  owner: string;
  /** The form's pass-through fields. */
  fields: Record<string, string>;
  /** When the record was made, ISO 8601. */
  created_at: string;
}
