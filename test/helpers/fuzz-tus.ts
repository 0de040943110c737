// The tus requests of the fuzz suite (test/hostile-fuzz.test.ts), and the IETF draft's: stored uploads of every kind to
// aim at, and requests sketched as a well-formed tus client would send them, then mutated — random and malformed
// Upload-Offset, Upload-Length, Upload-Metadata, Upload-Concat, Upload-Checksum, X-HTTP-Method-Override, ids in every
// spelling, methods, framings and bodies — and written out byte for byte, so that malformed headers really reach the
// server.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fc from 'fast-check';
import { recordIdsOf, type FuzzServer } from './fuzz-server.ts';
import { patternBytes } from './files.ts';
import { create, metadata, patch, tus, type TusAnswer } from './tus.ts';

export interface Fixture {
  name: string;
  id: string;
  /** Bytes the file must hold. */
  bytes: Buffer;
  info: ReturnType<typeof infoOf>;
  /** An unfinished upload: may grow by a PATCH to its own URL. */
  writable: boolean;
}

/** What no request may change in an upload's info: its length (once set) and its metadata. */
export const infoOf = (s: FuzzServer, id: string) => {
  const info = JSON.parse(fs.readFileSync(`${s.filePath(id)}.json`, 'utf8')) as { size?: number; metadata?: unknown };
  return { size: info.size, metadata: JSON.stringify(info.metadata) };
};

export async function fixtures(s: FuzzServer): Promise<Fixture[]> {
  const endpoint = `${s.url}/files/`;
  const idOf = (url: string) => new URL(url).pathname.split('/').pop()!;
  /** A finishing answer names the record made: finished by this client. */
  const finishes = (r: TusAnswer) => {
    for (const id of recordIdsOf(r.body)) s.finished.add(id);
    return r.status;
  };
  const made: Array<{ name: string; id: string; writable: boolean }> = [];
  const small = patternBytes(1000, 11);
  const a = await create(endpoint, small.length, { filename: 'a.txt' });
  assert.equal(finishes(await patch(a, 0, small)), 200);
  made.push({ name: 'finished', id: idOf(a), writable: false });
  // Larger than 64 KiB with a filename: a download past 64 KiB on a kept-alive connection once crashed the process.
  const big = patternBytes(70_000, 12);
  const b = await create(endpoint, big.length, { filename: 'b.bin' });
  assert.equal(finishes(await patch(b, 0, big)), 200);
  made.push({ name: 'finished-large', id: idOf(b), writable: false });
  const partial = await tus('POST', endpoint, { 'Upload-Length': '2000', 'Upload-Concat': 'partial' });
  const p = new URL(partial.headers.location!, endpoint).toString();
  assert.equal((await patch(p, 0, patternBytes(2000, 13))).status, 204);
  made.push({ name: 'partial', id: idOf(p), writable: false });
  const final = await tus('POST', endpoint, {
    'Upload-Concat': `final;${new URL(p).pathname}`,
    'Upload-Metadata': metadata({ filename: 'f.bin' }),
  });
  assert.equal(finishes(final), 201, final.body);
  made.push({ name: 'final', id: idOf(new URL(final.headers.location!, endpoint).toString()), writable: false });
  const u = await create(endpoint, 1_000_000, { filename: 'u.bin' });
  assert.equal((await patch(u, 0, patternBytes(500, 14))).status, 204);
  made.push({ name: 'unfinished', id: idOf(u), writable: true });
  const deferred = await tus('POST', endpoint, { 'Upload-Defer-Length': '1' });
  assert.equal(deferred.status, 201);
  made.push({ name: 'deferred', id: idOf(new URL(deferred.headers.location!, endpoint).toString()), writable: true });
  return made.map((f) => ({ ...f, bytes: fs.readFileSync(s.filePath(f.id)), info: infoOf(s, f.id) }));
}

// ---- what a request is made of ----

const METHODS = [
  'HEAD',
  'GET',
  'PATCH',
  'POST',
  'DELETE',
  'OPTIONS',
  'PUT',
  'TRACE',
  'CONNECT',
  'patch',
  'FOO',
  'PROPFIND',
  'SEARCH',
];

/** Header values: printable ASCII, some latin-1 and controls that are legal on the wire; never CR/LF. */
const junk = fc.string({
  unit: fc.constantFrom(...' \t!"#$%&\'()*+,-./0123456789:;<=>?@AZaz[\\]^_`{|}~\u0080\u00e9\u00ff'.split('')),
  maxLength: 24,
});

/** Offsets and lengths: the right one (@off, @len: the target's now), near misses, malformed. */
const integerish = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('@off', '@len', '@off+1', '@off-1', '@len+1') },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      '0',
      '1',
      '500',
      '999',
      '1000',
      '2000',
      '70000',
      '1000000',
      '-1',
      '-0',
      '+5',
      ' 5',
      '5 ',
      '05',
      '1e3',
      '0x10',
      '1.5',
      '',
      ' ',
      'NaN',
      'Infinity',
      '5,5',
      '9007199254740991',
      '9007199254740992',
      '18446744073709551616',
      '1'.repeat(400),
    ),
  },
  { weight: 1, arbitrary: fc.nat({ max: 2_000_000 }).map(String) },
  { weight: 1, arbitrary: fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map(String) },
  { weight: 1, arbitrary: junk },
);

const b64 = (s: string) => Buffer.from(s).toString('base64');
const metadataValue = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    ',',
    'filename',
    `filename ${b64('x')}`,
    `filename ${b64('a')},filename ${b64('b')}`,
    `filename !!notbase64`,
    ` ${b64('x')}`,
    `file name ${b64('x')}`,
    `filename ${b64('../../etc/passwd')}`,
    `filename ${b64('<script>alert(1)</script>')}`,
    `filename ${b64('\u0000')}`,
    `k ${'A'.repeat(3000)}`,
  ),
  fc
    .array(
      fc.tuple(
        fc.oneof(fc.stringMatching(/^[a-z]{1,8}$/), junk),
        fc.oneof(fc.string({ maxLength: 20 }).map(b64), junk),
      ),
      { maxLength: 5 },
    )
    .map((pairs) => pairs.map(([k, v]) => `${k} ${v}`).join(',')),
);

const checksumValue = fc.oneof(
  fc.constantFrom('@right', '@right', 'md5', 'sha1', 'crc32', 'sha256', 'MD5', 'bogus', ''),
  fc
    .tuple(
      fc.constantFrom('md5', 'sha1', 'crc32', 'sha256', 'md4', 'x'),
      fc.oneof(
        fc.uint8Array({ maxLength: 24 }).map((b) => Buffer.from(b).toString('base64')),
        junk,
      ),
    )
    .map(([a, v]) => `${a} ${v}`),
);

/** Concatenation: @i is fixture i's URL (the unfinished, the final and itself included). */
const concatValue = fc.oneof(
  fc.constantFrom(
    'partial',
    'final',
    'final;',
    'partial;x',
    'FINAL;x',
    'final; ',
    'final;/files/',
    'final;http://elsewhere/files/x',
    'final;/files/x%2F..%2F@2',
  ),
  junk,
  fc.array(fc.nat({ max: 7 }), { minLength: 1, maxLength: 6 }).map((ix) => `final;${ix.map((i) => `@${i}`).join(' ')}`),
  fc.nat({ max: 5 }).map((i) => `final;${Array(150).fill(`@${i}`).join(' ')}`),
);

const OVERRIDES = [
  'PATCH',
  'DELETE',
  'HEAD',
  'GET',
  'POST',
  'OPTIONS',
  'PUT',
  'patch',
  ' delete ',
  'PATCH, DELETE',
  '',
  'TRACE',
  'CONNECT',
];

const HEADER_VALUES: Record<string, fc.Arbitrary<string>> = {
  'Tus-Resumable': fc.oneof(fc.constantFrom('1.0.0', '0.2.2', '1.0', '1.0.0, 1.0.0', ''), junk),
  'Upload-Offset': integerish,
  'Upload-Length': integerish,
  'Upload-Defer-Length': fc.oneof(fc.constant('1'), integerish),
  'Upload-Metadata': metadataValue,
  'Upload-Concat': concatValue,
  'Upload-Checksum': checksumValue,
  'X-HTTP-Method-Override': fc.oneof(fc.constantFrom(...OVERRIDES), junk),
  'Content-Type': fc.oneof(
    fc.constantFrom(
      'text/plain',
      'application/offset+octet-stream; charset=utf-8',
      'APPLICATION/OFFSET+OCTET-STREAM',
      'application/offset+octet-stream, text/plain',
      '',
    ),
    junk,
  ),
  'Content-Length': fc.constantFrom('-1', 'abc', '1 2', '0x10', '99999999999999999999', ''),
  // Downloads of finished uploads.
  Range: fc.oneof(
    fc.constantFrom(
      'bytes=0-10',
      'bytes=-5',
      'bytes=999-',
      'bytes=1000-',
      'bytes=5-1',
      'bytes=0-0,2-3',
      'bytes=-0',
      'bytes=9007199254740992-',
      'items=0-1',
      'bytes=',
    ),
    junk,
  ),
  'If-Match': fc.oneof(fc.constantFrom('*', '"x"', 'W/"x"'), junk),
  // The IETF draft's requests (server/upload/ietf/). Repr-Digest is left out: a wrong one on a
  // request that completes an upload removes it, as the draft asks.
  'Upload-Draft-Interop-Version': fc.oneof(
    fc.constantFrom('3', '4', '5', '6', '7', '8', '2', '9', '8;x', '08', '-1', ''),
    junk,
  ),
  'Upload-Complete': fc.oneof(fc.constantFrom('?0', '?1', '?1;a=1', 'true', '1', '?2', ''), junk),
  'Upload-Incomplete': fc.oneof(fc.constantFrom('?0', '?1', 'false', ''), junk),
  'Content-Digest': fc.oneof(
    fc.constantFrom(
      'sha-256=:AAAA:',
      'md5=:@md5:',
      'sha=:x:',
      'unixsum=:AA==:',
      'sha-256=abc',
      'md5=:@md5:, sha-512=:AA==:',
      '',
    ),
    junk,
  ),
  'Content-Disposition': fc.oneof(
    fc.constantFrom(
      'inline; filename="a.bin"',
      "inline; filename*=UTF-8''%E2%82%AC.bin",
      'attachment; filename="../../etc/passwd"',
      "inline; filename*=UTF-8''%ZZ",
      'inline',
    ),
    junk,
  ),
};
const HEADER_NAMES = Object.keys(HEADER_VALUES);

type Mutation =
  | { op: 'set'; name: string; value: string }
  | { op: 'drop'; name: string }
  | { op: 'repeat'; name: string; value: string }
  | { op: 'line'; line: string }
  | { op: 'method'; method: string };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .constantFrom(...HEADER_NAMES)
      .chain((name) => HEADER_VALUES[name]!.map((value) => ({ op: 'set' as const, name, value }))),
  },
  { weight: 2, arbitrary: fc.constantFrom(...HEADER_NAMES).map((name) => ({ op: 'drop' as const, name })) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom(...HEADER_NAMES)
      .chain((name) => HEADER_VALUES[name]!.map((value) => ({ op: 'repeat' as const, name, value }))),
  },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom(
        'Bad Header: x',
        ': x',
        'X-Junk',
        'X-A: \u0001',
        'X-Tab\t: x',
        'Transfer-Encoding: gzip',
        'Expect: 100-continue',
        'Connection: keep-alive, Upgrade',
      )
      .map((line) => ({ op: 'line' as const, line })),
  },
  { weight: 1, arbitrary: fc.constantFrom(...METHODS).map((method) => ({ op: 'method' as const, method })) },
);

/** What a well-formed tus client would send, before mutation. */
const KINDS = [
  'create',
  'create-with-upload',
  'create-deferred',
  'partial',
  'final',
  'patch',
  'patch',
  'patch-checksum',
  'patch-length',
  'head',
  'get',
  'delete',
  'options',
  'draft-create',
  'draft-create-part',
  'draft-patch',
  'draft-patch-last',
  'draft-head',
  'draft-options',
] as const;
type Kind = (typeof KINDS)[number];

export interface Sketch {
  kind: Kind;
  /** Sent as POST with X-HTTP-Method-Override naming the kind's method. */
  overridden: boolean;
  /** Which fixture the path names, by index. */
  target: number;
  spelling: string;
  mutations: Mutation[];
  body: Uint8Array;
  framing: 'exact' | 'chunked' | 'none' | 'bad-length' | 'both';
  /** Asks for a normal request on the same connection after this one, to check the framing. */
  followUp: boolean;
}

const SPELLINGS = [
  'canonical',
  'alias-slash-dotdot',
  'trailing-slash',
  'dot-segment',
  'upper',
  'encoded-all',
  'query',
  'double-slash',
  'nul',
  'json',
  'digest',
  'extra-segment',
  'files-upper',
  'dotdot-prefix',
  'semicolon',
  'percent-ff',
  'random',
  'empty',
  'long',
  'endpoint',
  'endpoint-noslash',
  'root',
  'asterisk',
  'api',
  'complete',
  'assets',
  'traversal',
] as const;

export const sketch: fc.Arbitrary<Sketch> = fc.record({
  kind: fc.constantFrom(...KINDS),
  overridden: fc.oneof({ weight: 3, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  target: fc.nat({ max: 5 }),
  // Half the requests name an upload the canonical way (the rest: every other spelling).
  spelling: fc.oneof(fc.constant('canonical'), fc.constantFrom(...SPELLINGS)),
  mutations: fc.array(mutation, { maxLength: 3 }),
  body: fc.oneof(
    fc.constant(new Uint8Array(0)),
    fc.uint8Array({ maxLength: 64 }),
    fc.uint8Array({ minLength: 1000, maxLength: 3000 }),
  ),
  framing: fc.oneof(
    { weight: 8, arbitrary: fc.constant('exact' as const) },
    {
      weight: 1,
      arbitrary: fc.constantFrom('chunked' as const, 'none' as const, 'bad-length' as const, 'both' as const),
    },
  ),
  followUp: fc.boolean(),
});

const METHOD_OF: Record<Kind, string> = {
  create: 'POST',
  'create-with-upload': 'POST',
  'create-deferred': 'POST',
  partial: 'POST',
  final: 'POST',
  patch: 'PATCH',
  'patch-checksum': 'PATCH',
  'patch-length': 'PATCH',
  head: 'HEAD',
  get: 'GET',
  delete: 'DELETE',
  options: 'OPTIONS',
  'draft-create': 'POST',
  'draft-create-part': 'POST',
  'draft-patch': 'PATCH',
  'draft-patch-last': 'PATCH',
  'draft-head': 'HEAD',
  'draft-options': 'OPTIONS',
};

/** The headers of the unmutated request. */
function baseHeaders(kind: Kind): Array<[string, string]> {
  const tus: Array<[string, string]> = [['Tus-Resumable', '1.0.0']];
  const octets: [string, string] = ['Content-Type', 'application/offset+octet-stream'];
  const draft: Array<[string, string]> = [['Upload-Draft-Interop-Version', '8']];
  const partial: [string, string] = ['Content-Type', 'application/partial-upload'];
  switch (kind) {
    case 'create':
      return [...tus, ['Upload-Length', '5000'], ['Upload-Metadata', `filename ${b64('n.bin')}`]];
    case 'create-with-upload':
      return [...tus, ['Upload-Length', '@body'], octets];
    case 'create-deferred':
      return [...tus, ['Upload-Defer-Length', '1']];
    case 'partial':
      return [...tus, ['Upload-Length', '100'], ['Upload-Concat', 'partial']];
    case 'final':
      return [...tus, ['Upload-Concat', 'final;@2 @2']];
    case 'patch':
      return [...tus, octets, ['Upload-Offset', '@off']];
    case 'patch-checksum':
      return [...tus, octets, ['Upload-Offset', '@off'], ['Upload-Checksum', '@right']];
    case 'patch-length':
      return [...tus, octets, ['Upload-Offset', '@off'], ['Upload-Length', '@len']];
    case 'draft-create':
      return [...draft, ['Upload-Complete', '?1'], ['Content-Disposition', 'inline; filename="d.bin"']];
    case 'draft-create-part':
      return [...draft, ['Upload-Complete', '?0'], ['Upload-Length', '5000']];
    case 'draft-patch':
      return [...draft, partial, ['Upload-Complete', '?0'], ['Upload-Offset', '@off']];
    case 'draft-patch-last':
      return [
        ...draft,
        partial,
        ['Upload-Complete', '?1'],
        ['Upload-Offset', '@off'],
        ['Content-Digest', 'md5=:@md5:'],
      ];
    case 'draft-head':
    case 'draft-options':
      return draft;
    default:
      return tus;
  }
}

function pathFor(sk: Sketch, ids: string[]): string {
  const id = ids[sk.target]!;
  const enc = (s: string) => [...s].map((c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`).join('');
  switch (sk.spelling) {
    case 'canonical':
      return `/files/${id}`;
    case 'query':
      return `/files/${id}?x=1`;
    case 'alias-slash-dotdot':
      return `/files/x%2F..%2F${id}`;
    case 'trailing-slash':
      return `/files/${id}/`;
    case 'dot-segment':
      return `/files/./${id}`;
    case 'upper':
      return `/files/${id.toUpperCase()}`;
    case 'encoded-all':
      return `/files/${enc(id)}`;
    case 'double-slash':
      return `/files//${id}`;
    case 'nul':
      return `/files/${id}%00`;
    case 'json':
      return `/files/${id}.json`;
    case 'digest':
      return `/files/${id}.digest`;
    case 'extra-segment':
      return `/files/${id}/x`;
    case 'files-upper':
      return `/FILES/${id}`;
    case 'dotdot-prefix':
      return `/files/..%2F${id}`;
    case 'semicolon':
      return `/files/${id};x`;
    case 'percent-ff':
      return `/files/%ff${id}`;
    case 'random':
      return `/files/${crypto.randomBytes(16).toString('hex')}`;
    case 'empty':
      return '/files/%20';
    case 'long':
      return `/files/${'a'.repeat(5000)}`;
    case 'endpoint':
      return '/files/';
    case 'endpoint-noslash':
      return '/files';
    case 'root':
      return '/';
    case 'asterisk':
      return '*';
    case 'api':
      return '/api/uploads';
    case 'complete':
      return '/complete/';
    case 'assets':
      return '/assets/%2e%2e/%2e%2e/package.json';
    case 'traversal':
      return '/files/..%2F..%2F..%2Fetc%2Fpasswd';
  }
  throw new Error(sk.spelling);
}

export interface Built {
  wire: Buffer;
  method: string;
  /** X-HTTP-Method-Override as sent (all of them, joined). */
  override: string;
  path: string;
  /** The body as the server decodes it (for the growth check). */
  body: Buffer;
  /** A second, normal request follows on the connection. */
  followUp: boolean;
}

/** Where a stored upload stands, for the placeholders of a valid request (@off, @len). */
export type Standing = (i: number) => { offset: number; length: number | undefined };

export function build(sk: Sketch, ids: string[], standing: Standing, host: string): Built {
  const creating = [
    'create',
    'create-with-upload',
    'create-deferred',
    'partial',
    'final',
    'draft-create',
    'draft-create-part',
  ].includes(sk.kind);
  const path = creating && sk.spelling === 'canonical' ? '/files/' : pathFor(sk, ids);
  const body = Buffer.from(sk.body);
  let method = METHOD_OF[sk.kind];
  let headers = baseHeaders(sk.kind);
  if (sk.overridden) {
    headers.push(['X-HTTP-Method-Override', method]);
    method = 'POST';
  }
  const raw: string[] = [];
  for (const m of sk.mutations) {
    if (m.op === 'set') headers = [...headers.filter(([k]) => k !== m.name), [m.name, m.value]];
    else if (m.op === 'drop') headers = headers.filter(([k]) => k !== m.name);
    else if (m.op === 'repeat') headers.push([m.name, m.value]);
    else if (m.op === 'line') raw.push(m.line);
    else method = m.method;
  }
  const here = standing(sk.target);
  const resolve = (v: string) =>
    v
      .replace(/@right/g, `sha1 ${crypto.createHash('sha1').update(body).digest('base64')}`)
      .replace(/@md5/g, crypto.createHash('md5').update(body).digest('base64'))
      .replace(/@(off|len|body)([+-]1)?/g, (_, what: string, delta?: string) => {
        const n = what === 'off' ? here.offset : what === 'len' ? (here.length ?? 1_000_000) : body.length;
        return String(n + (delta ? Number(delta) : 0));
      })
      .replace(/@(\d)/g, (_, i: string) => `/files/${ids[Number(i) % ids.length]}`);
  const lines = [
    `${method} ${path} HTTP/1.1`,
    `Host: ${host}`,
    ...headers.map(([k, v]) => `${k}: ${resolve(v)}`),
    ...raw,
  ];
  let payload: Buffer = Buffer.alloc(0);
  const explicitLength = headers.some(([k]) => k === 'Content-Length');
  let framing = sk.framing;
  if (explicitLength && (framing === 'exact' || framing === 'none')) framing = 'bad-length';
  switch (framing) {
    case 'exact':
      lines.push(`Content-Length: ${body.length}`);
      payload = body;
      break;
    case 'chunked':
      lines.push('Transfer-Encoding: chunked');
      payload = Buffer.concat([
        ...(body.length ? [Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n')] : []),
        Buffer.from('0\r\n\r\n'),
      ]);
      break;
    case 'none':
      break;
    case 'bad-length':
      // The mutated Content-Length (if any) or a malformed one, with the body after it.
      if (!explicitLength)
        lines.push(
          `Content-Length: ${['-1', 'abc', '1 2', '0x10', `${body.length}, ${body.length + 1}`, ''][body.length % 6]}`,
        );
      payload = body;
      break;
    case 'both':
      lines.push(`Content-Length: ${body.length}`, 'Transfer-Encoding: chunked');
      payload = body;
      break;
  }
  const framed = framing === 'exact' || framing === 'chunked' || (framing === 'none' && body.length === 0);
  const followUp = sk.followUp && framed && raw.length === 0;
  if (!followUp) lines.push('Connection: close');
  return {
    wire: Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), payload]),
    method,
    override: headers
      .filter(([k]) => k === 'X-HTTP-Method-Override')
      .map(([, v]) => v)
      .join(', '),
    path,
    body: framed ? body : Buffer.alloc(0),
    followUp,
  };
}

/** A request that may, by the protocol, delete a stored upload (termination): not sent to fixtures. */
export function terminates(b: Built, canonical: Set<string>): boolean {
  return (/delete/i.test(b.method) || /delete/i.test(b.override)) && canonical.has(b.path.split('?')[0]!);
}

/** A request that may, by the protocol, append to the upload at its path. */
export const mayAppend = (b: Built): boolean =>
  b.method === 'PATCH' || (b.method === 'POST' && /patch/i.test(b.override));
