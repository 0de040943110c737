// What the store's base class (server/backends/store/file-store.ts) relies on in @tus/file-store, and
// where @tus/file-store and @tus/server may be imported: each checked against the installed versions,
// so an upgrade that changes one of them fails here, named, before it fails somewhere far from the
// cause. (@tus/server is on no request path: tuspass answers every tus request itself; the bench's
// reference server is what still runs it.)
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';
import { FileStore } from '@tus/file-store';
import { DIRECTORY_STEP, EngineFileStore, STORE_BASE_VERSIONS } from '../server/backends/store/file-store.ts';
import { tmpDir } from './helpers/tmp.ts';

const ROOT = path.resolve(import.meta.dirname, '..');

test('FileStore: its constructor calls the private directory step the base class replaces, as a method of the \
instance', (t) => {
  const proto = FileStore.prototype as unknown as Record<string, unknown>;
  assert.equal(typeof proto[DIRECTORY_STEP], 'function', `FileStore.prototype.${DIRECTORY_STEP}`);
  const seen: string[] = [];
  class Spy extends FileStore {}
  Object.defineProperty(Spy.prototype, DIRECTORY_STEP, {
    value(this: { directory: string }) {
      seen.push(this.directory);
    },
  });
  const dir = path.join(tmpDir(t), 'never-made');
  new Spy({ directory: dir });
  assert.deepEqual(seen, [dir], 'called once, with the directory set');
  assert.equal(fs.existsSync(dir), false, 'the constructor makes the directory through that step only');
});

test("FileStore: with tuspass's base class, a directory that cannot be made fails in the constructor, not later in a \
callback", (t) => {
  const file = path.join(tmpDir(t), 'a-file');
  fs.writeFileSync(file, '');
  class Store extends EngineFileStore {}
  assert.throws(() => new Store({ directory: path.join(file, 'store') }), /ENOTDIR|EEXIST/);
  const made = path.join(tmpDir(t), 'made');
  new Store({ directory: made });
  assert.ok(fs.statSync(made).isDirectory(), 'made before the constructor returns');
});

test('versions: package.json asks for the ranges the base class was checked against, and the installed packages are \
in them', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
  };
  for (const [name, range] of Object.entries(STORE_BASE_VERSIONS)) {
    assert.equal(pkg.dependencies[name], range, `${name} in package.json`);
    const installed = (
      JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }
    ).version;
    assert.ok(inCaretRange(installed, range), `${name} ${installed} within ${range}`);
  }
});

/** The one place in the server that may import @tus/file-store: the store's base class, checked above. */
const BASE = path.join('server', 'backends', 'store', 'file-store.ts');

test('no side channel: nothing in the server imports @tus/server, only the base class imports @tus/file-store', () => {
  const outside: string[] = [];
  const visit = (dir: string) => {
    for (const entry of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const rel = path.join(dir, entry.name);
      if (entry.isDirectory()) visit(rel);
      else if (entry.name.endsWith('.ts')) {
        const { importedFiles } = ts.preProcessFile(fs.readFileSync(path.join(ROOT, rel), 'utf8'), true, true);
        for (const { fileName } of importedFiles) {
          if (/^@tus\/server(\/|$)/.test(fileName)) outside.push(`${rel} -> ${fileName}`);
          if (/^@tus\/file-store(\/|$)/.test(fileName) && rel !== BASE) outside.push(`${rel} -> ${fileName}`);
        }
      }
    }
  };
  for (const dir of ['server', 'hooks', 'core', 'cli']) visit(dir);
  assert.deepEqual(outside, []);
});

/** Whether `version` is in a caret range (`^x.y.z`): same major (same minor below 1.0), not lower. */
function inCaretRange(version: string, range: string): boolean {
  const want = /^\^(\d+)\.(\d+)\.(\d+)$/.exec(range);
  const have = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  assert.ok(want && have, `${range} / ${version}`);
  const [w, h] = [want.slice(1).map(Number), have.slice(1).map(Number)];
  if (h[0] !== w[0] || (w[0] === 0 && h[1] !== w[1])) return false;
  for (let i = 0; i < 3; i++) if (h[i] !== w[i]) return h[i]! > w[i]!;
  return true;
}
