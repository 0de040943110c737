// Builds the server bundle, dist/tuspass.mjs, from cli/main.ts with esbuild; bin/tuspass.js runs it.
// Also the hashing thread's bundle, dist/hash-worker.cjs, which the server loads into its worker.
// Why a bundle and not tsx's loader at run time: the loader keeps a second thread with its own V8
// heap for the life of the process, about 35 MB of resident memory (an idle `tuspass start` is
// 41 MB lighter without it), and an upload server is judged by its memory under load. Tests and
// scripts still run the TypeScript through tsx; both compile with the same esbuild.
// Dependencies stay outside the bundle (`packages: 'external'`) and load from node_modules as usual.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
export const BUNDLE = path.join(ROOT, 'dist', 'tuspass.mjs');
// The hashing thread's code (server/hashing/hash-thread.ts reads it; same name there).
const HASH_WORKER = path.join(ROOT, 'dist', 'hash-worker.cjs');
// What hook authors import as `tuspass/hooks` (package.json "exports"): hooks/index.ts as plain
// JavaScript, so it loads in plain node. Its types are written at pack time (npm run build:types).
const HOOKS_API = path.join(ROOT, 'dist', 'hooks.js');
// Every directory the bundle draws from (cli/ dispatches; client/cli is loaded by `tuspass push`).
const SOURCES = ['cli', 'core', 'hooks', 'server', 'client'];

function newestSource(dir) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(file));
    else if (/\.[cm]?ts$/.test(entry.name)) newest = Math.max(newest, fs.statSync(file).mtimeMs);
  }
  return newest;
}

/**
 * An installed package (npm pack / npm install -g) ships the bundles built at pack time (prepack) and
 * no server sources: it never rebuilds, so nothing is written into the install directory at run time.
 */
export const INSTALLED = !fs.existsSync(path.join(ROOT, 'server'));

/** True when the bundle is missing or older than a source file (a checkout, an edit). */
export function bundleIsStale() {
  if (INSTALLED) return false;
  let built;
  try {
    built = fs.statSync(BUNDLE).mtimeMs;
  } catch {
    return true;
  }
  return SOURCES.some((dir) => newestSource(path.join(ROOT, dir)) > built);
}

export async function buildBundle() {
  const { build } = await import('esbuild');
  // The hashing thread's bundle takes its one package (hash-wasm) inside; the others load theirs
  // from node_modules. The server bundle comes last: its time is what bundleIsStale compares.
  const outputs = [
    { entry: path.join(ROOT, 'server', 'hashing', 'hash-worker.ts'), outfile: HASH_WORKER, format: 'cjs' },
    { entry: path.join(ROOT, 'hooks', 'index.ts'), outfile: HOOKS_API, format: 'esm', packages: 'external' },
    { entry: path.join(ROOT, 'cli', 'main.ts'), outfile: BUNDLE, format: 'esm', packages: 'external' },
  ];
  for (const { entry, outfile, format, packages } of outputs) {
    // Written beside and renamed, so two processes starting at once never run a half-written file.
    const temporary = `${outfile}.${process.pid}.tmp`;
    await build({
      entryPoints: [entry],
      outfile: temporary,
      bundle: true,
      platform: 'node',
      format,
      target: 'node20',
      packages,
      logLevel: 'warning',
    });
    fs.renameSync(temporary, outfile);
  }
  return BUNDLE;
}

export async function ensureBundle() {
  if (INSTALLED && !fs.existsSync(BUNDLE))
    throw new Error(
      `tuspass: this package has no ${path.relative(ROOT, BUNDLE)}; it was packed without \`npm run build\` (prepack)`,
    );
  if (bundleIsStale()) await buildBundle();
  return BUNDLE;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await buildBundle();
  console.log(`server built into ${path.relative(process.cwd(), BUNDLE) || BUNDLE}`);
}
