// A real S3 server for a test file: test/helpers/ceph-rgw.sh starts one Ceph monitor, OSD and radosgw
// under a temporary directory (about 20 s, generous limits for a loaded machine) and stops them, the
// directory removed, when the file's tests end. Without the Debian packages (.ci/run installs them)
// the file's tests are skipped with that reason, and only then.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { promisify } from 'node:util';
import { s3ClientOf } from '../../server/backends/store/s3/s3-client.ts';
import { S3UploadStore } from '../../server/backends/store/s3/s3-store.ts';

const run = promisify(execFile);
const SCRIPT = path.join(import.meta.dirname, 'ceph-rgw.sh');

export interface S3Server {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
  /** The variables that point tuspass at it. */
  env: Record<string, string>;
  client: Awaited<ReturnType<typeof s3ClientOf>>;
  /** Stops the daemons, keeping their data (the S3 server is away). */
  pause(): Promise<void>;
  /** Starts them again on the same data and ports (the S3 server is back, with every object). */
  resume(): Promise<void>;
}

/** Starts the server for this test file (stopped after its tests); a string is why it cannot run here. */
export async function startS3Server(): Promise<S3Server | string> {
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tuspass-ceph-')), 'ceph');
  after(async () => {
    await run(SCRIPT, ['stop', dir]).catch(() => undefined);
    fs.rmSync(path.dirname(dir), { recursive: true, force: true });
  });
  let stdout: string;
  try {
    ({ stdout } = await run(SCRIPT, ['start', dir], { timeout: 600_000 }));
  } catch (e) {
    const code = (e as { code?: number }).code;
    if (code === 3)
      return 'Ceph is not installed (apt-get install --no-install-recommends radosgw ceph-mon ceph-osd ceph-common; \
.ci/run does it)';
    throw new Error(`ceph-rgw.sh start failed: ${(e as { stderr?: string }).stderr ?? String(e)}`);
  }
  const env = Object.fromEntries(
    stdout
      .trim()
      .split('\n')
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
  const server = {
    endpoint: env.S3_ENDPOINT!,
    region: env.S3_REGION!,
    accessKeyId: env.S3_ACCESS_KEY_ID!,
    secretAccessKey: env.S3_SECRET_ACCESS_KEY!,
    bucket: env.S3_BUCKET!,
    env,
  };
  const client = await s3ClientOf({
    s3Endpoint: server.endpoint,
    s3Region: server.region,
    s3AccessKeyId: server.accessKeyId,
    s3SecretAccessKey: server.secretAccessKey,
    s3ForcePathStyle: true,
    s3TimeoutMs: 60_000,
  });
  after(() => client.destroy());
  const pause = async () => void (await run(SCRIPT, ['stop', dir, '--keep']));
  const resume = async () => void (await run(SCRIPT, ['start', dir], { timeout: 600_000 }));
  return { ...server, client, pause, resume };
}

let prefixes = 0;

/** tuspass's settings for `server`, under a prefix of its own (each test its own uploads), parts of 5 MiB. */
export function s3Settings(server: S3Server) {
  return {
    s3Bucket: server.bucket,
    s3Endpoint: server.endpoint,
    s3Region: server.region,
    s3AccessKeyId: server.accessKeyId,
    s3SecretAccessKey: server.secretAccessKey,
    s3ForcePathStyle: true,
    s3Prefix: `uploads-${process.pid}-${++prefixes}/`,
    s3PartSize: 5 * 2 ** 20,
  };
}

/** The S3 store on `prefix`, as a server writes and reads it (parts of 5 MiB, md5). */
export function s3StoreOn(
  server: S3Server,
  prefix: string,
  options: Partial<ConstructorParameters<typeof S3UploadStore>[0]> = {},
): S3UploadStore {
  return new S3UploadStore({
    s3: server.client,
    bucket: server.bucket,
    prefix,
    algorithms: ['md5'],
    partSize: 5 * 2 ** 20,
    equalParts: false,
    partsInFlight: 2,
    ...options,
  });
}
