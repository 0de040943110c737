// The completion form of an upload in the S3 store names its object (s3://bucket/key) where the file
// store's names a path; the service checks the object as it checks a path: ours (S3_BUCKET, under
// S3_PREFIX), there, and of the size the form says (HeadObject).
import type { S3Client } from '@aws-sdk/client-s3';
import { sdk } from '../backends/store/s3/s3-sdk.ts';
import { ERRORS, TuspassError } from '../../core/errors.ts';
import type { Config } from '../config/config.ts';
import { s3ClientOf } from '../backends/store/s3/s3-client.ts';
import { openObject, type OpenObject } from '../backends/store/s3/s3-object.ts';
import { S3Keys } from '../backends/store/s3/s3-record.ts';

let client: { config: Config; s3: Promise<S3Client> } | undefined;
const s3Of = (config: Config): Promise<S3Client> => {
  if (client?.config !== config) client = { config, s3: s3ClientOf(config) };
  return client.s3;
};

/**
 * The bucket's key of an s3:// location of ours (S3_BUCKET, under S3_PREFIX); ERR_PATH_OUTSIDE_STORE (403) otherwise.
 */
function keyOf(config: Config, location: string): string {
  const parsed = /^s3:\/\/([^/]+)\/(.+)$/.exec(location);
  if (!parsed || !config.s3Bucket || parsed[1] !== config.s3Bucket || !parsed[2]!.startsWith(config.s3Prefix))
    throw new TuspassError(ERRORS.ERR_PATH_OUTSIDE_STORE, undefined, location);
  return parsed[2]!;
}

/**
 * The object's key and size; ERR_PATH_OUTSIDE_STORE (403) for another bucket or prefix, ERR_FILE_MISSING (422) when
 * gone.
 */
export async function checkStoreObject(config: Config, location: string): Promise<{ key: string; size: number }> {
  const key = keyOf(config, location);
  try {
    const head = await (await s3Of(config)).send(new sdk.HeadObjectCommand({ Bucket: config.s3Bucket, Key: key }));
    return { key, size: head.ContentLength ?? 0 };
  } catch (e) {
    if ((e as { name?: string }).name === 'NotFound')
      throw new TuspassError(ERRORS.ERR_FILE_MISSING, key.slice(config.s3Prefix.length), location);
    throw e;
  }
}

/** The recorded object, open for a download (/api/uploads/:id/file); ERR_FILE_MISSING when gone. */
export async function openStoreObject(config: Config, location: string): Promise<OpenObject> {
  const key = keyOf(config, location);
  const opened = await openObject(await s3Of(config), config.s3Bucket!, key);
  if (!opened) throw new TuspassError(ERRORS.ERR_FILE_MISSING, key.slice(config.s3Prefix.length), location);
  return opened;
}

/** The completion service on its own: the recorded object and the record the S3 store keeps beside it (<key>.info). */
export async function removeStoreObject(config: Config, location: string): Promise<void> {
  const keys = new S3Keys(config.s3Prefix);
  const id = keyOf(config, location).slice(config.s3Prefix.length);
  for (const Key of [keys.object(id), keys.record(id)])
    await (await s3Of(config)).send(new sdk.DeleteObjectCommand({ Bucket: config.s3Bucket, Key }));
}
