// The installable package: `npm pack` builds the bundles (prepack) and packs them;
// `npm install -g` into a temporary prefix gives a `tuspass` that starts, takes an upload from
// `tuspass push` and runs `completion-server`, from a directory that is not the clone, without
// writing into its install directory and without the clone's sources or dev dependencies.
//
// Time: dependencies come from npm's cache when it has them (--prefer-offline). better-sqlite3's
// install script compiles SQLite (two minutes on a busy 2-core machine) when no prebuilt binary can be
// downloaded; the test installs with --ignore-scripts and copies the clone's compiled binary instead
// (same Node, same machine). TUSPASS_PACK_TEST_SCRIPTS=1 runs the install scripts as a user's install does.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { writeTestFile } from './helpers/files.ts';
import { tmpDir } from './helpers/tmp.ts';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Every file under dir with its size and mtime, to prove nothing was written there. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const file = path.join(d, entry.name);
      if (entry.isDirectory()) walk(file);
      else {
        const s = fs.statSync(file);
        out.set(path.relative(dir, file), `${s.size}:${s.mtimeMs}`);
      }
    }
  };
  walk(dir);
  return out;
}

/** Starts `tuspass <command>` and resolves with its URL once it says where it listens. */
function startServer(bin: string, cwd: string, args: string[]) {
  const child = spawn(bin, args, { cwd, env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const url = new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const m = /on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (m) resolve(m[1]!);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`tuspass ${args[0]} exited ${code}: ${output}`)));
  });
  const stop = async () => {
    if (child.exitCode !== null) return child.exitCode;
    child.kill('SIGTERM');
    return new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  };
  return { url, stop, output: () => output };
}

test('npm pack + npm install -g into a temporary prefix: start, push and completion-server from another directory', {
  timeout: 600_000,
}, async (t) => {
  const work = tmpDir(t, 'tuspass-pack-');
  const packDir = path.join(work, 'pack');
  const prefix = path.join(work, 'prefix');
  const elsewhere = path.join(work, 'elsewhere');
  for (const d of [packDir, prefix, elsewhere]) fs.mkdirSync(d);

  await run('npm', ['pack', '--pack-destination', packDir], { cwd: ROOT, maxBuffer: 10 * 1024 * 1024 });
  const tarball = fs.readdirSync(packDir).find((f) => /^tuspass-.*\.tgz$/.test(f));
  assert.ok(tarball, 'npm pack wrote tuspass-<version>.tgz');
  const { stdout: listing } = await run('tar', ['tzf', path.join(packDir, tarball)]);
  const files = listing
    .split('\n')
    .filter(Boolean)
    .map((f) => f.replace(/^package\//, ''));
  for (const wanted of [
    'bin/tuspass.js',
    'dist/tuspass.mjs',
    'dist/hash-worker.cjs',
    'dist/hooks.js',
    'dist/types/hooks/index.d.ts',
    'client/web/dist/index.html',
    'client/web/dist/assets/app.js',
    'README.md',
  ]) {
    assert.ok(files.includes(wanted), `${wanted} is packed`);
  }
  assert.equal(
    files.filter((f) => f.startsWith('server/') || f.startsWith('test/') || f.startsWith('client/web/src/')).length,
    0,
    'no sources or tests packed',
  );

  const withScripts = process.env.TUSPASS_PACK_TEST_SCRIPTS === '1';
  await run(
    'npm',
    [
      'install',
      '-g',
      '--prefix',
      prefix,
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      ...(withScripts ? [] : ['--ignore-scripts']),
      path.join(packDir, tarball),
    ],
    {
      cwd: elsewhere,
      maxBuffer: 10 * 1024 * 1024,
    },
  );
  const installed = path.join(prefix, 'lib', 'node_modules', 'tuspass');
  assert.ok(!fs.existsSync(path.join(installed, 'node_modules', 'typescript')), 'dev dependencies are not installed');
  assert.ok(
    !fs.existsSync(path.join(installed, 'node_modules', 'playwright-core')),
    'dev dependencies are not installed',
  );
  if (!withScripts) {
    const binary = path.join('node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node');
    fs.mkdirSync(path.dirname(path.join(installed, binary)), { recursive: true });
    fs.copyFileSync(path.join(ROOT, binary), path.join(installed, binary));
  }
  const bin = path.join(prefix, 'bin', 'tuspass');
  const before = snapshot(installed);

  // tuspass start from a directory that is not the clone: data lands there (./data), not in the package.
  const server = startServer(bin, elsewhere, ['start', '--port', '0']);
  t.after(() => server.stop());
  const url = await server.url;
  const page = await fetch(`${url}/`);
  assert.equal(page.status, 200, 'the packed page is served');
  assert.match(await page.text(), /assets\/app\.js/);

  const file = writeTestFile(elsewhere, 'packed.bin', 3_000_000, 7);
  const push = await run(bin, ['push', '--endpoint', `${url}/files/`, '--quiet', file.path], {
    cwd: elsewhere,
    env: { ...process.env, TUSPASS_FINGERPRINTS: path.join(work, 'fingerprints.json') },
  });
  assert.match(push.stdout, new RegExp(file.md5), 'push printed the completion answer with the md5');
  const records = (await (await fetch(`${url}/api/uploads`)).json()) as Array<{ name: string; md5: string }>;
  assert.deepEqual(
    records.map((r) => [r.name, r.md5]),
    [['packed.bin', file.md5]],
  );
  assert.equal(await server.stop(), 0, 'stops cleanly on SIGTERM');
  assert.ok(fs.existsSync(path.join(elsewhere, 'data', 'catalog.sqlite')), 'DATA_DIR is relative to where it runs');

  const completion = startServer(bin, elsewhere, ['completion-server', '--completion-port', '0']);
  t.after(() => completion.stop());
  const completionUrl = await completion.url;
  const health = await fetch(`${completionUrl}/healthz`);
  assert.equal(health.status, 200, 'completion-server answers');
  const listed = (await (await fetch(`${completionUrl}/api/uploads`)).json()) as unknown[];
  assert.equal(listed.length, 1, 'completion-server reads the same catalog');
  assert.equal(await completion.stop(), 0);

  // `tuspass/hooks` in an app that has tuspass among its packages (a CommonJS one): plain node, both
  // module systems; TypeScript sees its types; a TypeScript hook module importing it runs.
  const app = path.join(work, 'app');
  fs.mkdirSync(path.join(app, 'node_modules'), { recursive: true });
  fs.writeFileSync(path.join(app, 'package.json'), '{ "name": "an-app", "private": true }\n');
  fs.symlinkSync(installed, path.join(app, 'node_modules', 'tuspass'));
  const esm = await run(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `
    import crypto from 'node:crypto';
    import { checkSignature, defineHooks, purposeKey, HOOK_EVENTS } from 'tuspass/hooks';
    const t = Math.floor(Date.now() / 1000);
    const v1 = crypto.createHmac('sha256', purposeKey('s3cret', 'completion-form')).update(t + '.a=1').digest('hex');
    const checked = checkSignature('s3cret', 'completion-form', Buffer.from('a=1'), 't=' + t + ',v1=' + v1);
    console.log(JSON.stringify([checked.ok, typeof defineHooks, HOOK_EVENTS.length]));`,
    ],
    { cwd: app },
  );
  assert.equal(esm.stdout.trim(), '[true,"function",8]', 'import from plain node (ESM)');
  const cjs = await run(
    process.execPath,
    ['-e', "const h = require('tuspass/hooks'); console.log(typeof h.checkSignature, typeof h.defineHooks)"],
    { cwd: app },
  );
  assert.equal(cjs.stdout.trim(), 'function function', 'require from plain node (CommonJS)');
  fs.writeFileSync(
    path.join(app, 'hooks.ts'),
    `import { defineHooks, type HookRequest } from 'tuspass/hooks';
export default defineHooks({
  'pre-create': (request: HookRequest) =>
    (request.Event.Upload.Size ?? 0) > 1024 ? { RejectUpload: true, HTTPResponse: { StatusCode: 413 } } : {},
});
`,
  );
  fs.writeFileSync(
    path.join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'es2022',
        noEmit: true,
        skipLibCheck: false,
        types: ['node'],
        typeRoots: [path.join(ROOT, 'node_modules', '@types')],
      },
      files: ['hooks.ts'],
    }),
  );
  await run(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app], {
    cwd: app,
  }).catch((e: { stdout?: string }) => assert.fail(`tsc: ${e.stdout}`));
  const hook = await run(bin, ['hooks', 'test', 'pre-create', '--hooks-module', './hooks.ts', '--size', '2048'], {
    cwd: app,
  });
  assert.match(hook.stdout, /"StatusCode": 413/, 'the TypeScript hook module importing tuspass/hooks ran');

  assert.deepEqual(snapshot(installed), before, 'nothing was written into the install directory at run time');
});
