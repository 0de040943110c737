// What the access step costs per request on an existing upload (HEAD and small PATCHes: the requests
// where it weighs most), as server CPU per request and requests per second, rounds alternated:
//   - `tuspass`: no pre-access hook configured (the default): the step is the owner check alone;
//   - `tuspass-access`: a pre-access hook that lets everything through, in-process;
//   - with `--before DIR`, `tuspass` from another checkout DIR (e.g. the commit before the step, made
//     with `git archive`): the no-hook figures before and after, in one run.
//   node --import tsx bench/measure-access.ts [--before DIR] [--rounds 5] [--heads 2000] [--patches 1000]
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { send } from './client.ts';
import { startServer, type ServerProcess } from './servers.ts';
import { median } from './stats.ts';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const ROUNDS = Number(arg('rounds') ?? 5);
const HEADS = Number(arg('heads') ?? 2000);
const PATCHES = Number(arg('patches') ?? 1000);
const CONCURRENCY = 8;
const CHUNK = Buffer.alloc(64, 7);
const before = arg('before');

interface Side {
  name: string;
  start(dataDir: string): Promise<ServerProcess>;
}

const sides: Side[] = [
  { name: 'tuspass', start: (dir) => startServer('tuspass', dir) },
  { name: 'tuspass-access', start: (dir) => startServer('tuspass-access', dir) },
];
if (before) {
  const other = (await import(path.resolve(before, 'bench/servers.ts'))) as typeof import('./servers.ts');
  sides.push({ name: 'tuspass (before)', start: (dir) => other.startServer('tuspass', dir) });
}

/**
 * `count` requests, `concurrency` workers over keep-alive (worker i works on its own upload); requests/s and server CPU
 * µs per request.
 */
async function timed(
  server: ServerProcess,
  count: number,
  one: (agent: http.Agent, worker: number) => Promise<void>,
  concurrency: number,
) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  let next = 0;
  const cpu = server.cpuMs();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (next < count) {
        next++;
        await one(agent, worker);
      }
    }),
  );
  const ms = performance.now() - started;
  agent.destroy();
  return { perSecond: (count / ms) * 1000, cpuUs: ((server.cpuMs() - cpu) * 1000) / count };
}

async function create(server: ServerProcess): Promise<string> {
  const created = await send(
    `${server.url}/files/`,
    'POST',
    { 'Upload-Length': String(PATCHES * CHUNK.length + 1) },
    undefined,
  );
  if (created.answer.status !== 201) throw new Error(`${server.side}: creation answered ${created.answer.status}`);
  return new URL(String(created.answer.headers.location), server.url).toString();
}

async function round(server: ServerProcess) {
  // One upload per worker: HEADs of one upload wait for each other's lock, which is not what is measured here.
  const urls = await Promise.all(Array.from({ length: CONCURRENCY }, () => create(server)));
  const url = urls[0]!;
  const head = await timed(
    server,
    HEADS,
    async (agent, worker) => {
      const t = await send(urls[worker]!, 'HEAD', {}, undefined, agent);
      if (t.answer.status !== 200) throw new Error(`HEAD answered ${t.answer.status}`);
    },
    CONCURRENCY,
  );
  // Appends follow each other (one offset at a time), one connection.
  let offset = 0;
  const patch = await timed(
    server,
    PATCHES,
    async (agent) => {
      const t = await send(
        url,
        'PATCH',
        { 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': String(offset) },
        CHUNK,
        agent,
      );
      if (t.answer.status !== 204) throw new Error(`PATCH answered ${t.answer.status} ${t.answer.body}`);
      offset += CHUNK.length;
    },
    1,
  );
  return { head, patch };
}

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tuspass-access-bench-'));
const figures = new Map<string, { head: number[]; headCpu: number[]; patch: number[]; patchCpu: number[] }>(
  sides.map((s) => [s.name, { head: [], headCpu: [], patch: [], patchCpu: [] }]),
);
try {
  for (let r = 0; r < ROUNDS; r++) {
    // Who goes first turns round by round.
    const order = sides.map((_, i) => sides[(i + r) % sides.length]!);
    for (const side of order) {
      const server = await side.start(
        path.join(root, `${side.name.replace(/\W+/g, '-')}-${r}-${crypto.randomBytes(3).toString('hex')}`),
      );
      try {
        const { head, patch } = await round(server);
        const f = figures.get(side.name)!;
        f.head.push(head.perSecond);
        f.headCpu.push(head.cpuUs);
        f.patch.push(patch.perSecond);
        f.patchCpu.push(patch.cpuUs);
        process.stderr.write(
          `round ${r + 1} ${side.name}: HEAD ${head.perSecond.toFixed(0)}/s ${head.cpuUs.toFixed(0)} µs CPU, \
PATCH ${patch.perSecond.toFixed(0)}/s ${patch.cpuUs.toFixed(0)} µs CPU\n`,
        );
      } finally {
        await server.stop();
      }
    }
  }
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}

const base = figures.get('tuspass')!;
process.stdout.write(
  `${ROUNDS} rounds, ${HEADS} HEADs (${CONCURRENCY} at a time), ${PATCHES} PATCHes of ${CHUNK.length} bytes; medians\n`,
);
process.stdout.write('side                 HEAD/s  CPU µs/HEAD  PATCH/s  CPU µs/PATCH  HEAD/s vs tuspass\n');
for (const [name, f] of figures) {
  const ratio = median(f.head.map((v, i) => v / base.head[i]!));
  process.stdout.write(
    `${name.padEnd(20)} ${median(f.head).toFixed(0).padStart(6)}  ${median(f.headCpu).toFixed(0).padStart(11)} \
 ${median(f.patch).toFixed(0).padStart(7)}  ${median(f.patchCpu).toFixed(0).padStart(12)} \
 ${ratio.toFixed(3).padStart(17)}\n`,
  );
}
