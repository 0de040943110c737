// TLS_CERT / TLS_KEY and BEHIND_PROXY: a real HTTPS server with a certificate this
// test makes with openssl, tus-js-client over it, https Location URLs, TLS 1.1 refused, start-up
// errors naming the setting, NETWORK_TIMEOUT over TLS, and forged X-Forwarded-* headers.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import tls from 'node:tls';
import * as tusClient from 'tus-js-client';
import { ConfigError } from '../server/config/config.ts';
import { startTestServer } from './helpers/server.ts';
import { metadata, PATCH_TYPE, tus } from './helpers/tus.ts';
import { tmpDir } from './helpers/tmp.ts';

interface Pki {
  ca: Buffer;
  cert: string;
  key: string;
  /** A key that does not belong to `cert`. */
  otherKey: string;
}

/** A CA and a server certificate for 127.0.0.1 and localhost, made by openssl (Debian's). */
function makePki(t: TestContext): Pki | undefined {
  const dir = tmpDir(t);
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    run('version');
  } catch {
    return undefined;
  }
  run(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=tuspass test CA',
  );
  run(
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    'server.key',
    '-out',
    'server.csr',
    '-subj',
    '/CN=127.0.0.1',
  );
  fs.writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  run(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.pem',
    '-days',
    '2',
    '-extfile',
    'ext.cnf',
  );
  run('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', 'other.key');
  return {
    ca: fs.readFileSync(path.join(dir, 'ca.pem')),
    cert: path.join(dir, 'server.pem'),
    key: path.join(dir, 'server.key'),
    otherKey: path.join(dir, 'other.key'),
  };
}

/** An HTTPS request trusting only the test's CA. */
function httpsRequest(
  url: string,
  ca: Buffer,
  method = 'GET',
  headers: Record<string, string> = {},
  body?: string,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, headers, ca }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('HTTPS: tus-js-client uploads over TLS, Location says https, the page and the API answer over TLS', async (t) => {
  const pki = makePki(t);
  if (!pki) return t.skip('openssl is not installed (.ci/run installs it)');
  const s = await startTestServer(t, { tlsCert: pki.cert, tlsKey: pki.key });
  assert.match(s.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const bytes = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
  const outcome = await new Promise<{ url: string; body: string }>((resolve, reject) => {
    const upload = new tusClient.Upload(bytes, {
      endpoint: s.endpoint,
      chunkSize: 1024 * 1024,
      retryDelays: [],
      metadata: { filename: 'tls.bin' },
      // Trusts the test's CA only: a certificate problem fails the upload.
      httpStack: new tusClient.DefaultHttpStack({ ca: pki.ca }),
      onSuccess: ({ lastResponse }) => resolve({ url: upload.url!, body: lastResponse.getBody() }),
      onError: reject,
    });
    upload.start();
  });
  assert.match(outcome.url, new RegExp(`^${s.url}/files/[0-9a-f]{32}$`), 'the upload URL says https');
  const answer = JSON.parse(outcome.body) as { url: string; size: number };
  assert.equal(answer.size, bytes.length);
  const download = await httpsRequest(`${s.url}${answer.url}`, pki.ca);
  assert.equal(download.status, 200);
  assert.equal(download.body.length, bytes.length);
  // A creation's Location, the page, and a final upload's Location and Upload-Concat URLs.
  const created = await httpsRequest(s.endpoint, pki.ca, 'POST', { 'Tus-Resumable': '1.0.0', 'Upload-Length': '1' });
  assert.match(String(created.headers.location), /^https:\/\/127\.0\.0\.1:\d+\/files\//);
  assert.equal((await httpsRequest(`${s.url}/`, pki.ca)).status, 200);
  const part = await httpsRequest(
    s.endpoint,
    pki.ca,
    'POST',
    { 'Tus-Resumable': '1.0.0', 'Upload-Length': '2', 'Upload-Concat': 'partial', ...PATCH_TYPE },
    'ab',
  );
  const final = await httpsRequest(s.endpoint, pki.ca, 'POST', {
    'Tus-Resumable': '1.0.0',
    'Upload-Concat': `final;${String(part.headers.location)}`,
  });
  assert.equal(final.status, 201, final.body);
  assert.match(String(final.headers.location), /^https:\/\//);
  const head = await httpsRequest(String(final.headers.location), pki.ca, 'HEAD', { 'Tus-Resumable': '1.0.0' });
  assert.match(String(head.headers['upload-concat']), /^final;https:\/\//);
  // Plain HTTP on the TLS port is no way around it.
  await assert.rejects(fetch(`${s.url.replace('https:', 'http:')}/health`));
});

test('TLS 1.1 is refused by the server; TLS 1.2 is accepted', async (t) => {
  const pki = makePki(t);
  if (!pki) return t.skip('openssl is not installed');
  const s = await startTestServer(t, { tlsCert: pki.cert, tlsKey: pki.key });
  const port = Number(new URL(s.url).port);
  const connect = (version: tls.SecureVersion) =>
    new Promise<string>((resolve, reject) => {
      // SECLEVEL=0 lets this client offer 1.1 at all: the refusal must come from the server.
      const socket = tls.connect(
        {
          host: '127.0.0.1',
          port,
          ca: pki.ca,
          minVersion: version,
          maxVersion: version,
          ciphers: 'DEFAULT@SECLEVEL=0',
        },
        () => {
          const v = socket.getProtocol()!;
          socket.end();
          resolve(v);
        },
      );
      socket.on('error', reject);
    });
  assert.equal(await connect('TLSv1.2'), 'TLSv1.2');
  await assert.rejects(
    connect('TLSv1.1'),
    (e: NodeJS.ErrnoException) => e.code === 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION',
    'the server answers a protocol_version alert',
  );
});

test('start-up errors name the setting: an unreadable \
certificate, a key that does not match, one without the \
other', async (t) => {
  const pki = makePki(t);
  if (!pki) return t.skip('openssl is not installed');
  const refused = async (overrides: Record<string, string>, pattern: RegExp) => {
    await assert.rejects(
      startTestServer(t, overrides),
      (e: unknown) => e instanceof ConfigError && pattern.test(e.message),
      JSON.stringify(overrides),
    );
  };
  await refused(
    { tlsCert: path.join(path.dirname(pki.cert), 'missing.pem'), tlsKey: pki.key },
    /TLS_CERT: cannot read .*ENOENT/,
  );
  await refused(
    { tlsCert: pki.cert, tlsKey: pki.otherKey },
    /TLS_KEY: .* does not belong to the certificate in TLS_CERT/,
  );
  await refused({ tlsCert: pki.key, tlsKey: pki.key }, /TLS_CERT: .* is not a PEM certificate/);
  await refused({ tlsCert: pki.cert, tlsKey: pki.cert }, /TLS_KEY: .* is not a PEM private key/);
  const { load } = await import('../server/config/config.ts');
  assert.throws(() => load({ TLS_CERT: pki.cert }), /TLS_CERT and TLS_KEY go together/);
});

test('NETWORK_TIMEOUT holds over TLS: a PATCH body that stops is cut, the bytes received kept', async (t) => {
  const pki = makePki(t);
  if (!pki) return t.skip('openssl is not installed');
  const s = await startTestServer(t, { tlsCert: pki.cert, tlsKey: pki.key, networkTimeoutMs: 400 });
  const created = await httpsRequest(s.endpoint, pki.ca, 'POST', { 'Tus-Resumable': '1.0.0', 'Upload-Length': '10' });
  const uploadUrl = new URL(String(created.headers.location));
  const socket = tls.connect({ host: '127.0.0.1', port: Number(uploadUrl.port), ca: pki.ca });
  await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
  const started = Date.now();
  socket.write(
    `PATCH ${uploadUrl.pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: ` +
      '0\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: 10\r\n\r\nabc',
  );
  let answer = '';
  socket.on('data', (c: Buffer) => (answer += c.toString()));
  await new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const took = Date.now() - started;
  assert.ok(took < 5000, `cut after ${took} ms`);
  assert.match(answer, /^HTTP\/1\.1 408/);
  const head = await httpsRequest(uploadUrl.toString(), pki.ca, 'HEAD', { 'Tus-Resumable': '1.0.0' });
  assert.equal(head.headers['upload-offset'], '3', 'the bytes received are kept');
});

test('BEHIND_PROXY: off, forged X-Forwarded-Host/-Proto and \
Forwarded are ignored; on, they make the upload URLs', async (t) => {
  const forged = { 'X-Forwarded-Host': 'evil.example.net', 'X-Forwarded-Proto': 'https' };
  const off = await startTestServer(t);
  const plain = new URL(off.url);
  for (const headers of [forged, { Forwarded: 'for=1.2.3.4;host=evil.example.net;proto=https' }]) {
    const created = await tus('POST', off.endpoint, { 'Upload-Length': '1', ...headers });
    assert.equal(new URL(created.headers.location!).host, plain.host, 'Location keeps the real host');
    assert.equal(new URL(created.headers.location!).protocol, 'http:');
    const part = await tus(
      'POST',
      off.endpoint,
      { 'Upload-Length': '1', 'Upload-Concat': 'partial', ...PATCH_TYPE, ...headers },
      'x',
    );
    const final = await tus('POST', off.endpoint, { 'Upload-Concat': `final;${part.headers.location}`, ...headers });
    assert.equal(final.status, 201, final.body);
    assert.equal(new URL(final.headers.location!).host, plain.host, 'final Location too');
  }

  const on = await startTestServer(t, { behindProxy: true });
  const viaX = await tus('POST', on.endpoint, { 'Upload-Length': '1', ...forged });
  assert.match(viaX.headers.location!, /^https:\/\/evil\.example\.net\/files\/[0-9a-f]{32}$/);
  const viaForwarded = await tus('POST', on.endpoint, {
    'Upload-Length': '1',
    Forwarded: 'for=1.2.3.4;host="proxy.example.com:8443";proto=https, for=5.6.7.8;host=inner',
  });
  assert.match(viaForwarded.headers.location!, /^https:\/\/proxy\.example\.com:8443\/files\//);
  // Our own handlers make URLs the same way (a final upload's Location).
  const part = await tus('POST', on.endpoint, { 'Upload-Length': '1', 'Upload-Concat': 'partial', ...PATCH_TYPE }, 'x');
  const partUrl = part.headers.location!.replace('https://evil.example.net', on.url);
  const final = await tus('POST', on.endpoint, { 'Upload-Concat': `final;${partUrl}`, ...forged });
  assert.equal(final.status, 201, final.body);
  assert.match(final.headers.location!, /^https:\/\/evil\.example\.net\/files\//);
  // A header that would break the URL (a path, a user, spaces) is no host: Host is used instead.
  for (const bad of ['evil.example.net/x', 'user@evil', 'a b', 'evil.example.net:99999999']) {
    const created = await tus('POST', on.endpoint, {
      'Upload-Length': '1',
      'X-Forwarded-Host': bad,
      'Upload-Metadata': metadata({ n: bad }),
    });
    assert.equal(new URL(created.headers.location!).host, new URL(on.url).host, bad);
  }
});
