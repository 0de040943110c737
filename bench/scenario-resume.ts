// Scenario 5: resume after a crash. Half of a 1 GiB upload (quick: 256 MiB) is sent and acknowledged,
// the server process is killed (SIGKILL) and started again on the same data directory, then the
// client does what a tus client does: HEAD for the offset and PATCH the rest. Timed: the HEAD, and the
// resumed PATCH until its response (including tuspass reloading the saved md5 state). Checked: the
// offset, and for tuspass that the md5 in the completion answer and in the catalog equal the file's.
import fs from 'node:fs';
import path from 'node:path';
import { createUpload, headOffset, patchFile, send, uploadId } from './client.ts';
import { md5File } from './files.ts';
import { GiB, MiB, rotate, Samples, type BenchContext, type Check, type ScenarioResult } from './scenario.ts';
import { startServer, type Side } from './servers.ts';
import { mbps, summarize } from './stats.ts';

const SIDES: Side[] = ['tuspass', 'reference'];

export async function resume(ctx: BenchContext): Promise<ScenarioResult> {
  const size = ctx.quick ? 256 * MiB : GiB;
  const half = size / 2;
  const file = await ctx.file(size);
  const samples = new Samples();
  const checks: Check[] = [];
  for (let round = 0; round < ctx.rounds; round++) {
    for (const side of rotate(SIDES, round)) {
      const dataDir = path.join(ctx.tmp, `resume-${side}-${round}`);
      const profileDir = side === 'tuspass' ? ctx.profileDir : undefined;
      let server = await startServer(side, dataDir, { profileDir });
      try {
        const location = await createUpload(server.url, size);
        await patchFile(location, file.path, 0, half);
        await server.kill();
        server = await startServer(side, dataDir, { profileDir });
        // The restarted server has a new port; the upload's path stays the same.
        const resumed = new URL(new URL(location).pathname, server.url).toString();
        const head = await headOffset(resumed);
        checks.push({
          name: `round ${round + 1}: ${side} HEAD offset after restart = ${half}`,
          pass: head.offset === half,
          detail: `got ${head.offset}`,
        });
        const rest = await patchFile(resumed, file.path, head.offset, size);
        samples.add(`${side} head`, head.answeredAt - head.startedAt);
        samples.add(`${side} patch`, rest.answeredAt - rest.startedAt);
        samples.add(`${side} MB/s`, mbps(size - head.offset, rest.answeredAt - rest.startedAt));
        samples.add(`${side} finish`, rest.answeredAt - rest.lastByteAt);
        if (side === 'tuspass')
          checks.push(
            ...(await digestChecks(
              round,
              server.url,
              rest.answer.body,
              path.join(server.storeDir, uploadId(resumed)),
              file.md5,
            )),
          );
      } finally {
        await server.stop();
        fs.rmSync(dataDir, { recursive: true, force: true });
      }
    }
    const last = (s: Side, what: string, digits: number) => samples.get(`${s} ${what}`).at(-1)!.toFixed(digits);
    const line = SIDES.map((s) => `${s} HEAD ${last(s, 'head', 1)} ms, rest ${last(s, 'patch', 0)} ms`).join('; ');
    ctx.log(`  round ${round + 1}: ${line}`);
  }

  return {
    id: 'resume',
    title: `5. Resume at 50% of ${size / MiB} MiB after a server restart`,
    settings: {
      bytes: size,
      interruptedAt: half,
      interruption: 'first half sent and acknowledged, then the server process SIGKILLed and restarted',
      rounds: ctx.rounds,
    },
    figures: SIDES.flatMap((side) => [
      { metric: 'HEAD after restart', unit: 'ms', side, summary: summarize(samples.get(`${side} head`)) },
      {
        metric: 'resumed PATCH of the rest, start -> response',
        unit: 'ms',
        side,
        summary: summarize(samples.get(`${side} patch`)),
      },
      { metric: 'resumed PATCH throughput', unit: 'MB/s', side, summary: summarize(samples.get(`${side} MB/s`)) },
      {
        metric: 'resumed PATCH finishing (last byte -> response)',
        unit: 'ms',
        side,
        summary: summarize(samples.get(`${side} finish`)),
      },
    ]),
    targets: [],
    checks,
  };
}

/** The md5 tuspass reported (final answer and catalog) against the source file's and the stored file's. */
async function digestChecks(
  round: number,
  url: string,
  answerBody: string,
  storedFile: string,
  sourceMd5: string,
): Promise<Check[]> {
  const answered = JSON.parse(answerBody || '{}') as { id?: string; md5?: string };
  const record = answered.id
    ? await send(`${url}/api/uploads/${encodeURIComponent(answered.id)}`, 'GET', {}, undefined)
    : undefined;
  const catalogMd5 = record ? (JSON.parse(record.answer.body) as { md5?: string }).md5 : undefined;
  const stored = await md5File(storedFile);
  return [
    {
      name: `round ${round + 1}: tuspass completion-answer md5 = stored file md5`,
      pass: answered.md5 === stored.md5 && stored.md5 === sourceMd5,
      detail: `answer ${answered.md5}, stored ${stored.md5}, source ${sourceMd5}`,
    },
    {
      name: `round ${round + 1}: tuspass catalog md5 = stored file md5`,
      pass: catalogMd5 === stored.md5,
      detail: `catalog ${catalogMd5}, stored ${stored.md5}`,
    },
  ];
}
