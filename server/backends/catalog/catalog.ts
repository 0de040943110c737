// The catalog: what the completion service remembers about finished uploads. An interface so that a
// PostgreSQL implementation can replace SQLite; every implementation passes test/catalog-contract.test.ts.
// Methods are async because a networked database will be, even though SQLite is not.

/** One finished upload as the catalog keeps it. */
export interface UploadRecord {
  /** The catalog's own id (short, URL-safe); not the tus upload id. */
  id: string;
  /** The tus upload id; unique, so a repeated completion notice finds the same record. */
  uploadId: string;
  name: string;
  size: number;
  /** Lowercase hex. */
  md5: string;
  sha1?: string;
  crc32?: string;
  contentType: string;
  /** Absolute path of the file in the shared store. */
  path: string;
  /** Pass-through fields of the completion form, as they came. */
  fields: Record<string, string>;
  /** The subject that created the upload (its bearer token's `sub`); '' when created anonymously. */
  owner: string;
  /** When the record was made, ISO 8601. */
  createdAt: string;
}

/** What a completion notice brings; the catalog adds id and createdAt. */
export type NewUploadRecord = Omit<UploadRecord, 'id' | 'createdAt' | 'owner'> & { owner?: string };

export interface ListOptions {
  limit: number;
  offset: number;
  /** Only this owner's records; undefined: everyone's. */
  owner?: string;
}

export interface Catalog {
  /**
   * Records an upload unless one with the same uploadId exists; then answers that one unchanged
   * (created: false). Must hold when two identical notices arrive at once.
   */
  record(upload: NewUploadRecord): Promise<{ record: UploadRecord; created: boolean }>;
  get(id: string): Promise<UploadRecord | undefined>;
  byUploadId(uploadId: string): Promise<UploadRecord | undefined>;
  /** Newest first. */
  list(options: ListOptions): Promise<UploadRecord[]>;
  /**
   * The oldest record of this owner with this name and md5 (DEDUPE=md5). Optional: without it the
   * receiver pages through the owner's records (server/completion/dedupe.ts).
   */
  findDuplicate?(owner: string, name: string, md5: string): Promise<UploadRecord | undefined>;
  /** Removes the record; false when there was none. */
  remove(id: string): Promise<boolean>;
  close(): Promise<void>;
}
