// Which tokens are accepted: expiry, nbf, issuer and audience, alg none, a wrong key, algorithm
// confusion; RS256/ES256/EdDSA public keys from PEM files; max_size at creation and on a deferred
// length; the verified caller in hook payloads and the completion form; the catalog's owner column
// on an old catalog; the split deployment's pass-through.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { ConfigError, configFor, load } from '../server/config/config.ts';
import { startCompletionServer } from '../server/start/completion-server.ts';
import { SqliteCatalog } from '../server/backends/catalog/sqlite-catalog.ts';
import type { HookHandler, HookRequest } from '../hooks/types.ts';
import { algNone, bearer, hs256, inSeconds, signAsymmetric, TEST_JWT_SECRET, tokenFor } from './helpers/jwt.ts';
import { startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';
import { metadata, patch, tus } from './helpers/tus.ts';

const create = (endpoint: string, headers: Record<string, string>, length = 10) =>
  tus('POST', endpoint, { 'Upload-Length': String(length), ...headers });

test('HS256: expired, not yet valid, wrong issuer or audience, alg none, wrong secret, no exp, no sub, malformed: 401 \
invalid_token', async (t) => {
  const s = await startTestServer(t, {
    authJwtSecret: TEST_JWT_SECRET,
    authJwtIssuer: 'https://app.example',
    authJwtAudience: 'tuspass',
  });
  const good = { sub: 'alice', scope: 'upload read', iss: 'https://app.example', aud: 'tuspass', exp: inSeconds(600) };
  assert.equal((await create(s.endpoint, bearer(hs256(good)))).status, 201);
  // nbf in the past and a list audience are fine.
  assert.equal(
    (await create(s.endpoint, bearer(hs256({ ...good, nbf: inSeconds(-10), aud: ['other', 'tuspass'] })))).status,
    201,
  );

  const refused: Record<string, string> = {
    expired: hs256({ ...good, exp: inSeconds(-3600) }),
    'nbf in the future': hs256({ ...good, nbf: inSeconds(3600) }),
    'wrong issuer': hs256({ ...good, iss: 'https://evil.example' }),
    'no issuer': hs256({ ...good, iss: undefined }),
    'wrong audience': hs256({ ...good, aud: 'someone-else' }),
    'alg none': algNone(good),
    'alg none, header says HS256 without a signature': `${hs256(good).split('.').slice(0, 2).join('.')}.`,
    'wrong secret': hs256(good, 'another-secret-0123456789abcdef-0123456789'),
    'no exp': hs256({ ...good, exp: undefined }),
    'no sub': hs256({ ...good, sub: undefined }),
    'empty sub': hs256({ ...good, sub: '' }),
    'scope not a string': hs256({ ...good, scope: ['upload'] }),
    'max_size not a number': hs256({ ...good, max_size: '10GB' }),
    'payload changed after signing': (() => {
      const [h, , sig] = hs256(good).split('.');
      const forged = Buffer.from(JSON.stringify({ ...good, sub: 'root', scope: 'admin' })).toString('base64url');
      return `${h}.${forged}.${sig}`;
    })(),
    garbage: 'not-a-jwt',
    'HS512 with the right secret': (() => {
      const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const input = `${part({ alg: 'HS512', typ: 'JWT' })}.${part(good)}`;
      return `${input}.${crypto.createHmac('sha512', TEST_JWT_SECRET).update(input).digest('base64url')}`;
    })(),
  };
  for (const [why, token] of Object.entries(refused)) {
    const res = await create(s.endpoint, bearer(token));
    assert.equal(res.status, 401, `${why}: ${res.body}`);
    assert.match(res.body, /^ERR_TOKEN_INVALID: /, why);
    assert.match(res.headers['www-authenticate']!, /^Bearer realm="tuspass", error="invalid_token"/, why);
    assert.doesNotMatch(
      res.body,
      new RegExp(token.slice(0, 20).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')),
      `${why}: the token is not echoed`,
    );
  }
  // Other spellings of the header.
  for (const header of [
    'Bearer',
    'Bearer  ',
    `Token ${hs256(good)}`,
    `Bearer ${hs256(good)} extra`,
    `Bearer ${'a'.repeat(9000)}`,
  ]) {
    const res = await create(s.endpoint, { Authorization: header });
    assert.equal(res.status, 401, header.slice(0, 30));
  }
  assert.equal(
    (await create(s.endpoint, { Authorization: `bearer ${hs256(good)}` })).status,
    201,
    'the scheme is case-insensitive',
  );
  // A token seen before and expired since is refused too (the verifier remembers tokens).
  const short = hs256({ ...good, exp: inSeconds(-31) });
  assert.equal((await create(s.endpoint, bearer(short))).status, 401);
});

for (const alg of ['RS256', 'ES256', 'EdDSA'] as const) {
  test(`${alg}: a public key from a PEM file verifies tokens signed with its private key; HS256 signed with the public \
key is refused`, async (t) => {
    const dir = tmpDir(t);
    const pair =
      alg === 'RS256'
        ? crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })
        : alg === 'ES256'
          ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
          : crypto.generateKeyPairSync('ed25519');
    const pemFile = path.join(dir, 'public.pem');
    const pem = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    fs.writeFileSync(pemFile, pem);
    const { config } = load({ AUTH_JWT_PUBLIC_KEY: pemFile });
    assert.equal(config.authJwtPublicKey?.algorithm, alg);
    const s = await startTestServer(t, { authJwtPublicKey: config.authJwtPublicKey });
    const claims = { sub: 'alice', scope: 'upload', exp: inSeconds(600) };
    const ok = await create(s.endpoint, bearer(signAsymmetric(alg, pair.privateKey, claims)));
    assert.equal(ok.status, 201, ok.body);
    // Algorithm confusion: the public key (which anyone may have) used as an HMAC secret.
    assert.equal((await create(s.endpoint, bearer(hs256(claims, pem)))).status, 401);
    const other =
      alg === 'RS256'
        ? crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })
        : alg === 'ES256'
          ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
          : crypto.generateKeyPairSync('ed25519');
    assert.equal(
      (await create(s.endpoint, bearer(signAsymmetric(alg, other.privateKey, claims)))).status,
      401,
      'wrong key',
    );
    assert.equal((await create(s.endpoint, bearer(algNone(claims)))).status, 401, 'alg none');
  });
}

test('settings: unreadable files, bad PEM, private keys, short secrets, and two key sources are start-up errors naming \
the setting', (t) => {
  const dir = tmpDir(t);
  const problems = (env: Record<string, string>) => {
    try {
      load(env);
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      return e.problems.join('\n');
    }
    return '';
  };
  assert.match(
    problems({ AUTH_JWT_SECRET_FILE: path.join(dir, 'missing') }),
    /AUTH_JWT_SECRET_FILE: cannot read .*ENOENT/,
  );
  fs.writeFileSync(path.join(dir, 'bad.pem'), '-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n');
  assert.match(
    problems({ AUTH_JWT_PUBLIC_KEY: path.join(dir, 'bad.pem') }),
    /AUTH_JWT_PUBLIC_KEY: .*is not a PEM public key/,
  );
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  fs.writeFileSync(path.join(dir, 'private.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  assert.match(problems({ AUTH_JWT_PUBLIC_KEY: path.join(dir, 'private.pem') }), /AUTH_JWT_PUBLIC_KEY: .*private key/);
  const p384 = crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey;
  fs.writeFileSync(path.join(dir, 'p384.pem'), p384.export({ type: 'spki', format: 'pem' }));
  assert.match(problems({ AUTH_JWT_PUBLIC_KEY: path.join(dir, 'p384.pem') }), /AUTH_JWT_PUBLIC_KEY: .*secp384r1/);
  assert.match(problems({ AUTH_JWT_SECRET: 'short' }), /AUTH_JWT_SECRET: must be at least 32 bytes/);
  fs.writeFileSync(path.join(dir, 'secret'), `${TEST_JWT_SECRET}\n`);
  assert.equal(
    load({ AUTH_JWT_SECRET_FILE: path.join(dir, 'secret') }).config.authJwtSecret,
    TEST_JWT_SECRET,
    'the trailing newline is not part of the secret',
  );
  assert.match(
    problems({ AUTH_JWT_SECRET: TEST_JWT_SECRET, AUTH_JWT_SECRET_FILE: path.join(dir, 'secret') }),
    /AUTH_JWT_SECRET and AUTH_JWT_SECRET_FILE are both set/,
  );
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
  fs.writeFileSync(path.join(dir, 'ec.pem'), ec.export({ type: 'spki', format: 'pem' }));
  assert.match(
    problems({ AUTH_JWT_SECRET: TEST_JWT_SECRET, AUTH_JWT_PUBLIC_KEY: path.join(dir, 'ec.pem') }),
    /AUTH_JWT_SECRET and AUTH_JWT_PUBLIC_KEY are both set/,
  );
});

test('max_size: a creation past the token limit is 413 before anything exists, a deferred length past it too; MAX_SIZE \
still applies', async (t) => {
  const s = await startTestServer(t, { authJwtSecret: TEST_JWT_SECRET, maxSize: 10_000 });
  const small = bearer(tokenFor('alice', 'upload', { max_size: 100 }));
  const big = bearer(tokenFor('alice', 'upload', { max_size: 1_000_000 }));
  const over = await create(s.endpoint, small, 101);
  assert.equal(over.status, 413);
  assert.match(over.body, /^ERR_TOKEN_MAX_SIZE_EXCEEDED/);
  assert.equal((await create(s.endpoint, small, 100)).status, 201);
  // MAX_SIZE is smaller than the token's: MAX_SIZE's code.
  const server = await create(s.endpoint, big, 20_000);
  assert.equal(server.status, 413);
  assert.match(server.body, /^ERR_MAX_SIZE_EXCEEDED/);
  // Deferred length: declared past the limit in a PATCH.
  const deferred = await tus('POST', s.endpoint, { ...small, 'Upload-Defer-Length': '1' });
  assert.equal(deferred.status, 201);
  const url = new URL(deferred.headers.location!, s.endpoint).toString();
  const declared = await patch(url, 0, 'x'.repeat(10), { ...small, 'Upload-Length': '500' });
  assert.equal(declared.status, 413);
  assert.match(declared.body, /^ERR_TOKEN_MAX_SIZE_EXCEEDED/);
  // Bytes past the limit with the length still deferred: refused before a byte is read.
  const past = await patch(url, 0, 'x'.repeat(150), small);
  assert.equal(past.status, 413);
  assert.equal((await tus('HEAD', url, small)).headers['upload-offset'], '0');
  assert.equal((await patch(url, 0, 'x'.repeat(100), small)).status, 204, 'up to the limit is fine');
  // Creation-with-upload, deferred length, body past the token's limit.
  const withBody = await tus(
    'POST',
    s.endpoint,
    { ...small, 'Upload-Defer-Length': '1', 'Content-Type': 'application/offset+octet-stream' },
    'y'.repeat(150),
  );
  assert.equal(withBody.status, 413, withBody.body);
  // A final upload past the limit.
  const part = await tus('POST', s.endpoint, { ...big, 'Upload-Length': '150', 'Upload-Concat': 'partial' });
  const partUrl = new URL(part.headers.location!, s.endpoint).toString();
  assert.equal((await patch(partUrl, 0, 'z'.repeat(150), big)).status, 204);
  const smallAlice = bearer(tokenFor('alice', 'upload', { max_size: 100 }));
  const final = await tus('POST', s.endpoint, { ...smallAlice, 'Upload-Concat': `final;${new URL(partUrl).pathname}` });
  assert.equal(final.status, 413);
  assert.match(final.body, /^ERR_TOKEN_MAX_SIZE_EXCEEDED/);
});

test('hook payloads carry the verified subject and scopes (Event.Auth), finish events the owner; the form and the \
record carry the owner', async (t) => {
  const seen: HookRequest[] = [];
  const recorder: HookHandler = {
    name: 'recorder',
    events: ['pre-create', 'post-create', 'pre-finish', 'post-finish', 'pre-terminate'],
    async invokeHook(request) {
      seen.push(structuredClone(request));
      return {};
    },
  };
  const s = await startTestServer(t, { authJwtSecret: TEST_JWT_SECRET }, { hooks: [recorder] });
  const token = tokenFor('alice@example.org', 'upload read', { max_size: 5000 });
  const res = await tus('POST', s.endpoint, {
    ...bearer(token),
    'Upload-Length': '4',
    'Upload-Metadata': metadata({ filename: 'a.txt' }),
  });
  const url = new URL(res.headers.location!, s.endpoint).toString();
  const done = await patch(url, 0, 'abcd', bearer(token));
  assert.equal(done.status, 200, done.body);
  const auth = { Subject: 'alice@example.org', Scopes: ['upload', 'read'], MaxSize: 5000 };
  for (const type of ['pre-create', 'pre-finish'] as const) {
    const request = seen.find((r) => r.Type === type);
    assert.ok(request, type);
    assert.deepEqual(request.Event.Auth, auth, type);
  }
  const finish = seen.find((r) => r.Type === 'pre-finish')!;
  assert.equal(finish.Event.Upload.Owner, 'alice@example.org');
  const { id } = JSON.parse(done.body) as { id: string };
  const record = (await (await fetch(`${s.url}/api/uploads/${id}`, { headers: bearer(token) })).json()) as {
    owner: string;
  };
  assert.equal(record.owner, 'alice@example.org');
  // The owner is not in the client-visible metadata.
  const head = await tus('HEAD', url, bearer(token));
  assert.doesNotMatch(
    Buffer.from((head.headers['upload-metadata'] ?? '').split(' ')[1] ?? '', 'base64').toString(),
    /alice/,
  );
  assert.doesNotMatch(head.headers['upload-metadata'] ?? '', /owner/);
});

test('a catalog made before owners gets the owner column; old records belong to nobody (admins only)', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'catalog.sqlite');
  const db = new Database(file);
  db.exec(`CREATE TABLE uploads (id INTEGER PRIMARY KEY AUTOINCREMENT, upload_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL, size INTEGER NOT NULL, md5 TEXT NOT NULL, sha1 TEXT, crc32 TEXT, content_type TEXT NOT NULL,
    path TEXT NOT NULL,
    fields TEXT NOT NULL, created_at TEXT NOT NULL)`);
  db.prepare(
    `INSERT INTO uploads (upload_id, name, size, md5, content_type, path, fields, created_at) VALUES ('old', ` +
      `'old.bin', 1, ?, 'x/y', '/data/old', '{}', ?)`,
  ).run('0'.repeat(32), new Date().toISOString());
  db.close();
  const catalog = new SqliteCatalog(file);
  t.after(() => catalog.close());
  assert.equal((await catalog.byUploadId('old'))?.owner, '');
  await catalog.record({
    uploadId: 'new',
    name: 'n',
    size: 1,
    md5: '1'.repeat(32),
    contentType: 'x/y',
    path: '/data/new',
    fields: {},
    owner: 'alice',
  });
  assert.deepEqual(
    (await catalog.list({ limit: 10, offset: 0, owner: 'alice' })).map((r) => r.uploadId),
    ['new'],
  );
  assert.deepEqual((await catalog.list({ limit: 10, offset: 0 })).map((r) => r.uploadId).sort(), ['new', 'old']);
  assert.equal(await catalog.remove((await catalog.byUploadId('old'))!.id), true);
  assert.equal(await catalog.remove('12345'), false);
});

test("split deployment: the upload server passes the caller's token to the completion service, which decides what they \
see and may delete", async (t) => {
  const dataDir = tmpDir(t);
  const service = await startCompletionServer(
    configFor({
      dataDir,
      completionPort: 0,
      completionSecret: 'test-secret-0123456789',
      authJwtSecret: TEST_JWT_SECRET,
    }),
    { log: () => {} },
  );
  t.after(() => service.close());
  const s = await startTestServer(
    t,
    { dataDir, completionUrl: `${service.url}/complete/`, authJwtSecret: TEST_JWT_SECRET },
    { completion: false },
  );
  const alice = bearer(tokenFor('alice', 'upload read'));
  const bob = bearer(tokenFor('bob', 'upload read'));
  const res = await tus('POST', s.endpoint, { ...alice, 'Upload-Length': '5' });
  const done = await patch(new URL(res.headers.location!, s.endpoint).toString(), 0, 'hello', alice);
  assert.equal(done.status, 200, done.body);
  const { id, url } = JSON.parse(done.body) as { id: string; url: string };
  assert.equal((await fetch(`${s.url}/api/uploads`)).status, 401);
  assert.equal(((await (await fetch(`${s.url}/api/uploads`, { headers: bob })).json()) as unknown[]).length, 0);
  assert.equal(((await (await fetch(`${s.url}/api/uploads`, { headers: alice })).json()) as unknown[]).length, 1);
  assert.equal(await (await fetch(`${s.url}${url}`, { headers: alice })).text(), 'hello');
  assert.equal((await fetch(`${s.url}${url}`, { headers: bob })).status, 404);
  assert.equal((await fetch(`${s.url}/api/uploads/${id}`, { method: 'DELETE', headers: bob })).status, 404);
  assert.equal((await fetch(`${s.url}/api/uploads/${id}`, { method: 'DELETE', headers: alice })).status, 204);
  assert.equal((await fetch(`${s.url}/api/uploads/${id}`, { headers: alice })).status, 404);
});
