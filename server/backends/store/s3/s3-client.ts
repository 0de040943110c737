// The S3 client of the settings (S3_ENDPOINT, S3_REGION, the keys or the SDK's credential chain,
// S3_FORCE_PATH_STYLE).
import type { S3Client } from '@aws-sdk/client-s3';
import { loadSdk } from './s3-sdk.ts';
import type { Config } from '../../../config/config.ts';

/** How long a connection to the endpoint may take to open (at most S3_TIMEOUT). */
const CONNECT_TIMEOUT_MS = 10_000;

export async function s3ClientOf(
  config: Pick<
    Config,
    's3Endpoint' | 's3Region' | 's3AccessKeyId' | 's3SecretAccessKey' | 's3ForcePathStyle' | 's3TimeoutMs'
  >,
): Promise<S3Client> {
  const { S3Client } = await loadSdk();
  const client = new S3Client({
    region: config.s3Region,
    ...(config.s3Endpoint && { endpoint: config.s3Endpoint }),
    ...(config.s3AccessKeyId &&
      config.s3SecretAccessKey && {
        credentials: { accessKeyId: config.s3AccessKeyId, secretAccessKey: config.s3SecretAccessKey },
      }),
    forcePathStyle: config.s3ForcePathStyle,
    // The SDK's default adds a CRC32 of every part it sends: a second pass over every byte (md5 is
    // computed already), and S3-compatible servers answer a part sent that way 411
    // MissingContentLength (radosgw). Only where the API requires a checksum.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // Without these the SDK waits forever on a server that accepted a connection and went silent: the
    // append would hold its upload's lock and its part buffers with it. A part that fails this way is
    // answered 503 (ERR_OBJECT_STORE_UNAVAILABLE) and sent again by the client's next PATCH.
    requestHandler: {
      connectionTimeout: Math.min(CONNECT_TIMEOUT_MS, config.s3TimeoutMs),
      socketTimeout: config.s3TimeoutMs,
    },
  });
  // The signature covers the headers, not the body: the SDK would otherwise hash every part with
  // SHA-256 to sign it (a third pass over each byte, after md5 and the copy), the busiest work of an
  // upload on a small machine. TLS protects the body on https:// endpoints; on plain http:// (a server
  // on the same host or private network) the body goes unsigned, as it does over TLS.
  client.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { headers?: Record<string, string> };
      if (request.headers) request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      return next(args);
    },
    { step: 'build', name: 'tuspassUnsignedPayload' },
  );
  return client;
}
