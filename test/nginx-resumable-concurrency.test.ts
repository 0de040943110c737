// Segments of one resumable session sent at the same time, to one instance or to two sharing a store
// through the Redis locker: one session, one file, every answer lists the session's ranges as they
// are once its own segment is in, the file's md5 right, one record.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import fc from 'fast-check';
import { md5, patternBytes } from './helpers/files.ts';
import { storeFiles } from './helpers/multipart.ts';
import { redisPair } from './helpers/redis-pair.ts';
import {
  holdSegments,
  mergeRanges,
  parseRanges,
  rangesWithin,
  sendSegment,
  type Range,
  type SegmentAnswer,
} from './helpers/resumable.ts';
import { startTestServer } from './helpers/server.ts';

/** The uploads in a store (their files; info, digest and session states left out). */
const uploadsIn = (dir: string) => storeFiles(dir).filter((n) => !n.includes('.'));

async function records(url: string): Promise<Array<Record<string, unknown>>> {
  return (await (await fetch(`${url}/api/uploads?limit=1000`)).json()) as Array<Record<string, unknown>>;
}

/** Splits [0, size) at the given points into consecutive ranges. */
function piecesOf(size: number, cuts: number[]): Range[] {
  const points = [...new Set(cuts.filter((c) => c > 0 && c < size))].sort((x, y) => x - y);
  return [0, ...points].map((start, i) => [start, (points[i] ?? size) - 1] as Range);
}

/**
 * The answers to unfinished segments: each lists at least its own range, and they are one growing
 * history (each answer's ranges lie within those of any answer that lists more), as a session whose
 * segments are recorded one after another gives. Returns the largest.
 */
function assertOneHistory(sent: Range[], answers: SegmentAnswer[]): Range[] {
  const lists = answers.map((a, i) => {
    assert.equal(a.status, 201, `segment ${sent[i]}: ${a.status} ${a.body}`);
    assert.equal(a.body.trim(), a.range, 'the body repeats the Range header');
    const ranges = parseRanges(a.range);
    assert.ok(rangesWithin([sent[i]!], ranges), `the answer to ${sent[i]} lists it: ${a.range}`);
    return ranges;
  });
  const size = (rs: Range[]) => rs.reduce((n, [x, y]) => n + y - x + 1, 0);
  lists.sort((x, y) => size(x) - size(y));
  for (let i = 1; i < lists.length; i++)
    assert.ok(
      rangesWithin(lists[i - 1]!, lists[i]!),
      `answers from two histories: ${JSON.stringify(lists[i - 1])} and ${JSON.stringify(lists[i])}`,
    );
  return lists[lists.length - 1] ?? [];
}

test("the first segments of a new Session-ID, all at once: one session and one file, every answer lists the session's \
ranges, one record", async (t) => {
  const s = await startTestServer(t);
  const bytes = patternBytes(400_000, 21);
  const pieces = piecesOf(bytes.length, [100_000, 200_000, 300_000]);
  // Three of four first: their answers must all be 201 and agree; the fourth completes.
  const held = await holdSegments(s.url, 'race-1', pieces.slice(0, 3), { bytes });
  held.sendBodies();
  const largest = assertOneHistory(pieces.slice(0, 3), await held.answers);
  assert.deepEqual(largest, [[0, 299_999]], 'the last answer lists every segment received');
  assert.equal(uploadsIn(s.config.storeDir).length, 1, 'one file for the session');
  const last = await sendSegment(s.url, 'race-1', pieces[3]!, { bytes });
  assert.equal(last.status, 200, last.body);
  assert.equal(JSON.parse(last.body).md5, md5(bytes));
  const list = await records(s.url);
  assert.equal(list.length, 1, 'one record');
  assert.equal(list[0]!.md5, md5(bytes));
  assert.equal(uploadsIn(s.config.storeDir).length, 1);
});

test('every segment of a session at once, the front last to \
arrive: one completes, the others list the ranges so far', async (t) => {
  const s = await startTestServer(t, { digests: ['sha1', 'crc32'] });
  const bytes = patternBytes(600_000, 22);
  const pieces = piecesOf(bytes.length, [50_000, 150_000, 151_000, 400_000]).reverse();
  const held = await holdSegments(s.url, 'race-2', pieces, { bytes });
  held.sendBodies();
  const answers = await held.answers;
  const done = answers.filter((a) => a.status === 200);
  assert.equal(done.length, 1, `one segment completes the file: ${answers.map((a) => a.status)}`);
  assert.equal(JSON.parse(done[0]!.body).md5, md5(bytes));
  assertOneHistory(
    pieces.filter((_, i) => answers[i]!.status !== 200),
    answers.filter((a) => a.status !== 200),
  );
  const list = await records(s.url);
  assert.equal(list.length, 1);
  assert.equal(list[0]!.md5, md5(bytes));
  assert.deepEqual(uploadsIn(s.config.storeDir).length, 1);
});

test('two instances on one store with the Redis locker: segments of one session sent to both, at once and in turn: one \
file, the right md5, one record', async (t) => {
  const { a, b, storeDir } = await redisPair(t);
  const bytes = patternBytes(700_000, 23);
  const pieces = piecesOf(bytes.length, [100_000, 200_000, 300_000, 400_000, 500_000, 600_000]);
  // The first segments at once, on both instances.
  const onA = await holdSegments(a.url, 'two-instances', [pieces[2]!, pieces[0]!], { bytes });
  const onB = await holdSegments(b.url, 'two-instances', [pieces[5]!, pieces[1]!], { bytes });
  onA.sendBodies();
  onB.sendBodies();
  const first = [...(await onA.answers), ...(await onB.answers)];
  assertOneHistory([pieces[2]!, pieces[0]!, pieces[5]!, pieces[1]!], first);
  assert.equal(uploadsIn(storeDir).length, 1, 'one file for the session');
  // Then in turn: each instance sees what the other recorded.
  const r4 = await sendSegment(a.url, 'two-instances', pieces[4]!, { bytes });
  assert.deepEqual(parseRanges(r4.range), [
    [0, 299_999],
    [400_000, 599_999],
  ]);
  const r3 = await sendSegment(b.url, 'two-instances', pieces[3]!, { bytes });
  assert.deepEqual(parseRanges(r3.range), [[0, 599_999]]);
  // A repeat on A of what B received: the ranges as they are.
  const again = await sendSegment(a.url, 'two-instances', pieces[3]!, { bytes });
  assert.deepEqual(parseRanges(again.range), [[0, 599_999]]);
  const last = await sendSegment(a.url, 'two-instances', pieces[6]!, { bytes });
  assert.equal(last.status, 200, last.body);
  assert.equal(JSON.parse(last.body).md5, md5(bytes));
  const list = await records(a.url);
  assert.equal(list.length, 1, 'one record');
  assert.equal(list[0]!.md5, md5(bytes));
  assert.equal(uploadsIn(storeDir).length, 1);
  assert.ok(fs.readFileSync(`${storeDir}/${uploadsIn(storeDir)[0]}`).equals(bytes));
});

/**
 * Random sessions against `urls` (each wave of segments goes to one of them at random): segments
 * in random order, with duplicates and overlaps, several at once. The answers must agree, the last
 * segment completes with the right md5, one record and one file per session.
 */
async function fuzzSessions(urls: string[], storeDir: string, numRuns: number): Promise<void> {
  const catalog = urls[0]!;
  let run = 0;
  const segmentation = fc
    .record({
      size: fc.integer({ min: 1, max: 120_000 }),
      cuts: fc.array(fc.integer({ min: 1, max: 119_999 }), { maxLength: 9 }),
      extras: fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 5 }),
      keystone: fc.nat(),
      order: fc.array(fc.nat(), { minLength: 16, maxLength: 16 }),
      together: fc.integer({ min: 1, max: 6 }),
      targets: fc.array(fc.nat({ max: urls.length - 1 }), { minLength: 16, maxLength: 16 }),
    })
    .map(({ size, cuts, extras, keystone, order, together, targets }) => {
      const pieces = piecesOf(size, cuts);
      // The keystone completes the file: no other segment touches it, so it is sent last.
      const key = pieces[keystone % pieces.length]!;
      const rest = pieces.filter((p) => p !== key);
      for (const [x, y] of extras) {
        // Duplicates and overlaps of the others, kept off the keystone's bytes.
        const [lo, hi] = [Math.min(x, y) % size, Math.max(x, y) % size];
        const clipped: Range =
          hi < key[0] || lo > key[1] ? [lo, hi] : key[0] - lo >= hi - key[1] ? [lo, key[0] - 1] : [key[1] + 1, hi];
        if (clipped[0] <= clipped[1]) rest.push(clipped);
      }
      const shuffled = rest
        .map((r, i) => ({ r, k: order[i % order.length]! + i / 100 }))
        .sort((p, q) => p.k - q.k)
        .map((p) => p.r);
      return { size, key, rest: shuffled, together, targets };
    });
  await fc.assert(
    fc.asyncProperty(segmentation, async ({ size, key, rest, together, targets }) => {
      run++;
      const bytes = patternBytes(size, 1000 + run);
      const session = `fuzz-${run}-${size}`;
      const answers: SegmentAnswer[] = [];
      for (let i = 0; i < rest.length; i += together) {
        // One wave at once, each segment to its own instance.
        const wave = rest
          .slice(i, i + together)
          .map((range, j) => ({ range, url: urls[targets[(i + j) % targets.length]!]! }));
        const held = await Promise.all(
          urls.map((url) =>
            holdSegments(
              url,
              session,
              wave.filter((w) => w.url === url).map((w) => w.range),
              { bytes },
            ),
          ),
        );
        for (const h of held) h.sendBodies();
        const byUrl = await Promise.all(held.map((h) => h.answers));
        for (const w of wave) answers.push(byUrl[urls.indexOf(w.url)]!.shift()!);
      }
      const largest = assertOneHistory(rest, answers);
      assert.deepEqual(largest, mergeRanges(rest), 'the last answer lists every range received');
      const before = (await records(catalog)).length;
      const done = await sendSegment(urls[targets[0]!]!, session, key, { bytes });
      assert.equal(done.status, 200, done.body);
      assert.equal(JSON.parse(done.body).md5, md5(bytes));
      const list = await records(catalog);
      assert.equal(list.length, before + 1, 'one record for the session');
      assert.equal(uploadsIn(storeDir).length, run, 'one file per session');
    }),
    { numRuns },
  );
}

test('random segments (order, duplicates, overlaps, several at once): the answers agree, the md5 is right, one record \
per session', async (t) => {
  const s = await startTestServer(t);
  await fuzzSessions([s.url], s.config.storeDir, 25);
});

test('random segments sent to two instances with the Redis locker: the same', async (t) => {
  const { a, b, storeDir } = await redisPair(t);
  await fuzzSessions([a.url, b.url], storeDir, 10);
});
