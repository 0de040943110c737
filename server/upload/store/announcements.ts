// What a creation knows that @tus/server's POST cannot pass to the store: the concatenation role,
// the verified subject of the creating request, and whether it is written in segments. Creation goes through @tus/server, so the route
// announces them under the new id just before, and the store takes them when it writes the info.
import type { Upload } from '@tus/utils';
import { remember } from './bounded-map.ts';

/** What the concatenation extension records in an upload's info file. */
export type ConcatInfo = { kind: 'partial' } | { kind: 'final'; parts: string[] };

/**
 * The info file's fields beyond @tus/server's Upload. `resumable`: written in segments of the nginx
 * module's resumable mode, in any order, so its file may be full length with holes in it: it is
 * finished only when its session says so (the mark then goes), never by the file's size.
 */
export type StoredInfo = Upload & { concat?: ConcatInfo; owner?: string; resumable?: true };

/** Owners cached: an owner never changes, and HEAD/PATCH would read it on every request. */
const OWNERS_CACHED = 4096;

export class Announcements {
  private readonly concats = new Map<string, ConcatInfo>();
  private readonly owners = new Map<string, string>();
  private readonly segmented = new Set<string>();
  /** Owners of uploads read lately. */
  private readonly known = new Map<string, string | undefined>();

  constructor(private readonly info: { get(id: string): Promise<Upload | undefined> }) {}

  concat(id: string, concat: ConcatInfo): void {
    this.concats.set(id, concat);
  }

  owner(id: string, owner: string): void {
    this.owners.set(id, owner);
  }

  resumable(id: string): void {
    this.segmented.add(id);
  }

  /** The upload's info as created: what was announced for its id, taken (announced once, used once). */
  take(upload: Upload): StoredInfo {
    const concat = this.concats.get(upload.id);
    this.concats.delete(upload.id);
    const owner = this.owners.get(upload.id);
    this.owners.delete(upload.id);
    const resumable = this.segmented.delete(upload.id);
    this.known.delete(upload.id);
    return { ...upload, ...(concat && { concat }), ...(owner !== undefined && { owner }), ...(resumable && { resumable }) } as StoredInfo;
  }

  /** The subject that created the upload; undefined for an anonymous creation or an upload that does not exist. */
  async ownerOf(id: string): Promise<string | undefined> {
    if (this.known.has(id)) return this.known.get(id);
    const info = (await this.info.get(id)) as StoredInfo | undefined;
    if (!info) return undefined;
    remember(this.known, id, info.owner, OWNERS_CACHED);
    return info.owner;
  }

  /** Concatenation info of an upload, if it is a partial or a final one. */
  async concatOf(id: string): Promise<ConcatInfo | undefined> {
    return ((await this.info.get(id)) as StoredInfo | undefined)?.concat;
  }

  forget(id: string): void {
    this.known.delete(id);
  }
}
