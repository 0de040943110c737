// What a creation knows that @tus/server's POST cannot pass to the store: the concatenation role,
// the creating owner (upload-owner.ts), whether a request of the nginx module still writes it (the
// resumable mode's segments, or a multipart request's part: StoredInfo.resumable) and,
// for a creation-with-upload, what its body comes with (Upload-Checksum, Content-Length). Creation goes through
// @tus/server, so the route announces them under the new id just before, and the store takes them when it writes the
// info (the body's when it writes the body).
import type { Upload } from '@tus/utils';
import { LRUCache } from 'lru-cache';
import type { ChecksumCheck } from '../../hashing/checksum.ts';
import type { UploadOwner } from '../upload-owner.ts';

/** What the concatenation extension records in an upload's info file. */
export type ConcatInfo = { kind: 'partial' } | { kind: 'final'; parts: string[] };

/**
 * The info file's fields beyond @tus/server's Upload: `owner` is the creating token's `sub`,
 * `address` the creating client's address when it had no token. `resumable`: written by a request of
 * the nginx module that has not finished, so its file's size does not say it is finished; it is
 * finished only when that request says so (the mark then goes). `true`: written in segments of the
 * resumable mode, in any order (its file may be full length with holes in it), finished when its
 * session's ranges cover it. `'multipart'`: a file part of a multipart request, finished when the
 * request posts its form; one found at start belongs to a request that died (store/start-pass.ts
 * removes it).
 */
export type StoredInfo = Upload & { concat?: ConcatInfo; owner?: string; address?: string; resumable?: OpenMark };

/** Which request of the nginx module writes a marked upload (StoredInfo.resumable). */
export type OpenMark = true | 'multipart';

/** What a creation-with-upload's body comes with (as store/append.ts AppendOptions takes them). */
export interface BodyInfo {
  checksum?: ChecksumCheck;
  /** Its Content-Length. */
  expected?: number;
}

/** Owners cached: an owner never changes, and HEAD/PATCH would read it on every request. */
const OWNERS_CACHED = 4096;

export class Announcements {
  private readonly concats = new Map<string, ConcatInfo>();
  private readonly owners = new Map<string, UploadOwner>();
  private readonly bodies = new Map<string, BodyInfo>();
  private readonly segmented = new Map<string, OpenMark>();
  /** Owners of uploads read lately. */
  private readonly known = new LRUCache<string, { owner: string | undefined }>({ max: OWNERS_CACHED });

  constructor(private readonly info: { get(id: string): Promise<Upload | undefined> }) {}

  concat(id: string, concat: ConcatInfo): void {
    this.concats.set(id, concat);
  }

  owner(id: string, owner: UploadOwner): void {
    this.owners.set(id, owner);
  }

  resumable(id: string, mark: OpenMark): void {
    this.segmented.set(id, mark);
  }

  /** Announced until taken or withdrawn (by the creating request's end: see tus-server.ts). */
  body(id: string, body: BodyInfo): () => void {
    this.bodies.set(id, body);
    return () => {
      if (this.bodies.get(id) === body) this.bodies.delete(id);
    };
  }

  /** What the body of the upload's creation comes with, taken (once). */
  takeBody(id: string): BodyInfo | undefined {
    const body = this.bodies.get(id);
    this.bodies.delete(id);
    return body;
  }

  /** The upload's info as created: what was announced for its id, taken (announced once, used once). */
  take(upload: Upload): StoredInfo {
    const concat = this.concats.get(upload.id);
    this.concats.delete(upload.id);
    const owner = this.owners.get(upload.id);
    this.owners.delete(upload.id);
    const resumable = this.segmented.get(upload.id);
    this.segmented.delete(upload.id);
    this.known.delete(upload.id);
    return { ...upload, ...(concat && { concat }), ...(owner?.sub !== undefined && { owner: owner.sub }), ...(owner?.address !== undefined && { address: owner.address }), ...(resumable !== undefined && { resumable }) } as StoredInfo;
  }

  /** The subject that created the upload; undefined for an anonymous creation or an upload that does not exist. */
  async ownerOf(id: string): Promise<string | undefined> {
    return (await this.accessOf(id))?.owner;
  }

  /**
   * Who created the upload, and whether a request of the nginx module still writes it
   * (StoredInfo.resumable: segments, or a multipart request's part); undefined when it does not exist. Only uploads not
   * in segments are cached: a mark is removed by whichever instance settles the segments, so it is read from disk while
   * it may still be there.
   */
  async accessOf(id: string): Promise<{ owner: string | undefined; segmented: boolean } | undefined> {
    const cached = this.known.get(id);
    if (cached) return { owner: cached.owner, segmented: false };
    const info = (await this.info.get(id)) as StoredInfo | undefined;
    if (!info) return undefined;
    if (info.resumable) return { owner: info.owner, segmented: true };
    this.known.set(id, { owner: info.owner });
    return { owner: info.owner, segmented: false };
  }

  /** Concatenation info of an upload, if it is a partial or a final one. */
  async concatOf(id: string): Promise<ConcatInfo | undefined> {
    return ((await this.info.get(id)) as StoredInfo | undefined)?.concat;
  }

  forget(id: string): void {
    this.known.delete(id);
    this.segmented.delete(id);
    this.bodies.delete(id);
  }
}
