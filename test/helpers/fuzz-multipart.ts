// The multipart/form-data requests of the fuzz suite (test/hostile-fuzz.test.ts) on POST /upload, as
// the nginx upload module's clients send them — and not: bodies cut at every kind of position (the
// preamble, a boundary line, a part's headers, a file's bytes, the closing delimiter, the epilogue),
// by their length, by a chunked body's end or by the client closing; odd part headers; parts holding
// a multipart body of their own; many parts. Each request comes with what its answer must be: the
// files' md5s in order for a whole, well-formed body; a refusal keeping nothing for a cut or
// malformed one; for odd headers whose reading is busboy's to decide, only what holds either way.
import fc from 'fast-check';
import { md5, patternBytes } from './files.ts';

/** A part's header block as a client would write it, before any odd change. */
type Odd =
  | 'no-disposition'
  | 'no-name'
  | 'name-unquoted'
  | 'filename-star'
  | 'filename-path'
  | 'filename-utf8'
  | 'filename-escapes'
  | 'param-repeated'
  | 'no-content-type'
  | 'odd-content-type'
  | 'transfer-encoding'
  | 'long-header'
  | 'many-headers'
  | 'header-no-colon'
  | 'lf-only';

/** A character an unquoted parameter value (an RFC 9110 token) cannot hold. */
const NOT_TOKEN = /[^!#$%&'*+.^_`|~0-9A-Za-z-]/g;

/** Odd headers after which the part is still the same file with the same bytes. */
const HARMLESS: ReadonlySet<Odd> = new Set([
  'filename-star',
  'filename-path',
  'filename-utf8',
  'filename-escapes',
  'no-content-type',
  'odd-content-type',
  'name-unquoted',
]);

export interface PartSketch {
  kind: 'file' | 'field' | 'empty-input' | 'nested';
  name: string;
  content: Uint8Array | { size: number; variant: number };
  odd: Odd[];
}

type Region = 'preamble' | 'boundary' | 'headers' | 'content' | 'close' | 'epilogue';

export interface MultipartSketch {
  boundary: string;
  quoted: boolean;
  contentType: 'ok' | 'upper' | 'charset' | 'no-boundary' | 'other-boundary' | 'mixed' | 'not-multipart';
  preamble: string;
  epilogue: string;
  parts: PartSketch[];
  closing: 'ok' | 'none' | 'no-dashes';
  cut?: { region: Region; at: number; how: 'length' | 'chunked' | 'drop' | 'stall' };
  chunked: boolean;
  path: '/upload' | '/upload/';
  followUp: boolean;
}

const FIELD_NAMES = [
  'file1',
  'file2',
  'doc',
  'photo',
  'description',
  'note',
  'a',
  'file1',
  'x-y_z',
  'name with space',
  'ü',
  '',
  'a'.repeat(80),
];
const BOUNDARIES = [
  '----WebKitFormBoundary7MA4YWxkTrZu0gW',
  '----geckoformboundary5d3c9d7e',
  'x',
  'AaB03x',
  "'()+_,-./:=? quoted",
  'b'.repeat(70),
  '--------------------------f5e6a2d1c0',
];

const contentArb: fc.Arbitrary<PartSketch['content']> = fc.oneof(
  { weight: 6, arbitrary: fc.uint8Array({ maxLength: 300 }) },
  { weight: 3, arbitrary: fc.record({ size: fc.integer({ min: 1000, max: 40_000 }), variant: fc.nat({ max: 1000 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({ size: fc.integer({ min: 100_000, max: 300_000 }), variant: fc.nat({ max: 1000 }) }),
  },
);

const oddArb: fc.Arbitrary<Odd[]> = fc.oneof(
  { weight: 5, arbitrary: fc.constant<Odd[]>([]) },
  {
    weight: 1,
    arbitrary: fc.array(
      fc.constantFrom<Odd>(
        'no-disposition',
        'no-name',
        'name-unquoted',
        'filename-star',
        'filename-path',
        'filename-utf8',
        'filename-escapes',
        'param-repeated',
        'no-content-type',
        'odd-content-type',
        'transfer-encoding',
        'long-header',
        'many-headers',
        'header-no-colon',
        'lf-only',
      ),
      { minLength: 1, maxLength: 2 },
    ),
  },
);

const partArb: fc.Arbitrary<PartSketch> = fc.record({
  kind: fc.oneof(
    { weight: 6, arbitrary: fc.constant('file' as const) },
    { weight: 3, arbitrary: fc.constant('field' as const) },
    { weight: 1, arbitrary: fc.constantFrom('empty-input' as const, 'nested' as const) },
  ),
  name: fc.constantFrom(...FIELD_NAMES),
  content: contentArb,
  odd: oddArb,
});

const REGIONS: Region[] = ['preamble', 'boundary', 'headers', 'content', 'close', 'epilogue'];

export const multipartSketch: fc.Arbitrary<MultipartSketch> = fc
  .record({
    boundary: fc.constantFrom(...BOUNDARIES),
    quoted: fc.boolean(),
    contentType: fc.oneof(
      { weight: 12, arbitrary: fc.constant('ok' as const) },
      {
        weight: 1,
        arbitrary: fc.constantFrom(
          'upper' as const,
          'charset' as const,
          'no-boundary' as const,
          'other-boundary' as const,
          'mixed' as const,
          'not-multipart' as const,
        ),
      },
    ),
    preamble: fc.constantFrom('', '', 'This is a preamble.\r\n', '--not-the-boundary\r\n'),
    epilogue: fc.constantFrom('\r\n', '\r\n', '', 'trailing epilogue\r\n'),
    // A few parts, or many (past busboy's limits: 64 files, 256 fields, 320 parts).
    parts: fc.oneof(
      { weight: 8, arbitrary: fc.array(partArb, { maxLength: 5 }) },
      {
        weight: 1,
        arbitrary: fc.array(
          fc.record({
            kind: fc.constantFrom('file' as const, 'field' as const),
            name: fc.constantFrom('f', 'g'),
            content: fc.uint8Array({ maxLength: 8 }),
            odd: fc.constant([] as Odd[]),
          }),
          { minLength: 40, maxLength: 400 },
        ),
      },
    ),
    closing: fc.oneof(
      { weight: 10, arbitrary: fc.constant('ok' as const) },
      { weight: 1, arbitrary: fc.constantFrom('none' as const, 'no-dashes' as const) },
    ),
    cut: fc.option(
      fc.record({
        region: fc.constantFrom(...REGIONS),
        at: fc.double({ min: 0, max: 1, noNaN: true }),
        how: fc.constantFrom(
          'length' as const,
          'length' as const,
          'chunked' as const,
          'drop' as const,
          'stall' as const,
        ),
      }),
      { freq: 3 },
    ),
    chunked: fc.boolean(),
    path: fc.constantFrom('/upload' as const, '/upload/' as const),
    followUp: fc.boolean(),
  })
  .map(({ cut, ...sk }) => (cut ? { ...sk, cut, followUp: false } : sk));

const bytesOf = (c: PartSketch['content']): Buffer =>
  c instanceof Uint8Array ? Buffer.from(c) : patternBytes(c.size, c.variant);

/** What the request must get, decided from what it is. */
export type Expectation =
  /** Whole and well formed: 200 with these files' md5s, in order (none: 400 ERR_MULTIPART_NO_FILE). */
  | { kind: 'files'; md5s: string[] }
  /** Cut, malformed or past a limit: a refusal (4xx, or 503/507), nothing kept. */
  | { kind: 'refused' }
  /** Odd in a way busboy decides: a refusal keeping nothing, or 200 with md5s among these. */
  | { kind: 'either'; md5s: string[] }
  /** The client goes: no answer to read; a body it sent whole may be recorded (these md5s). */
  | { kind: 'dropped'; md5s: string[] }
  /** The form arrived whole but the body never ended: answered or cut, its files (these md5s) may be recorded. */
  | { kind: 'whole-stalled'; md5s: string[] };

export interface BuiltMultipart {
  wire: Buffer;
  /** With a cut by the client: how many bytes of the wire it sends before it closes. */
  cutAfter?: number;
  /** The client sends the cut body and waits (its Content-Length says more): the server's NETWORK_TIMEOUT. */
  stall: boolean;
  expect: Expectation;
  describe: string;
}

function partHead(p: PartSketch, index: number, eol: string): { head: string; harmless: boolean } {
  const filename =
    p.kind === 'file' || p.kind === 'nested' ? `f${index}.bin` : p.kind === 'empty-input' ? '' : undefined;
  const odd = new Set(p.odd);
  // Unquoted, a name is an RFC 9110 token (a name with other characters must be quoted to be read).
  let disposition =
    'form-data; ' + (odd.has('name-unquoted') ? `name=${p.name.replace(NOT_TOKEN, '_') || 'n'}` : `name="${p.name}"`);
  if (odd.has('no-name')) disposition = 'form-data';
  // A file input left empty sends filename="" whatever else is odd about its part.
  if (filename === '') disposition += '; filename=""';
  else if (filename !== undefined) {
    if (odd.has('filename-star')) disposition += `; filename*=UTF-8''${encodeURIComponent(`ünï-${filename}`)}`;
    else if (odd.has('filename-path')) disposition += `; filename="C:\\\\Users\\\\me\\\\..\\\\${filename}"`;
    else if (odd.has('filename-utf8')) disposition += `; filename="żółw-${filename}"`;
    else if (odd.has('filename-escapes')) disposition += `; filename="a\\"b;c=${filename}"`;
    else disposition += `; filename="${filename}"`;
    if (odd.has('param-repeated')) disposition += '; filename="other.bin"';
  }
  const lines: string[] = [];
  if (!odd.has('no-disposition')) lines.push(`Content-Disposition: ${disposition}`);
  if (p.kind === 'nested') lines.push('Content-Type: multipart/mixed; boundary=inner-boundary-0123');
  else if (filename !== undefined && !odd.has('no-content-type'))
    lines.push(`Content-Type: ${odd.has('odd-content-type') ? 'text/x-\u00e9; q="\\"' : 'application/octet-stream'}`);
  if (odd.has('transfer-encoding')) lines.push('Content-Transfer-Encoding: base64');
  if (odd.has('long-header')) lines.push(`X-Long: ${'v'.repeat(20_000)}`);
  if (odd.has('many-headers')) for (let i = 0; i < 40; i++) lines.push(`X-H${i}: ${i}`);
  if (odd.has('header-no-colon')) lines.push('Not a header line');
  const sep = odd.has('lf-only') ? '\n' : eol;
  return { head: lines.map((l) => `${l}${sep}`).join('') + sep, harmless: [...odd].every((o) => HARMLESS.has(o)) };
}

/** A part's bytes: a nested part holds a multipart body of its own. */
function partBody(p: PartSketch): Buffer {
  const inner = bytesOf(p.content);
  if (p.kind === 'empty-input') return Buffer.alloc(0);
  if (p.kind !== 'nested') return inner;
  return Buffer.concat([
    Buffer.from('--inner-boundary-0123\r\nContent-Disposition: attachment; filename="in.bin"\r\n\r\n'),
    inner,
    Buffer.from('\r\n--inner-boundary-0123--\r\n'),
  ]);
}

export function buildMultipart(sk: MultipartSketch, host: string, requestId = 'fz-multipart'): BuiltMultipart {
  const eol = '\r\n';
  const b = sk.boundary;
  const regions: Array<{ region: Region; start: number; end: number }> = [];
  const chunks: Buffer[] = [];
  let size = 0;
  const add = (region: Region, data: Buffer | string) => {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    regions.push({ region, start: size, end: size + buf.length });
    chunks.push(buf);
    size += buf.length;
  };
  add('preamble', sk.preamble);
  const files: Buffer[] = [];
  let harmless = true;
  let fields = 0;
  let bigField = false;
  sk.parts.forEach((p, i) => {
    add('boundary', `${i === 0 && sk.preamble === '' ? '' : eol}--${b}${eol}`);
    const { head, harmless: ok } = partHead(p, i, eol);
    harmless &&= ok;
    add('headers', head);
    const body = partBody(p);
    add('content', body);
    if (p.kind === 'file' || p.kind === 'nested') files.push(body);
    else if (p.kind === 'field') {
      fields++;
      // A field with no name is dropped unread (nginx-migration.md): only a named one is too long.
      if (body.length > 64 * 1024) {
        if (p.name && !p.odd.includes('no-name') && !p.odd.includes('no-disposition')) bigField = true;
        else harmless = false;
      }
    }
  });
  // The closing delimiter; its "--" ends the body (without it, busboy waits for another part).
  if (sk.closing === 'ok') add('close', `${sk.parts.length === 0 && sk.preamble === '' ? '' : eol}--${b}--`);
  else if (sk.closing === 'no-dashes') add('close', `${eol}--${b}`);
  add('epilogue', sk.epilogue);
  const body = Buffer.concat(chunks);

  // Where a cut falls: a point of the chosen region (the epilogue or the end when the body has none).
  let cutAt: number | undefined;
  if (sk.cut) {
    const inRegion = regions.filter((r) => r.region === sk.cut!.region);
    const r = inRegion[Math.min(inRegion.length - 1, Math.floor(sk.cut.at * inRegion.length))];
    // A region with no bytes (an empty preamble) is cut where it would be.
    cutAt = r ? Math.min(r.end, r.start + Math.floor(sk.cut.at * (r.end - r.start + 1))) : body.length;
    cutAt = Math.min(cutAt, body.length);
  }
  const closeRegion = regions.find((r) => r.region === 'close');
  // Whole: the closing delimiter and its dashes arrived (what comes after it is the epilogue).
  const whole = sk.closing === 'ok' && (cutAt === undefined || (closeRegion !== undefined && cutAt >= closeRegion.end));
  const sent = cutAt === undefined ? body : body.subarray(0, cutAt);

  const delimiter = Buffer.from(`\r\n--${b}`);
  const ambiguous =
    files.some((f) => f.includes(delimiter)) || sk.parts.some((p) => bytesOf(p.content).includes(delimiter));
  const headerOk = ['ok', 'upper', 'charset'].includes(sk.contentType);
  const contentType = {
    ok: `multipart/form-data; boundary=${sk.quoted ? `"${b}"` : b}`,
    upper: `MULTIPART/FORM-DATA; BOUNDARY=${sk.quoted ? `"${b}"` : b}`,
    charset: `multipart/form-data; charset=utf-8; boundary=${sk.quoted ? `"${b}"` : b}`,
    'no-boundary': 'multipart/form-data',
    'other-boundary': 'multipart/form-data; boundary=not-the-one',
    mixed: `multipart/mixed; boundary=${b}`,
    'not-multipart': 'application/x-www-form-urlencoded',
  }[sk.contentType];
  // An unquoted boundary with characters a token may not hold is busboy's to read or not.
  const boundaryAsToken = sk.quoted || /^[A-Za-z0-9'+_.-]+$/.test(b);
  // busboy's limits, with room on either side left undecided (what counts as a file is busboy's).
  const filesSeen = sk.parts.filter((p) => p.kind !== 'field').length;
  const overLimits = filesSeen > 70 || fields > 262 || sk.parts.length > 330 || bigField;
  const underLimits = filesSeen <= 60 && fields <= 250 && sk.parts.length <= 310;

  let expect: Expectation;
  const md5s = files.map((f) => md5(f));
  if (sk.cut?.how === 'drop') expect = { kind: 'dropped', md5s: whole && headerOk ? md5s : [] };
  // Not multipart at all: no file in it, whatever the parser makes of it.
  else if (sk.contentType === 'not-multipart') expect = { kind: 'either', md5s: [] };
  // Cut, unterminated, or with no boundary to find the parts by: "A cut or malformed multipart body
  // answers 400 ERR_MULTIPART_INVALID … and keeps nothing of the request".
  else if (!whole || !headerOk || overLimits) expect = { kind: 'refused' };
  else if (harmless && !ambiguous && boundaryAsToken && underLimits && sk.contentType !== 'mixed')
    expect = { kind: 'files', md5s };
  else expect = { kind: 'either', md5s };
  // A body whose client waits past the network timeout is refused — or, when its form was whole, may
  // be recorded with the connection cut at NETWORK_TIMEOUT before the answer (the body never ended).
  if (sk.cut?.how === 'stall') expect = whole && headerOk ? { kind: 'whole-stalled', md5s } : { kind: 'refused' };

  const head = [
    `POST ${sk.path} HTTP/1.1`,
    `Host: ${host}`,
    `Content-Type: ${contentType}`,
    'Accept: application/json',
    `X-Request-Id: ${requestId}`,
  ];
  let payload: Buffer;
  let stall = false;
  const chunked = sk.cut?.how === 'chunked' || (sk.chunked && sk.cut?.how !== 'length' && sk.cut?.how !== 'stall');
  if (chunked) {
    head.push('Transfer-Encoding: chunked');
    const pieces: Buffer[] = [];
    // Chunks of varied sizes, then the last chunk: a body whole as HTTP, whatever it holds.
    for (let at = 0, n = 1; at < sent.length; n = n * 7 + 1) {
      const len = Math.min(sent.length - at, 1 + (n % 65_536));
      pieces.push(Buffer.from(`${len.toString(16)}\r\n`), sent.subarray(at, at + len), Buffer.from('\r\n'));
      at += len;
    }
    payload = Buffer.concat([...pieces, Buffer.from('0\r\n\r\n')]);
  } else if (sk.cut?.how === 'stall') {
    head.push(`Content-Length: ${body.length + 1}`);
    payload = sent;
    stall = true;
  } else if (sk.cut?.how === 'drop') {
    // The whole body announced; the client goes after the cut.
    head.push(`Content-Length: ${body.length}`);
    payload = body;
  } else {
    head.push(`Content-Length: ${sent.length}`);
    payload = sent;
  }
  if (!sk.followUp) head.push('Connection: close');
  const wire = Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'), payload]);
  const headerBytes = wire.length - payload.length;
  const partsSaid = sk.parts.map(
    (p) => `${p.kind}${p.odd.length ? `(${p.odd.join(',')})` : ''}:${bytesOf(p.content).length}`,
  );
  const cutSaid = sk.cut
    ? `, cut in the ${sk.cut.region} at byte ${cutAt} of ${regions.at(-1)!.end} by ${sk.cut.how}`
    : '';
  const describe =
    `${sk.parts.length} part(s) [${partsSaid.slice(0, 8).join(' ')}${sk.parts.length > 8 ? ' …' : ''}], ` +
    `content-type ${sk.contentType}, closing ${sk.closing}${cutSaid}${chunked ? ', chunked' : ''}`;
  return { wire, cutAfter: sk.cut?.how === 'drop' ? headerBytes + (cutAt ?? 0) : undefined, stall, expect, describe };
}
