// The nginx upload module's resumable mode in the fuzz suite (test/hostile-fuzz.test.ts): sessions
// (Session-ID, X-Content-Range `bytes a-b/total`, Content-Disposition: attachment) whose segments
// cover the file in random pieces, some sent again or overlapping, in random order and in waves sent
// at the same moment — the first segments of a new session among them — with odd segments mixed in
// (malformed or impossible ranges, another total, a length that does not match, no disposition, the
// header's other spellings, chunked bodies, clients that go or stall mid-body). Every segment
// carries the file's own bytes for its range, so a finished session's md5 is the file's.
import fc from 'fast-check';
import { md5, patternBytes } from './files.ts';

type Odd =
  /** Refused before any session is touched. */
  | 'bad-range'
  | 'past-total'
  | 'length-mismatch'
  | 'no-disposition'
  | 'bad-session-id'
  /** Another total for the same Session-ID: refused, or (first) opens the session with it. */
  | 'other-total'
  /** The client goes, or stops sending, mid-body (a segment received already is answered without its body). */
  | 'drop'
  | 'stall'
  /** The same segment in the protocol's other spellings: a valid segment. */
  | 'content-range'
  | 'x-session-id'
  | 'chunked';

const REFUSED: ReadonlySet<Odd> = new Set([
  'bad-range',
  'past-total',
  'length-mismatch',
  'no-disposition',
  'bad-session-id',
]);
const VALID: ReadonlySet<Odd> = new Set(['content-range', 'x-session-id', 'chunked']);

export interface SessionSketch {
  total: number;
  variant: number;
  /** Where the file is cut into segments (fractions of its length). */
  cuts: number[];
  /** Segments sent again (indices), and extra ranges overlapping others (fractions). */
  repeats: number[];
  overlaps: Array<[number, number]>;
  /** Odd segments: a kind and the range (fractions) it names. */
  odd: Array<{ kind: Odd; range: [number, number] }>;
  /** Sort keys: the order segments go in. */
  order: number[];
  /** Sizes of the waves: the segments of a wave are sent at the same moment. */
  waves: number[];
  filename: string;
}

const FILENAMES = ['big.TXT', 'a b.bin', 'ünï.dat', 'x', 'quote"d.bin', '../../etc/passwd'];

export const sessionSketch: fc.Arbitrary<SessionSketch> = fc.record({
  total: fc.oneof(
    { weight: 5, arbitrary: fc.integer({ min: 1, max: 5000 }) },
    { weight: 2, arbitrary: fc.integer({ min: 5000, max: 80_000 }) },
    { weight: 1, arbitrary: fc.integer({ min: 100_000, max: 400_000 }) },
  ),
  variant: fc.nat({ max: 10_000 }),
  cuts: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 5 }),
  repeats: fc.array(fc.nat({ max: 6 }), { maxLength: 2 }),
  overlaps: fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true })), {
    maxLength: 2,
  }),
  odd: fc.oneof(
    { weight: 3, arbitrary: fc.constant<SessionSketch['odd']>([]) },
    {
      weight: 1,
      arbitrary: fc.array(
        fc.record({
          kind: fc.constantFrom<Odd>(
            'bad-range',
            'past-total',
            'length-mismatch',
            'no-disposition',
            'bad-session-id',
            'other-total',
            'drop',
            'stall',
            'content-range',
            'x-session-id',
            'chunked',
          ),
          range: fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true })),
        }),
        { minLength: 1, maxLength: 2 },
      ),
    },
  ),
  order: fc.array(fc.double({ noNaN: true }), { minLength: 16, maxLength: 16 }),
  waves: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 16, maxLength: 16 }),
  filename: fc.constantFrom(...FILENAMES),
});

export interface Segment {
  a: number;
  b: number;
  odd?: Odd;
  wire: Buffer;
  /** The client goes after this many bytes of the wire. */
  cutAfter?: number;
}

export interface BuiltSession {
  sessionId: string;
  total: number;
  content: Buffer;
  md5: string;
  /** Waves of segments, each wave sent at the same moment. */
  waves: Segment[][];
  /** An odd segment may have opened the session with another total: its answers are not predicted. */
  poisoned: boolean;
}

/** Whether a segment is one a client may send: its answer is 201 with the ranges, or the completion. */
export const isValid = (s: Segment) => s.odd === undefined || VALID.has(s.odd);
/** Whether a segment must be refused (or, for a client that went, goes unanswered). */
export const isRefused = (s: Segment) => s.odd !== undefined && REFUSED.has(s.odd);

const rangeOf = (total: number, [x, y]: [number, number]): [number, number] => {
  const a = Math.min(total - 1, Math.floor(Math.min(x, y) * total));
  return [a, Math.max(a, Math.min(total - 1, Math.floor(Math.max(x, y) * total)))];
};

export function buildSession(sk: SessionSketch, sessionId: string, host: string): BuiltSession {
  const { total } = sk;
  const content = patternBytes(total, sk.variant);
  // The pieces that cover the file, then repeats and overlaps.
  const points = [...new Set(sk.cuts.map((c) => Math.floor(c * total)).filter((p) => p > 0 && p < total))].sort(
    (x, y) => x - y,
  );
  const bounds = [0, ...points, total];
  const ranges: Array<[number, number]> = bounds.slice(1).map((end, i) => [bounds[i]!, end - 1]);
  for (const i of sk.repeats) ranges.push(ranges[i % ranges.length]!);
  for (const o of sk.overlaps) ranges.push(rangeOf(total, o));
  const planned: Array<{ a: number; b: number; odd?: Odd }> = ranges.map(([a, b]) => ({ a, b }));
  for (const o of sk.odd) planned.push({ ...(([a, b]) => ({ a, b }))(rangeOf(total, o.range)), odd: o.kind });
  const order = planned
    .map((p, i) => ({ p, key: sk.order[i % sk.order.length]! + i * 1e-9 }))
    .sort((x, y) => x.key - y.key)
    .map((x) => x.p);
  const segments = order.map((p) => segmentWire(p, sessionId, sk, content, host));
  const waves: Segment[][] = [];
  for (let at = 0, w = 0; at < segments.length; w++) {
    const n = sk.waves[w % sk.waves.length]!;
    waves.push(segments.slice(at, at + n));
    at += n;
  }
  return {
    sessionId,
    total,
    content,
    md5: md5(content),
    waves,
    poisoned: sk.odd.some((o) => o.kind === 'other-total'),
  };
}

function segmentWire(
  p: { a: number; b: number; odd?: Odd },
  sessionId: string,
  sk: SessionSketch,
  content: Buffer,
  host: string,
): Segment {
  const { total } = sk;
  let { a, b } = p;
  let body = content.subarray(a, b + 1);
  const odd = p.odd;
  let range = `bytes ${a}-${b}/${total}`;
  if (odd === 'bad-range')
    range = [
      `bytes ${a + 1}-${a}/${total}`,
      `${a}-${b}/${total}`,
      `bytes ${a}-${b}`,
      `bytes ${a}-${b}/*`,
      `bytes -${b}/${total}`,
    ][total % 5]!;
  if (odd === 'past-total') {
    range = `bytes ${a}-${total}/${total}`;
    body = Buffer.concat([body, Buffer.alloc(total - b)]);
    b = total;
  }
  if (odd === 'other-total') range = `bytes ${a}-${b}/${total + 1}`;
  const headers = [`POST /upload HTTP/1.1`, `Host: ${host}`, 'Content-Type: application/octet-stream'];
  if (odd !== 'no-disposition')
    headers.push(`Content-Disposition: attachment; filename="${sk.filename.replace(/"/g, '\\"')}"`);
  headers.push(`${odd === 'content-range' ? 'Content-Range' : 'X-Content-Range'}: ${range}`);
  const id = odd === 'bad-session-id' ? `${sessionId}/../x y` : sessionId;
  headers.push(`${odd === 'x-session-id' ? 'X-Session-ID' : 'Session-ID'}: ${id}`);
  let payload = body;
  if (odd === 'chunked') {
    headers.push('Transfer-Encoding: chunked');
    payload = Buffer.concat([
      ...(body.length ? [Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n')] : []),
      Buffer.from('0\r\n\r\n'),
    ]);
  } else if (odd === 'length-mismatch') headers.push(`Content-Length: ${body.length + 1}`);
  else if (odd === 'stall') {
    // The whole segment announced, half of it sent: the server's NETWORK_TIMEOUT.
    headers.push(`Content-Length: ${body.length}`);
    payload = body.subarray(0, Math.floor(body.length / 2));
  } else headers.push(`Content-Length: ${body.length}`);
  headers.push('Connection: close');
  const head = Buffer.from(`${headers.join('\r\n')}\r\n\r\n`, 'latin1');
  const wire = Buffer.concat([head, payload, odd === 'length-mismatch' ? Buffer.from([0]) : Buffer.alloc(0)]);
  return { a, b, odd, wire, cutAfter: odd === 'drop' ? head.length + Math.floor(body.length / 2) : undefined };
}

/** The ranges of a 201 answer (`a-b,c-d/total`), or undefined when malformed. */
export function parseRanges(text: string, total: number): Array<[number, number]> | undefined {
  const m = /^((?:\d+-\d+)(?:,\d+-\d+)*)\/(\d+)$/.exec(text.trim());
  if (!m || Number(m[2]) !== total) return undefined;
  return m[1]!.split(',').map((r) => r.split('-').map(Number) as [number, number]);
}

/** Whether the ranges (inclusive ends) cover [a, b]. */
export const covers = (ranges: Array<[number, number]>, a: number, b: number) => {
  let at = a;
  for (const [x, y] of [...ranges].sort((p, q) => p[0] - q[0])) if (x <= at && y >= at) at = y + 1;
  return at > b;
};
