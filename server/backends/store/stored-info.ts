// What an upload's info file holds beyond @tus/utils' Upload, and who may act on an upload (its
// owner, read back from that file). Every creation route hands the store what it knows of the new
// upload (NewUploadInfo) with the creation itself.
import type { Upload } from '@tus/utils';
import { LRUCache } from 'lru-cache';
import type { ChecksumCheck } from '../../hashing/checksum.ts';
import type { UploadOwner } from '../../auth/upload-owner.ts';

/** What the concatenation extension records in an upload's info file. */
export type ConcatInfo = { kind: 'partial' } | { kind: 'final'; parts: string[] };

/**
 * The info file's fields beyond @tus/utils' Upload: `owner` is the creating token's `sub`,
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

/**
 * What a creation route knows of the upload it creates, kept in its info file: its creator
 * (upload-owner.ts uploadOwnerOf: who may act on it, whose limits it counts against), its
 * concatenation role, and whether a request of the nginx module still writes it.
 */
export interface NewUploadInfo {
  owner?: UploadOwner;
  concat?: ConcatInfo;
  resumable?: OpenMark;
}

/** What a creation-with-upload's body comes with (as store/append.ts AppendOptions takes them). */
export interface BodyInfo {
  checksum?: ChecksumCheck;
  /** Its Content-Length. */
  expected?: number;
}

/** The upload's info file as created. */
export function storedInfo(upload: Upload, { owner, concat, resumable }: NewUploadInfo = {}): StoredInfo {
  return {
    ...upload,
    ...(concat && { concat }),
    ...(owner?.sub !== undefined && { owner: owner.sub }),
    ...(owner?.address !== undefined && { address: owner.address }),
    ...(resumable !== undefined && { resumable }),
  } as StoredInfo;
}

/** Owners cached: an owner never changes while its upload lives, and HEAD/PATCH would read it on every request. */
const OWNERS_CACHED = 4096;

/** Who created each upload and whether its segments are still written, read from its info file. */
export class UploadOwners {
  /** Owners of uploads read lately. */
  private readonly known = new LRUCache<string, { owner: string | undefined }>({ max: OWNERS_CACHED });

  constructor(private readonly info: { get(id: string): Promise<Upload | undefined> }) {}

  /** The subject that created the upload; undefined for an anonymous creation or an upload that does not exist. */
  async ownerOf(id: string, options: { cached: boolean }): Promise<string | undefined> {
    return (await this.accessOf(id, options))?.owner;
  }

  /**
   * Who created the upload, and whether a request of the nginx module still writes it
   * (StoredInfo.resumable: segments, or a multipart request's part); undefined when it does not exist. Only uploads not
   * in segments are cached: a mark is removed by whichever instance settles the segments, so it is read from disk while
   * it may still be there.
   */
  async accessOf(
    id: string,
    options: { cached: boolean },
  ): Promise<{ owner: string | undefined; segmented: boolean } | undefined> {
    const cached = options.cached && this.known.get(id);
    if (cached) return { owner: cached.owner, segmented: false };
    const info = (await this.info.get(id)) as StoredInfo | undefined;
    if (!info) return undefined;
    if (info.resumable) return { owner: info.owner, segmented: true };
    if (options.cached) this.known.set(id, { owner: info.owner });
    return { owner: info.owner, segmented: false };
  }

  /** Concatenation info of an upload, if it is a partial or a final one. */
  async concatOf(id: string): Promise<ConcatInfo | undefined> {
    return ((await this.info.get(id)) as StoredInfo | undefined)?.concat;
  }

  /** A new upload under this id (a pre-create hook may reuse one), or one gone: read afresh. */
  forget(id: string): void {
    this.known.delete(id);
  }

  /**
   * The info file this process just created: its owner is known without reading it back (a small
   * upload's completion asks for it in the same request). A marked upload is read from disk, as above.
   */
  created(id: string, info: StoredInfo): void {
    if (info.resumable) this.known.delete(id);
    else this.known.set(id, { owner: info.owner });
  }
}
