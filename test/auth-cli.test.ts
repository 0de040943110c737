// The commands with authentication: start-up refusals (exit 78), `tuspass token` (checked by hand
// with node's crypto, then used), `tuspass push --token` and TUSPASS_TOKEN.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { writeTestFile } from './helpers/files.ts';
import { bearer, TEST_JWT_SECRET, tokenFor } from './helpers/jwt.ts';
import { runPush } from './helpers/push-run.ts';
import { startTestServer } from './helpers/server.ts';
import { tmpDir } from './helpers/tmp.ts';

const BIN = path.resolve('bin/tuspass.js');
const run = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 30_000 });

test('without authentication, a HOST beyond loopback refuses to start (exit 78) naming AUTH_JWT_SECRET and \
--allow-anonymous', (t) => {
  const dataDir = tmpDir(t);
  for (const command of ['start', 'upload-server', 'completion-server']) {
    const r = run([command, '--port', '0', '--completion-port', '0', '--data-dir', dataDir], { HOST: '0.0.0.0' });
    assert.equal(r.status, 78, `${command}: ${r.stderr}`);
    assert.match(r.stderr, /HOST=0\.0\.0\.0/);
    assert.match(r.stderr, /AUTH_JWT_SECRET/);
    assert.match(r.stderr, /--allow-anonymous \/ ALLOW_ANONYMOUS=true/);
  }
  // Other addresses beyond loopback too; loopback spellings start (checked without listening through load + the check).
  assert.equal(run(['start', '--port', '0', '--data-dir', dataDir, '--host', '::']).status, 78);
  // Unreadable key files and bad PEM name their setting, exit 78.
  const missing = run(['start', '--port', '0', '--data-dir', dataDir], {
    AUTH_JWT_SECRET_FILE: path.join(dataDir, 'nope'),
  });
  assert.equal(missing.status, 78);
  assert.match(missing.stderr, /AUTH_JWT_SECRET_FILE: cannot read/);
  fs.writeFileSync(path.join(dataDir, 'bad.pem'), 'not a key');
  const bad = run(['start', '--port', '0', '--data-dir', dataDir], {
    AUTH_JWT_PUBLIC_KEY: path.join(dataDir, 'bad.pem'),
  });
  assert.equal(bad.status, 78);
  assert.match(bad.stderr, /AUTH_JWT_PUBLIC_KEY: .*is not a PEM public key/);
});

test('isLoopback and the start check: loopback and anonymous, \
beyond loopback with a key or ALLOW_ANONYMOUS', async () => {
  const { isLoopback, requireAuthBeyondLoopback } = await import('../server/auth/loopback.ts');
  const { configFor } = await import('../server/config/config.ts');
  for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1'])
    assert.ok(isLoopback(h), h);
  for (const h of ['0.0.0.0', '::', '192.168.1.5', 'example.org', '128.0.0.1', '::ffff:10.0.0.1'])
    assert.ok(!isLoopback(h), h);
  const base = { dataDir: '/nonexistent' };
  assert.throws(() => requireAuthBeyondLoopback(configFor({ ...base, host: '10.0.0.1' })), /AUTH_JWT_SECRET/);
  assert.doesNotThrow(() =>
    requireAuthBeyondLoopback(configFor({ ...base, host: '10.0.0.1', authJwtSecret: TEST_JWT_SECRET })),
  );
  assert.doesNotThrow(() => requireAuthBeyondLoopback(configFor({ ...base, host: '10.0.0.1', allowAnonymous: true })));
  assert.doesNotThrow(() => requireAuthBeyondLoopback(configFor({ ...base, host: '127.0.0.1' })));
});

test('tuspass token prints an HS256 token with the claims asked for, which the server accepts', async (t) => {
  const r = run(['token', '--sub', 'alice', '--scope', 'upload read', '--ttl', '2h', '--max-size', '1MiB'], {
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    AUTH_JWT_ISSUER: 'https://app.example',
  });
  assert.equal(r.status, 0, r.stderr);
  const token = r.stdout.trim();
  const [h, p, sig] = token.split('.');
  // Verified here by hand: HMAC-SHA256 of "header.payload" with the secret.
  assert.equal(crypto.createHmac('sha256', TEST_JWT_SECRET).update(`${h}.${p}`).digest('base64url'), sig);
  assert.equal(JSON.parse(Buffer.from(h!, 'base64url').toString()).alg, 'HS256');
  const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
  assert.equal(claims.sub, 'alice');
  assert.equal(claims.scope, 'upload read');
  assert.equal(claims.max_size, 1024 * 1024);
  assert.equal(claims.iss, 'https://app.example');
  assert.ok(Math.abs((claims.exp as number) - (Date.now() / 1000 + 7200)) < 60);

  const s = await startTestServer(t, { authJwtSecret: TEST_JWT_SECRET, authJwtIssuer: 'https://app.example' });
  const res = await fetch(`${s.url}/files/`, {
    method: 'POST',
    headers: { ...bearer(token), 'Tus-Resumable': '1.0.0', 'Upload-Length': '10' },
  });
  assert.equal(res.status, 201);

  const refused = run(['token', '--sub', 'alice', '--scope', 'upload write'], { AUTH_JWT_SECRET: TEST_JWT_SECRET });
  assert.equal(refused.status, 78);
  assert.match(refused.stderr, /--scope: unknown write/);
  const noKey = run(['token', '--sub', 'alice', '--scope', 'read'], { AUTH_JWT_SECRET: '' });
  assert.equal(noKey.status, 78);
  assert.match(noKey.stderr, /AUTH_JWT_SECRET .*not set/);
});

test('tuspass push --token and TUSPASS_TOKEN send the bearer \
token; without one the server refuses (exit 5)', async (t) => {
  const s = await startTestServer(t, { authJwtSecret: TEST_JWT_SECRET });
  const dir = tmpDir(t);
  const fingerprints = path.join(dir, 'fp.json');
  const file = writeTestFile(dir, 'pushed.bin', 100_000, 9);
  const endpoint = `${s.url}/files/`;

  const without = await runPush(['--endpoint', endpoint, '--quiet', '--no-resume', file.path], fingerprints, {
    TUSPASS_TOKEN: '',
  });
  assert.equal(without.code, 5, without.stderr);
  assert.match(
    without.stderr,
    /status 401.*give one with --token TOKEN or TUSPASS_TOKEN=TOKEN/,
    'says how to give a token',
  );
  const expired = await runPush(
    [
      '--endpoint',
      endpoint,
      '--quiet',
      '--no-resume',
      '--token',
      tokenFor('alice', 'upload', { exp: Math.floor(Date.now() / 1000) - 3600 }),
      file.path,
    ],
    fingerprints,
  );
  assert.equal(expired.code, 5, expired.stderr);
  assert.match(
    expired.stderr,
    /status 401.*the token was refused .*--token or TUSPASS_TOKEN/,
    'says the token given was refused',
  );
  const withFlag = await runPush(
    ['--endpoint', endpoint, '--quiet', '--token', tokenFor('alice', 'upload'), file.path],
    fingerprints,
  );
  assert.equal(withFlag.code, 0, withFlag.stderr);
  const withEnv = await runPush(['--endpoint', endpoint, '--quiet', file.path], fingerprints, {
    TUSPASS_TOKEN: tokenFor('bob', 'upload'),
  });
  assert.equal(withEnv.code, 0, withEnv.stderr);
  const records = (await (
    await fetch(`${s.url}/api/uploads`, { headers: bearer(tokenFor('root', 'admin')) })
  ).json()) as Array<{ owner: string }>;
  assert.deepEqual(records.map((r) => r.owner).sort(), ['alice', 'bob']);
  const junk = await runPush(['--endpoint', endpoint, '--token', 'two words', file.path], fingerprints);
  assert.equal(junk.code, 2);
});
