// The completion form of an upload in the S3 store names its object (s3://bucket/key) where the file
// store's names a path; the service checks the object as it checks a path: ours (S3_BUCKET, under
// S3_PREFIX), there, and of the size the form says (HeadObject).
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ERRORS, TuspassError } from '../../core/errors.ts';
import type { Config } from '../config.ts';
import { s3ClientOf } from '../upload/store/s3/s3-client.ts';

export const isObjectUrl = (location: string): boolean => location.startsWith('s3://');

let client: { config: Config; s3: S3Client } | undefined;

/** The object's key and size; ERR_PATH_OUTSIDE_STORE (403) for another bucket or prefix, ERR_FILE_MISSING (422) when gone. */
export async function checkStoreObject(config: Config, location: string): Promise<{ key: string; size: number }> {
  const parsed = /^s3:\/\/([^/]+)\/(.+)$/.exec(location);
  if (!parsed || !config.s3Bucket || parsed[1] !== config.s3Bucket || !parsed[2]!.startsWith(config.s3Prefix)) throw new TuspassError(ERRORS.ERR_PATH_OUTSIDE_STORE, undefined, location);
  const key = parsed[2]!;
  if (client?.config !== config) client = { config, s3: s3ClientOf(config) };
  try {
    const head = await client.s3.send(new HeadObjectCommand({ Bucket: config.s3Bucket, Key: key }));
    return { key, size: head.ContentLength ?? 0 };
  } catch (e) {
    if ((e as { name?: string }).name === 'NotFound') throw new TuspassError(ERRORS.ERR_FILE_MISSING, key.slice(config.s3Prefix.length), location);
    throw e;
  }
}
