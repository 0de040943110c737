// The `tuspass` command as a person runs it: a real process, its output and exit codes.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { md5, patternBytes } from './helpers/files.ts';
import { tmpDir } from './helpers/tmp.ts';
import { create, patch } from './helpers/tus.ts';

const BIN = path.resolve('bin/tuspass.js');

/** As at a terminal: text output (a pipe would make the server commands' default JSON lines). */
function run(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [BIN, ...args], {
    env: { ...process.env, LOG_FORMAT: 'text', ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
}

test('a bad setting stops the start with exit code 78 and names the setting', () => {
  const r = run(['start'], { PORT: 'abc', DIGESTS: 'sha3' });
  assert.equal(r.status, 78);
  assert.match(r.stderr, /PORT: must be a whole number, got "abc"/);
  assert.match(r.stderr, /DIGESTS: unknown digest sha3/);
});

test('an unusable data directory is named at start', (t) => {
  const file = path.join(tmpDir(t), 'a-file');
  fs.writeFileSync(file, '');
  const r = run(['start', '--port', '0', '--data-dir', path.join(file, 'data')]);
  assert.equal(r.status, 78);
  assert.match(r.stderr, /DATA_DIR: .* is not a writable directory \(ENOTDIR\)/);
});

// Under /proc, mkdir answers ENOENT although the parent exists: node's recursive mkdir then loops for
// ever, synchronously (signals unheard). Each directory setting, for each server command: exit 78
// naming the setting, with no stack trace. A hang fails by the test's timeout.
test('a directory that cannot be made (under /proc): exit 78 naming its setting, for every server command', {
  timeout: 120_000,
}, (t) => {
  const dir = tmpDir(t);
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    [
      'start',
      { DATA_DIR: '/proc/tuspass-data' },
      /DATA_DIR: \/proc\/tuspass-data is not a writable directory \(ENOENT\)/,
    ],
    ['upload-server', { DATA_DIR: '/proc/tuspass-data' }, /DATA_DIR: \/proc\/tuspass-data is not a writable directory/],
    [
      'start',
      { DATA_DIR: path.join(dir, 'data'), STORE_DIR: '/proc/tuspass-store/uploads' },
      /STORE_DIR: \/proc\/tuspass-store\/uploads is not a writable directory/,
    ],
    ['completion-server', { DATA_DIR: '/proc/tuspass-data' }, /CATALOG_PATH=\/proc\/tuspass-data\/catalog\.sqlite/],
    [
      'completion-server',
      { DATA_DIR: path.join(dir, 'data'), CATALOG_PATH: '/proc/tuspass-catalog/catalog.sqlite' },
      /CATALOG_PATH=\/proc\/tuspass-catalog/,
    ],
    [
      'completion-server',
      { DATA_DIR: '/proc/tuspass-data', CATALOG_PATH: path.join(dir, 'catalog.sqlite'), COMPLETION_SECRET: '' },
      /DATA_DIR: cannot keep the generated completion secret in \/proc\/tuspass-data/,
    ],
  ];
  for (const [command, env, named] of cases) {
    const r = spawnSync(process.execPath, [BIN, command], {
      env: { ...process.env, PORT: '0', COMPLETION_PORT: '0', LOG_FORMAT: 'text', ...env },
      encoding: 'utf8',
      timeout: 30_000,
      killSignal: 'SIGKILL',
    });
    const what = `${command} ${JSON.stringify(env)}`;
    assert.equal(r.signal, null, `${what}: still running after 30 s (SIGKILL: it ignored SIGTERM)`);
    assert.equal(r.status, 78, `${what}: exit ${r.status}\n${r.stderr}`);
    assert.match(r.stderr, named, what);
    assert.doesNotMatch(r.stderr, /\n\s+at /, `${what}: a stack trace`);
  }
});

test("directories are made by core/make-directory.ts only (node's recursive mkdir loops under /proc)", () => {
  const offenders: string[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (file.endsWith('.ts') && !file.endsWith('make-directory.ts')) {
        fs.readFileSync(file, 'utf8')
          .split('\n')
          .forEach((line, i) => {
            if (/mkdir(?:Sync)?\([^)]*recursive/.test(line) && !/^\s*\/\//.test(line))
              offenders.push(`${file}:${i + 1}`);
          });
      }
    }
  };
  // What runs in a server or a command (client/web is the page, built ahead of time).
  for (const dir of ['cli', 'core', 'hooks', 'server', 'client/cli', 'client/shared']) walk(dir);
  assert.deepEqual(offenders, []);
});

test('unknown commands and options are refused', () => {
  assert.equal(run(['serve']).status, 2);
  const r = run(['start', '--prot', '1']);
  assert.equal(r.status, 78);
  assert.match(r.stderr, /unknown option or argument "--prot"/);
  assert.match(run(['--help']).stdout, /completion-server/);
});

test('an unknown flag is named along with bad variables, in one run', () => {
  const r = run(['start', '--prot', '1', '--port=0'], { DIGESTS: 'sha3', LOG_FORMAT: 'text' });
  assert.equal(r.status, 78);
  assert.match(r.stderr, /DIGESTS: unknown digest sha3/);
  assert.match(r.stderr, /unknown option or argument "--prot" \(see tuspass --help\)/);
  const token = run(['token', '--sub', 'alice', '--scope', 'upload', '--ttl-days', '3'], {
    PORT: 'abc',
    AUTH_JWT_SECRET: 'x'.repeat(32),
  });
  assert.equal(token.status, 78);
  assert.match(token.stderr, /PORT: must be a whole number/);
  assert.match(token.stderr, /unknown option or argument "--ttl-days" \(see tuspass token --help\)/);
});

test('tuspass start serves uploads on its defaults, keeps a generated secret, stops on SIGTERM', async (t) => {
  const dataDir = tmpDir(t);
  const child = spawn(process.execPath, [BIN, 'start', '--port', '0', '--data-dir', dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (c) => {
      out += c;
      const m = /tus uploads on (http:\/\/[^ ]+)\/files\//.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
  });
  const bytes = patternBytes(50_000);
  const upload = await create(`${url}/files/`, bytes.length, { filename: 'cli.bin' });
  const last = await patch(upload, 0, bytes);
  assert.equal(last.status, 200);
  assert.equal(JSON.parse(last.body).md5, md5(bytes));
  const secret = path.join(dataDir, 'completion-secret');
  assert.match(fs.readFileSync(secret, 'utf8'), /^[0-9a-f]{64}\n$/);
  assert.equal(fs.statSync(secret).mode & 0o777, 0o600);
  const exited = new Promise<number | null>((r) => child.once('exit', r));
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
});
