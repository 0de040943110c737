// One creation handed to @tus/server, followed from its node request to the store and back. Its
// callbacks receive only the web Request it made from the node request (web-request.ts), the store
// only the Upload (create) or the id (write, getUpload): what tuspass knows of the creation (the
// partial role @tus/server would refuse, the id and metadata pre-create chose, the creator, what
// the body comes with) rides here, found by each of those three keys. Nothing outside this folder
// sees it.
import type { IncomingMessage } from 'node:http';
import type { Upload } from '@tus/utils';
import type { BodyInfo, ConcatInfo, NewUploadInfo } from '../../../backends/store/upload-store.ts';

export interface Creation {
  readonly node: IncomingMessage;
  /** Upload-Concat: partial, taken off the request before @tus/server reads it. */
  readonly concat: ConcatInfo | undefined;
  /** The id the store made the upload under. */
  id?: string;
  /** Metadata as pre-create changed it, from namingFunction (where the id is chosen) to onUploadCreate. */
  metadata?: Record<string, string | null>;
  /** What the store keeps in the info file (its creator, its role). */
  info?: NewUploadInfo;
  /** A creation-with-upload's body: its Upload-Checksum and Content-Length. */
  body?: BodyInfo;
  /** The upload as @tus/server made it (POST_CREATE), and its Location. */
  made?: { upload: Upload; url: string };
  /** Declared length at creation, for the body's write (no need to read the info back). */
  size?: number;
  /** What the body's write reached, answered once to @tus/server's read-back. */
  written?: Upload;
  /** Complete and handed to onUploadFinish: an error from there is the completion's, handled again later. */
  finishing: boolean;
}

export class Creations {
  private readonly byNode = new WeakMap<IncomingMessage, Creation>();
  private readonly byUpload = new WeakMap<Upload, Creation>();
  /** Creations whose upload the store made, until @tus/server is done with their request (the body's write is next). */
  private readonly byId = new Map<string, Creation>();

  begin(node: IncomingMessage, concat: ConcatInfo | undefined): Creation {
    const creation: Creation = { node, concat, finishing: false };
    this.byNode.set(node, creation);
    return creation;
  }

  /** The creation's request is over (@tus/server's handling settled): nothing more is found by its id. */
  end(creation: Creation): void {
    if (creation.id !== undefined && this.byId.get(creation.id) === creation) this.byId.delete(creation.id);
  }

  of(node: IncomingMessage): Creation | undefined {
    return this.byNode.get(node);
  }

  /** onUploadCreate receives the very Upload that @tus/server then hands to store.create. */
  bind(upload: Upload, creation: Creation): void {
    this.byUpload.set(upload, creation);
  }

  ofUpload(upload: Upload): Creation | undefined {
    return this.byUpload.get(upload);
  }

  /** Made by the store under this id: found by id from now on (write, getUpload). */
  made(id: string, creation: Creation): void {
    creation.id = id;
    this.byId.set(id, creation);
  }

  ofId(id: string): Creation | undefined {
    return this.byId.get(id);
  }
}
