// The datastore @tus/server is given: tuspass's store, seen through the creation it serves. Its POST
// calls create(upload), then write(body, id, 0) for a creation-with-upload, then getUpload(id) only
// to decide on Upload-Expires (which creations.ts's answer rewrites anyway); OPTIONS reads the
// extensions. Each call is completed here with what the creation carries (creations.ts), so the
// store itself takes everything as arguments and keeps no per-request state for @tus/server.
import type { Readable } from 'node:stream';
import { DataStore, ERRORS as TUS_ERRORS, Upload } from '@tus/utils';
import type { UploadStore } from '../../../backends/store/upload-store.ts';
import type { Creations } from './creations.ts';
import { isObjectLocation } from '../../../../core/wire.ts';
import { BodyInterrupted } from '../../../http/dropped-requests.ts';
import { bytesReceived } from '../../../ops/metrics.ts';

export class CreationStore extends DataStore {
  constructor(
    private readonly store: UploadStore,
    private readonly creations: Creations,
  ) {
    super();
    // The same array: what start.ts configured is what OPTIONS advertises.
    this.extensions = store.extensions;
  }

  override getExpiration(): number {
    return this.store.getExpiration();
  }

  override async create(upload: Upload): Promise<Upload> {
    const creation = this.creations.ofUpload(upload);
    // Only the POST of a request the engine began reaches here (the contract test checks the
    // callbacks run in that order): a creation without its creator would be no one's upload.
    if (!creation)
      throw new Error('@tus/server created an upload without onUploadCreate: the adapter does not match it');
    const made = await this.store.create(upload, creation.info);
    this.creations.made(upload.id, creation);
    creation.size = upload.size;
    return made;
  }

  override async write(readable: Readable, id: string, offset: number): Promise<number> {
    const creation = this.creations.ofId(id);
    if (!creation)
      throw new Error('@tus/server wrote to an upload its request did not create: the adapter does not match it');
    const body = creation.body;
    creation.body = undefined;
    let written: number;
    try {
      written = await this.store.write(readable, id, offset, { ...body, size: creation.size });
    } catch (e) {
      // A body whose connection went keeps what it brought: counted as received, as a PATCH's is.
      // (A creation refused otherwise leaves no upload: creation-answers.ts dropRefusedCreation.)
      if (e instanceof BodyInterrupted) bytesReceived.inc(e.kept);
      throw e;
    }
    bytesReceived.inc(written - offset);
    if (this.getExpiration() > 0 && this.hasExtension('expiration')) {
      // Where the bytes are as the store says it: a path, or (S3 store) s3://bucket/key.
      const path = this.store.location(id);
      const storage = { type: isObjectLocation(path) ? 's3' : 'file', path };
      creation.written = new Upload({ ...creation.made?.upload, id, size: creation.size, offset: written, storage });
    }
    return written;
  }

  /**
   * After a creation-with-upload's write, @tus/server reads the upload back only to see whether to
   * send Upload-Expires: answered once from memory. Measured: that read (info file + stat) cost 15%
   * of the CPU time of a small upload with expiry on.
   */
  override async getUpload(id: string): Promise<Upload> {
    const creation = this.creations.ofId(id);
    const written = creation?.written;
    if (written) {
      creation.written = undefined;
      return written;
    }
    return this.store.getUpload(id);
  }

  // @tus/server's other handlers are not routed (tuspass's own take HEAD, PATCH, GET, DELETE), nor
  // its expiry sweep (expiry.ts runs the store's): refused, so an upgrade that starts calling them
  // from a creation is seen.
  override async remove(): Promise<void> {
    throw TUS_ERRORS.UNKNOWN_ERROR;
  }

  override async declareUploadLength(): Promise<void> {
    throw TUS_ERRORS.UNKNOWN_ERROR;
  }

  override async deleteExpired(): Promise<number> {
    return 0;
  }
}
