// Several tuspass instances on one bucket (S3_BUCKET) and one Redis (REDIS_URL), against a real S3
// server (Ceph's radosgw, started for this file): an instance killed with SIGKILL after an upload's
// last part landed and before its completion was handled (or while its form was being received) has
// the upload announced by another running instance's sweep, once; many creations under one id a
// pre-create hook chose at the same moment: one is made, the others refused as the file store refuses.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { HeadObjectCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { FORM_UPLOAD_ID_HEADER } from '../core/wire.ts';
import { Upload } from '@tus/utils';
import { s3ClientOf } from '../server/backends/store/s3/s3-client.ts';
import type { S3UploadStore } from '../server/backends/store/s3/s3-store.ts';
import { configFor } from '../server/config/config.ts';
import { startCompletionServer } from '../server/start/completion-server.ts';
import { ownRedis } from './helpers/engines.ts';
import { md5, patternBytes } from './helpers/files.ts';
import { startTuspassProcess, until, type Instance } from './helpers/instances.ts';
import { s3Settings, s3StoreOn, startS3Server } from './helpers/s3-server.ts';
import { exchange } from './helpers/draft-http.ts';
import { pieces } from './helpers/store-contract.ts';
import { create, metadata, patch, tus } from './helpers/tus.ts';
import { prefixFor, REDIS } from './helpers/redis-pair.ts';
import { recordsWhenPresent, startTestServer } from './helpers/server.ts';

const MIB = 2 ** 20;
const SECRET = 'test-secret-0123456789';
const server = await startS3Server();
const skip = typeof server === 'string' ? server : false;
let n = 0;

const idOf = (url: string) => new URL(url).pathname.split('/').pop()!;

/** A directory removed when the test ends (after the processes writing into it are gone). */
function dirFor(t: TestContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tuspass-s3i-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The S3 settings under a prefix of this test's own. */
function s3Env(): Record<string, string> {
  if (typeof server === 'string') throw new Error(server);
  return { ...server.env, S3_PREFIX: `inst-${process.pid}-${++n}/`, S3_PART_SIZE: '5MiB' };
}

/** The same as settings of the configuration (in-process servers). */
function s3Config(prefix: string) {
  if (typeof server === 'string') throw new Error(server);
  return { ...s3Settings(server), s3Prefix: prefix };
}

/** The reader of the test's prefix, as an instance reads it. */
function storeOf(prefix: string): S3UploadStore {
  if (typeof server === 'string') throw new Error(server);
  return s3StoreOn(server, prefix);
}

interface Form {
  path: string;
  id: string;
  at: number;
}

/**
 * Between the instances and the completion service: forms to /held/ are held and never answered
 * (`forward`: after the service received them and answered), the rest passed on. Every form is noted.
 */
async function startFormGate(t: TestContext, service: string, forward: boolean) {
  const forms: Form[] = [];
  const held: http.ServerResponse[] = [];
  const pass = async (req: http.IncomingMessage, body: Buffer) => {
    const answer = await fetch(`${service}/complete/`, {
      method: 'POST',
      headers: Object.fromEntries(
        Object.entries(req.headers).filter(([k]) => !['host', 'connection', 'content-length'].includes(k)),
      ) as Record<string, string>,
      body: new Uint8Array(body),
    });
    return { status: answer.status, body: Buffer.from(await answer.arrayBuffer()), type: answer.headers };
  };
  const gate = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      const id = String(req.headers[FORM_UPLOAD_ID_HEADER.toLowerCase()] ?? '');
      forms.push({ path: req.url ?? '', id, at: Date.now() });
      if (req.url?.startsWith('/held/')) {
        if (forward) await pass(req, body);
        held.push(res);
        return;
      }
      const answer = await pass(req, body);
      res.writeHead(answer.status, { 'content-type': answer.type.get('content-type') ?? 'text/plain' });
      res.end(answer.body);
    });
  });
  await new Promise<void>((r) => gate.listen(0, '127.0.0.1', r));
  t.after(async () => {
    for (const res of held) res.destroy();
    gate.closeAllConnections();
    await new Promise((r) => gate.close(r));
  });
  return {
    url: `http://127.0.0.1:${(gate.address() as AddressInfo).port}`,
    forms,
    /** Where each form went, for which upload. */
    seen: () => forms.map((f) => [f.path, f.id]),
  };
}

/**
 * Instance A (its forms held at the gate) and B (its forms passed on) on one bucket and Redis, with a
 * lease of 2 s and a sweep every second; the completion service in this process, on the bucket.
 */
async function twoInstances(t: TestContext, forward: boolean) {
  if (typeof server === 'string') throw new Error(server);
  const s3 = s3Env();
  const redis = await ownRedis(t);
  const service = await startCompletionServer(
    configFor({
      dataDir: dirFor(t),
      completionPort: 0,
      completionSecret: SECRET,
      ...s3Config(s3.S3_PREFIX!),
    }),
    { log: () => {} },
  );
  t.after(() => service.close());
  const gate = await startFormGate(t, service.url, forward);
  const common = {
    ...s3,
    REDIS_URL: redis.url,
    REDIS_LOCK_TTL: '2s',
    COMPLETION_SWEEP: '1s',
    COMPLETION_SECRET: SECRET,
    COMPLETION_TIMEOUT_MS: '120000',
    MIN_FREE_SPACE: '0',
  };
  const [a, b] = await Promise.all([
    startTuspassProcess(t, 'upload-server', {
      ...common,
      DATA_DIR: dirFor(t),
      COMPLETION_URL: `${gate.url}/held/complete/`,
    }),
    startTuspassProcess(t, 'upload-server', {
      ...common,
      DATA_DIR: dirFor(t),
      COMPLETION_URL: `${gate.url}/passed/complete/`,
    }),
  ]);
  const records = async () =>
    (await (await fetch(`${service.url}/api/uploads`)).json()) as Array<{ upload_id: string; md5: string }>;
  return { a: a!, b: b!, gate, records, prefix: s3.S3_PREFIX! };
}

async function killHard(instance: Instance): Promise<void> {
  instance.child.kill('SIGKILL');
  assert.equal(await instance.exited, 'SIGKILL');
}

const takeovers = (output: string, id: string) =>
  output.split('\n').filter((line) => line.includes(`upload ${id} was finished and never announced`)).length;

test("an instance killed after an upload's last part landed, its form not yet answered: another running instance \
announces it once the claim's lease ends, not before; one record, the right md5", {
  skip,
  timeout: 180_000,
}, async (t) => {
  const { a, b, gate, records, prefix } = await twoInstances(t, false);
  const bytes = patternBytes(11 * MIB + 333, 41);
  const url = await create(`${a.url}/files/`, bytes.length, { filename: 'orphan.bin' });
  const id = idOf(url);
  // The whole upload in one PATCH, its answer waiting on the held form (A is killed: it never comes).
  void patch(url, 0, bytes).catch(() => undefined);
  // The object is complete in the bucket and A's form waits at the gate: the moment to die is now.
  await until(
    () => gate.forms.length,
    (k) => k === 1,
    60_000,
  );
  assert.deepEqual(gate.seen(), [['/held/complete/', id]]);
  const store = storeOf(prefix);
  assert.deepEqual(await store.unannounced(), [id], 'complete in the bucket, its completion not noted');

  // While A lives it holds the completion: B's sweeps (every second) leave it alone, however long it takes.
  await new Promise((r) => setTimeout(r, 5000));
  assert.equal(takeovers(b.output(), id), 0, b.output());
  assert.deepEqual(await records(), []);

  await killHard(a);
  const killed = Date.now();
  const found = await until(records, (r) => r.length > 0, 30_000);
  const took = Date.now() - killed;
  t.diagnostic(`announced by B ${took} ms after A was killed (lease 2 s, sweep 1 s)`);
  assert.deepEqual(
    found.map((r) => [r.upload_id, r.md5]),
    [[id, md5(bytes)]],
  );
  assert.ok(took < 15_000, `announced within the lease and a few sweeps, not ${took} ms`);
  assert.deepEqual(
    await until(
      () => store.unannounced(),
      (ids) => ids.length === 0,
    ),
    [],
    'noted handled',
  );
  // More sweeps pass: nothing announced again.
  await new Promise((r) => setTimeout(r, 3000));
  assert.equal(takeovers(b.output(), id), 1, b.output());
  assert.deepEqual(gate.seen(), [
    ['/held/complete/', id],
    ['/passed/complete/', id],
  ]);
  assert.equal((await records()).length, 1);
  const head = await tus('HEAD', `${b.url}/files/${id}`);
  assert.equal(head.headers['upload-offset'], String(bytes.length));
});

test('an instance killed mid-announcement (the service recorded its form, it never heard back): another instance \
announces the upload again and the service drops the repeat; one record', {
  skip,
  timeout: 180_000,
}, async (t) => {
  const { a, b, gate, records, prefix } = await twoInstances(t, true);
  const bytes = patternBytes(6 * MIB + 5, 42);
  const url = await create(`${a.url}/files/`, bytes.length, { filename: 'half-told.bin' });
  const id = idOf(url);
  // The whole upload in one PATCH, its answer waiting on the held form (A is killed: it never comes).
  void patch(url, 0, bytes).catch(() => undefined);
  const recorded = await until(records, (r) => r.length > 0, 60_000);
  assert.deepEqual(
    recorded.map((r) => [r.upload_id, r.md5]),
    [[id, md5(bytes)]],
  );
  await killHard(a);
  await until(
    () => gate.forms.length,
    (k) => k === 2,
    30_000,
  );
  assert.deepEqual(gate.seen(), [
    ['/held/complete/', id],
    ['/passed/complete/', id],
  ]);
  assert.deepEqual(
    await until(
      () => storeOf(prefix).unannounced(),
      (ids) => ids.length === 0,
    ),
    [],
  );
  assert.deepEqual(
    (await records()).map((r) => [r.upload_id, r.md5]),
    [[id, md5(bytes)]],
    'the repeat was dropped',
  );
  assert.equal(takeovers(b.output(), id), 1, b.output());
});

/** A pre-create hook naming each upload after the slot in its metadata, as an application with its own ids does. */
function slotHook(t: TestContext): string {
  const hook = path.join(dirFor(t), 'slots.mjs');
  fs.writeFileSync(
    hook,
    "export function preCreate(r) { return { ChangeFileInfo: { ID: 'slot-' + r.Event.Upload.MetaData.slot } }; }\n",
  );
  return hook;
}

/**
 * `count` creations under slot `slot` at the same moment, spread over the endpoints, by tus and by
 * the IETF draft in turn (the draft's creation takes no lock: only the store stands between them).
 */
async function createAtOnce(endpoints: string[], slot: string, count: number) {
  const answers = await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const endpoint = endpoints[i % endpoints.length]!;
      const meta = metadata({ filename: `try-${i}.bin`, slot });
      if (i % 2 === 0) {
        const a = await tus('POST', endpoint, { 'Upload-Length': String(10 + i), 'Upload-Metadata': meta });
        return { route: 'tus', status: a.status, body: a.body };
      }
      const { final } = await exchange('POST', endpoint, {
        'Upload-Draft-Interop-Version': 8,
        'Upload-Complete': '?0',
        'Upload-Length': 10 + i,
        'Upload-Metadata': meta,
      });
      return { route: 'draft', status: final.status, body: final.body.toString() };
    }),
  );
  return {
    made: answers.filter((a) => a.status === 201),
    refused: answers.filter((a) => a.status !== 201).map((a) => `${a.route} ${a.status} ${a.body}`),
  };
}

test("many creations at once under the id a pre-create hook chose, on two instances on one bucket: one is made, \
the others refused as the file store refuses them; the winner's upload intact, no multipart upload left of the \
others", {
  skip,
  timeout: 180_000,
}, async (t) => {
  if (typeof server === 'string') return;
  const hook = slotHook(t);
  const settings = {
    ...s3Config(s3Env().S3_PREFIX!),
    s3PartSize: 5 * MIB,
    hooksModules: [hook],
    redisUrl: REDIS,
  };
  const prefix = prefixFor(t);
  const a = await startTestServer(t, settings, { redisPrefix: prefix });
  const b = await startTestServer(t, { ...settings, completionUrl: a.completionUrl }, { redisPrefix: prefix });
  // The file store's answer to the same race: what the S3 store must answer too.
  const files = await startTestServer(t, { hooksModules: [hook], minFreeSpace: 0 });
  const onFiles = await createAtOnce([files.endpoint], 'x', 12);
  assert.equal(onFiles.made.length, 1);
  assert.equal(onFiles.refused.length, 11);
  // One answer a route, whichever creation lost.
  assert.equal(new Set(onFiles.refused).size, 2, onFiles.refused.join('\n'));
  t.diagnostic(`the refusal: ${[...new Set(onFiles.refused)].join(' | ')}`);

  for (const round of [1, 2, 3]) {
    const slot = `r${round}`;
    const onS3 = await createAtOnce([a.endpoint, b.endpoint], slot, 12);
    assert.equal(onS3.made.length, 1, `round ${round}: ${onS3.made.length} creations made`);
    assert.deepEqual(new Set(onS3.refused), new Set(onFiles.refused), `round ${round}`);
    // The record is one creation's whole (a length one of them asked for), and takes its bytes.
    const url = `${b.endpoint}slot-${slot}`;
    const head = await tus('HEAD', url);
    assert.equal(head.status, 200);
    const size = Number(head.headers['upload-length']);
    assert.ok(size >= 10 && size < 22, `length ${size}`);
    const bytes = patternBytes(size, round);
    assert.equal((await patch(url, 0, bytes)).status, 200);
    const multipart: { Uploads?: unknown[] } = await server.client.send(
      new ListMultipartUploadsCommand({ Bucket: server.bucket, Prefix: `${settings.s3Prefix}slot-${slot}` }),
    );
    assert.deepEqual(multipart.Uploads ?? [], [], "the refused creations' multipart uploads were aborted");
  }
  // Empty uploads are complete at their creation: only the one made is put and announced.
  const empties = await Promise.all(
    Array.from({ length: 8 }, (_, i) =>
      tus('POST', [a.endpoint, b.endpoint][i % 2]!, {
        'Upload-Length': '0',
        'Upload-Metadata': metadata({ filename: `empty-${i}.bin`, slot: 'empty', filetype: `text/x-${i}` }),
      }),
    ),
  );
  assert.equal(empties.filter((e) => e.status === 201).length, 1, empties.map((e) => e.status).join(' '));
  const records = await recordsWhenPresent(a.url, 4, 30_000);
  assert.equal(records.length, 4);
  const empty = records.filter((r) => r.upload_id === 'slot-empty');
  assert.deepEqual(
    empty.map((r) => [r.md5, r.size]),
    [['d41d8cd98f00b204e9800998ecf8427e', 0]],
  );
  // The object is the winner's, not overwritten by a loser's (each asked for its own type).
  const object = await server.client.send(
    new HeadObjectCommand({ Bucket: server.bucket, Key: `${settings.s3Prefix}slot-empty` }),
  );
  assert.equal(object.ContentType, `text/x-${/empty-(\d+)/.exec(String(empty[0]!.name))?.[1]}`);
});

test('the completion sweep on S3 reads a record noted handled once, then only records that changed', {
  skip,
}, async (t) => {
  if (typeof server === 'string') return;
  const s3 = await s3ClientOf({ ...s3Settings(server), s3TimeoutMs: 60_000 });
  t.after(() => s3.destroy());
  let reads = 0;
  s3.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'GetObjectCommand') reads++;
      return next(args);
    },
    { step: 'initialize', name: 'countReads' },
  );
  const prefix = s3Env().S3_PREFIX!;
  const store = s3StoreOn(server, prefix, { s3 });
  for (const id of ['one', 'two', 'three']) {
    await store.create(new Upload({ id, size: 0, offset: 0, metadata: {} }));
    await store.completionHandled(id);
  }
  await store.create(new Upload({ id: 'open', size: 5, offset: 0, metadata: {} }));
  reads = 0;
  assert.deepEqual(await store.unannounced(), []);
  assert.equal(reads, 4, 'every record read the first time');
  reads = 0;
  assert.deepEqual(await store.unannounced(), []);
  assert.equal(reads, 1, 'then only the unfinished one');
  // A record written again (the id given anew after a removal) is read again.
  await store.remove('two');
  await store.create(new Upload({ id: 'two', size: 3, offset: 0, metadata: {} }));
  await store.append(pieces(Buffer.from('abc')), 'two', 0, { size: 3 });
  reads = 0;
  assert.deepEqual(await store.unannounced(), ['two']);
  assert.ok(reads <= 2, `${reads} reads`);
});
