// The S3 client of the settings (S3_ENDPOINT, S3_REGION, the keys or the SDK's credential chain,
// S3_FORCE_PATH_STYLE).
import { S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../../../config.ts';

export function s3ClientOf(config: Pick<Config, 's3Endpoint' | 's3Region' | 's3AccessKeyId' | 's3SecretAccessKey' | 's3ForcePathStyle'>): S3Client {
  return new S3Client({
    region: config.s3Region,
    ...(config.s3Endpoint && { endpoint: config.s3Endpoint }),
    ...(config.s3AccessKeyId && config.s3SecretAccessKey && { credentials: { accessKeyId: config.s3AccessKeyId, secretAccessKey: config.s3SecretAccessKey } }),
    forcePathStyle: config.s3ForcePathStyle,
    // The SDK's default adds a CRC32 of every part it sends: a second pass over every byte (md5 is
    // computed already), and S3-compatible servers answer a part sent that way 411
    // MissingContentLength (radosgw). Only where the API requires a checksum.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}
