// Scenario: one large upload into S3 (a one-node Ceph radosgw on this machine, started for the run by
// test/helpers/ceph-rgw.sh). tuspass with the S3 store takes the file in one PATCH and sends it on as
// multipart parts while it arrives, md5 computed on the way; raw is the S3 multipart upload of the
// same file by the SDK from this process, same part size and parts in flight, no tus and no md5.
// raw+md5 is the same with md5 of every part, for what the digest costs. All alternate round by round
// against the same radosgw; the ratios are taken round by round.
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  ListObjectsV2Command,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { s3ClientOf } from '../server/backends/store/s3/s3-client.ts';
import { createUpload, patchFile } from './client.ts';
import { MiB, rotate, Samples, type BenchContext, type Check, type ScenarioResult } from './scenario.ts';
import { processCpuMs, startServer } from './servers.ts';
import { mbps, median, summarize } from './stats.ts';

const run = promisify(execFile);
const SCRIPT = path.resolve(import.meta.dirname, '..', 'test', 'helpers', 'ceph-rgw.sh');
const MIN_RATIO_TO_RAW = 0.8;
const PART = 8 * MiB;
const IN_FLIGHT = 4;

/**
 * The raw side: CreateMultipartUpload, the file read in PART pieces one after another, each sent
 * with UploadPart while at most IN_FLIGHT are in flight, Complete. With `md5`, each piece is hashed
 * (node's crypto, in order) before it is sent: the raw upload plus the digest tuspass computes.
 */
async function rawMultipart(
  s3: S3Client,
  bucket: string,
  key: string,
  file: string,
  size: number,
  md5: boolean,
): Promise<{ mbps: number; md5?: string }> {
  const started = performance.now();
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  const handle = await fs.promises.open(file, 'r');
  const hash = md5 ? crypto.createHash('md5') : undefined;
  const parts: { PartNumber: number; ETag: string }[] = [];
  const flying = new Set<Promise<void>>();
  try {
    for (let index = 0; index * PART < size; index++) {
      const length = Math.min(PART, size - index * PART);
      const body = Buffer.allocUnsafe(length);
      await handle.read(body, 0, length, index * PART);
      hash?.update(body);
      while (flying.size >= IN_FLIGHT) await Promise.race(flying);
      const sent: Promise<void> = s3
        .send(
          new UploadPartCommand({
            Bucket: bucket,
            Key: key,
            UploadId,
            PartNumber: index + 1,
            Body: body,
            ContentLength: length,
          }),
        )
        .then((answer) => {
          parts[index] = { PartNumber: index + 1, ETag: answer.ETag! };
          flying.delete(sent);
        });
      flying.add(sent);
    }
    await Promise.all(flying);
    await s3.send(
      new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }),
    );
  } catch (e) {
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId })).catch(() => undefined);
    throw e;
  } finally {
    await handle.close();
  }
  return { mbps: mbps(size, performance.now() - started), md5: hash?.digest('hex') };
}

/** Every object in the bucket goes between rounds, so the OSD's file does not fill. */
async function emptyBucket(s3: S3Client, bucket: string): Promise<void> {
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
  for (const o of listed.Contents ?? []) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key! }));
}

export async function s3(ctx: BenchContext): Promise<ScenarioResult> {
  const size = ctx.quick ? 128 * MiB : 512 * MiB;
  const file = await ctx.file(size);
  const cephDir = path.join(ctx.tmp, 'ceph');
  const { stdout } = await run(SCRIPT, ['start', cephDir], { timeout: 600_000 });
  const env = Object.fromEntries(
    stdout
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  const settings = { ...env, S3_PART_SIZE: `${PART / MiB}MiB`, S3_PARTS_IN_FLIGHT: String(IN_FLIGHT) };
  const s3 = await s3ClientOf({
    s3Endpoint: env.S3_ENDPOINT,
    s3Region: env.S3_REGION!,
    s3AccessKeyId: env.S3_ACCESS_KEY_ID,
    s3SecretAccessKey: env.S3_SECRET_ACCESS_KEY,
    s3ForcePathStyle: true,
    s3TimeoutMs: 60_000,
  });
  const bucket = env.S3_BUCKET!;
  // The child takes its S3 settings from the environment it inherits.
  Object.assign(process.env, settings);
  const samples = new Samples();
  const checks: Check[] = [];
  // CPU per GiB of each process on the two cores, per side: where the cores went.
  const pidOf = (daemon: string) => Number(fs.readFileSync(path.join(cephDir, 'pids', daemon), 'utf8'));
  const s3Cpu = () => processCpuMs(pidOf('rgw')) + processCpuMs(pidOf('osd'));
  const ownCpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const perGiB = (ms: number) => ms / 1000 / (size / 2 ** 30);
  let peak = 0;
  try {
    const tuspass = await startServer('tuspass-s3', path.join(ctx.tmp, 's3-tuspass'));
    try {
      for (let round = 0; round < ctx.rounds; round++) {
        for (const side of rotate(['tuspass', 'raw', 'raw+md5'] as const, round)) {
          const s3Before = s3Cpu();
          const ownBefore = ownCpu();
          const serverBefore = tuspass.cpuMs();
          if (side !== 'tuspass') {
            const raw = await rawMultipart(s3, bucket, `raw-${round}`, file.path, size, side === 'raw+md5');
            samples.add(side, raw.mbps);
            if (raw.md5)
              checks.push({
                name: `round ${round + 1}: raw+md5 md5 = file md5`,
                pass: raw.md5 === file.md5,
                detail: `${raw.md5} vs ${file.md5}`,
              });
          } else {
            const location = await createUpload(tuspass.url, size);
            const t = await patchFile(location, file.path, 0, size);
            samples.add('tuspass', mbps(size, t.answeredAt - t.startedAt));
            const md5 = (JSON.parse(t.answer.body || '{}') as { md5?: string }).md5;
            checks.push({
              name: `round ${round + 1}: tuspass (S3) completion md5 = file md5`,
              pass: md5 === file.md5,
              detail: `${md5} vs ${file.md5}`,
            });
            samples.add('cpu tuspass', perGiB(tuspass.cpuMs() - serverBefore));
          }
          samples.add(`cpu ${side} s3`, perGiB(s3Cpu() - s3Before));
          samples.add(`cpu ${side} bench`, perGiB(ownCpu() - ownBefore));
          await emptyBucket(s3, bucket);
        }
        ctx.log(
          `  round ${round + 1}: tuspass→S3 ${samples.get('tuspass').at(-1)!.toFixed(0)} MB/s, raw S3 \
multipart ${samples.get('raw').at(-1)!.toFixed(0)} MB/s, raw + md5 ${samples.get('raw+md5').at(-1)!.toFixed(0)} MB/s`,
        );
      }
      peak = (await tuspass.memory()).peakRss / 1e6;
    } finally {
      await tuspass.stop();
    }
  } finally {
    s3.destroy();
    await run(SCRIPT, ['stop', cephDir]).catch(() => undefined);
  }
  const ratio = samples.get('tuspass').map((v, i) => v / samples.get('raw')[i]!);
  const ratioMd5 = samples.get('tuspass').map((v, i) => v / samples.get('raw+md5')[i]!);
  return {
    id: 's3',
    title: `S3 store: one upload of ${size / MiB} MiB into radosgw, ${PART / MiB} MiB parts, ${IN_FLIGHT} in flight`,
    settings: { bytes: size, rounds: ctx.rounds, partBytes: PART, partsInFlight: IN_FLIGHT },
    figures: [
      {
        metric: 'one PATCH into S3 (md5 on the way, completion form)',
        unit: 'MB/s',
        side: 'tuspass',
        summary: summarize(samples.get('tuspass')),
      },
      {
        metric: 'S3 multipart upload by the SDK (no md5)',
        unit: 'MB/s',
        side: 'raw',
        summary: summarize(samples.get('raw')),
      },
      {
        metric: 'the same with md5 of every part, in order',
        unit: 'MB/s',
        side: 'raw+md5',
        summary: summarize(samples.get('raw+md5')),
      },
      { metric: 'server peak RSS over the rounds', unit: 'MB', side: 'tuspass', summary: summarize([peak]) },
      {
        metric: 'CPU per GiB: the tuspass server (all threads)',
        unit: 's',
        side: 'tuspass',
        summary: summarize(samples.get('cpu tuspass')),
      },
      ...(['tuspass', 'raw', 'raw+md5'] as const).flatMap((side) => [
        {
          metric: `CPU per GiB: this process (${side === 'tuspass' ? 'the client' : 'the SDK'})`,
          unit: 's',
          side,
          summary: summarize(samples.get(`cpu ${side} bench`)),
        },
        {
          metric: 'CPU per GiB: radosgw + OSD',
          unit: 's',
          side,
          summary: summarize(samples.get(`cpu ${side} s3`)),
        },
      ]),
      { metric: 'ratio', unit: 'x', side: 'tuspass/raw', summary: summarize(ratio) },
      { metric: 'ratio', unit: 'x', side: 'tuspass/raw+md5', summary: summarize(ratioMd5) },
    ],
    targets: [
      {
        id: 's3-throughput',
        rule: `tuspass into S3 >= ${MIN_RATIO_TO_RAW} x the raw S3 multipart upload, same parts in flight`,
        measured: median(ratio),
        limit: MIN_RATIO_TO_RAW,
        unit: 'x',
        pass: median(ratio) >= MIN_RATIO_TO_RAW,
      },
    ],
    checks,
  };
}
