// The AWS SDK, loaded only when an S3 client is made (S3_BUCKET): importing it costs about 25 MB of
// resident memory and 180 ms (measured here), which a server on the file store must not pay — and the
// bundle (bin/bundle.js) would hoist a static import of it to the top. Every S3 module reaches the
// SDK through this binding, set before the first client exists (s3-client.ts).
import type * as Sdk from '@aws-sdk/client-s3';

export let sdk: typeof Sdk;

/** The presigner (S3_DOWNLOAD_REDIRECT), loaded the same way. */
export const loadPresigner = () => import('@aws-sdk/s3-request-presigner');

export async function loadSdk(): Promise<typeof Sdk> {
  sdk ??= await import('@aws-sdk/client-s3');
  return sdk;
}
