// A finished object, open for a download: HeadObject for its size and date, then GetObject of the
// range the client asks (S3 sends only those bytes). Nothing is held open: an object deleted
// meanwhile makes the read fail. GET /files/:id (s3-store.ts) and /api/uploads/:id/file
// (completion/store-object.ts) read objects through it; a concatenation reads its partials whole
// (objectBytes).
import type { S3Client } from '@aws-sdk/client-s3';
import { sdk } from './s3-sdk.ts';
import { Readable } from 'node:stream';
import type { DownloadSource } from '../../../http/download.ts';

export interface OpenObject {
  file: DownloadSource;
  size: number;
  modified: Date;
}

/** The object, or undefined when there is none. */
export async function openObject(s3: S3Client, bucket: string, key: string): Promise<OpenObject | undefined> {
  let head;
  try {
    head = await s3.send(new sdk.HeadObjectCommand({ Bucket: bucket, Key: key }));
  } catch (e) {
    if ((e as { name?: string }).name === 'NotFound') return undefined;
    throw e;
  }
  const file: DownloadSource = {
    createReadStream: ({ start, end }) =>
      Readable.from(
        (async function* () {
          const got = await s3.send(
            new sdk.GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${start}-${end}` }),
          );
          yield* got.Body as AsyncIterable<Uint8Array>;
        })(),
        { objectMode: false },
      ),
    close: async () => {},
  };
  return { file, size: head.ContentLength ?? 0, modified: head.LastModified ?? new Date(0) };
}

/**
 * The whole object as it arrives from one GetObject (chunks as Buffers); undefined when there is none.
 * `close` lets a body not read to its end go.
 */
export async function objectBytes(
  s3: S3Client,
  bucket: string,
  key: string,
): Promise<{ chunks: AsyncIterable<Buffer>; close(): void } | undefined> {
  let got;
  try {
    got = await s3.send(new sdk.GetObjectCommand({ Bucket: bucket, Key: key }));
  } catch (e) {
    if ((e as { name?: string }).name === 'NoSuchKey') return undefined;
    throw e;
  }
  const body = got.Body as Readable;
  return {
    chunks: (async function* () {
      for await (const chunk of body as AsyncIterable<Uint8Array>)
        yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    })(),
    close: () => void body.destroy(),
  };
}
