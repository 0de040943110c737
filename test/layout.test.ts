// The direction of imports (docs/architecture.md, "Layout"): core ← hooks ← server ← cli, the clients
// apart on core; inside server/, folders by floor (FLOORS below), and in every folder at every depth
// the imports between its entries (its files and folders) go one way only. Every import counts —
// static, dynamic, `import type`, `export … from` — because a type import is still a dependency a
// reader must follow. TypeScript's own pre-parser finds them.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';

const ROOT = path.resolve(import.meta.dirname, '..');
const LAYERS = ['core', 'hooks', 'server', 'client', 'cli'] as const;
type Layer = (typeof LAYERS)[number];

/** What each layer may import besides itself. */
const MAY_IMPORT: Record<Layer, readonly Layer[]> = {
  core: [],
  hooks: ['core'],
  server: ['hooks', 'core'],
  client: ['core'],
  cli: ['server', 'hooks', 'client', 'core'],
};

/**
 * The floors of a folder, top first: an entry imports only entries on floors below its own (never
 * one beside it), and every folder inside is on a floor, so a new folder is placed on purpose.
 * Files beside the folders (upload/app.ts composing the protocols) need no floor: the one-way rule
 * of every folder holds them. In server/ itself every file is in a folder.
 */
const FLOORS: Record<string, readonly (readonly string[])[]> = {
  server: [
    ['start', 'admin'], // the commands: processes composed and started; commands on the data at rest
    // the two services' routes: the upload server (a folder per protocol), the completion service
    ['upload', 'completion'],
    // what every protocol calls on an upload: access, hook moments, expiry, the completion form
    ['pipeline', 'complete-form'],
    ['backends'], // the store, locks, journal, catalog, PostgreSQL
    ['auth', 'hashing'], // who calls (bearer tokens, an upload's creator); the digests
    ['http'], // what every listener shares about a request and its connection
    ['ops', 'config'], // metrics and readiness; the settings, each read and checked once
  ],
  'server/upload': [['ietf'], ['nginx', 'tus']],
  'server/backends': [['store'], ['locker', 'journal', 'catalog'], ['pg']],
};
/** Folders that hold folders only. */
const NO_LOOSE_FILES = ['server'];

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'dist' && entry.name !== 'node_modules') out.push(...sourceFiles(rel));
    } else if (/\.[cm]?tsx?$/.test(entry.name) && !entry.name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

/** The repository files a source file imports (relative specifiers only: packages are not ours). */
function importsOf(file: string): string[] {
  const info = ts.preProcessFile(fs.readFileSync(path.join(ROOT, file), 'utf8'), true, true);
  return info.importedFiles
    .map((f) => f.fileName)
    .filter((spec) => spec.startsWith('.'))
    .map((spec) => path.normalize(path.join(path.dirname(file), spec)));
}

const layerOf = (file: string): Layer | undefined =>
  LAYERS.find((l) => file === l || file.startsWith(`${l}${path.sep}`));

const FILES = LAYERS.flatMap((l) => (fs.existsSync(path.join(ROOT, l)) ? sourceFiles(l) : []));
const GRAPH = new Map(FILES.map((f) => [f, importsOf(f)]));

test('layout: every layer imports only the layers below it (core ← hooks ← server ← cli; client on core)', () => {
  const wrong: string[] = [];
  for (const [file, targets] of GRAPH) {
    const from = layerOf(file)!;
    for (const target of targets) {
      const to = layerOf(target);
      if (to === from) continue;
      if (!to || !MAY_IMPORT[from].includes(to)) wrong.push(`${file} -> ${target}`);
    }
  }
  assert.deepEqual(wrong, [], `imports against the direction:\n${wrong.join('\n')}`);
});

test('layout: every relative import names a file that exists', () => {
  const missing = [...GRAPH].flatMap(([file, targets]) =>
    targets.filter((t) => !fs.existsSync(path.join(ROOT, t))).map((t) => `${file} -> ${t}`),
  );
  assert.deepEqual(missing, []);
});

/** Strongly connected components of more than one node (or a node importing itself): the cycles. */
function cyclesOf(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  // Tarjan's algorithm.
  let index = 0;
  const stack: string[] = [];
  const onStack = new Set<string>();
  const indexOf = new Map<string, number>();
  const low = new Map<string, number>();
  const cycles: string[][] = [];
  const visit = (v: string) => {
    indexOf.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!indexOf.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, indexOf.get(w)!));
    }
    if (low.get(v) === indexOf.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(component.sort());
    }
  };
  for (const node of graph.keys()) if (!indexOf.has(node)) visit(node);
  return cycles;
}

/** One file import seen from the folder where the two paths part: entry `from` imports entry `to`. */
interface EntryImport {
  folder: string;
  from: string;
  to: string;
  /** The file import that makes it. */
  via: string;
}

/**
 * Every import between two entries of one folder, at every depth (an import inside one entry is that entry's own
 * business).
 */
function entryImports(graph: ReadonlyMap<string, readonly string[]>): EntryImport[] {
  const out: EntryImport[] = [];
  for (const [file, targets] of graph) {
    for (const target of targets) {
      const a = file.split(path.sep);
      const b = target.split(path.sep);
      let i = 0;
      while (i < a.length - 1 && i < b.length - 1 && a[i] === b[i]) i++;
      if (a[i] === b[i]) continue;
      out.push({ folder: a.slice(0, i).join('/') || '.', from: a[i]!, to: b[i]!, via: `${file} -> ${target}` });
    }
  }
  return out;
}

/** The folders whose entries import each other both ways, each with the file imports that close the loop. */
function folderCycles(graph: ReadonlyMap<string, readonly string[]>): string[] {
  const byFolder = new Map<string, EntryImport[]>();
  for (const e of entryImports(graph)) byFolder.set(e.folder, [...(byFolder.get(e.folder) ?? []), e]);
  const found: string[] = [];
  for (const [folder, imports] of byFolder) {
    const entries = new Map<string, string[]>();
    for (const e of imports) {
      entries.set(e.from, [...(entries.get(e.from) ?? []), e.to]);
      if (!entries.has(e.to)) entries.set(e.to, []);
    }
    for (const cycle of cyclesOf(entries)) {
      const vias = imports.filter((e) => cycle.includes(e.from) && cycle.includes(e.to)).map((e) => `    ${e.via}`);
      found.push(`${folder}/: ${cycle.join(', ')} import each other\n${[...new Set(vias)].join('\n')}`);
    }
  }
  return found;
}

/** Imports against the declared floors, and folders on no floor. */
function floorViolations(
  graph: ReadonlyMap<string, readonly string[]>,
  floors: typeof FLOORS,
  folders: (dir: string) => string[],
  files: (dir: string) => string[],
): string[] {
  const wrong: string[] = [];
  for (const [dir, levels] of Object.entries(floors)) {
    const floorOf = new Map(levels.flatMap((names, level) => names.map((name) => [name, level] as const)));
    for (const name of folders(dir)) if (!floorOf.has(name)) wrong.push(`${dir}/${name}/ is on no floor of ${dir}/`);
    for (const name of floorOf.keys())
      if (!folders(dir).includes(name)) wrong.push(`${dir}/${name}/ is on a floor but is no folder`);
    if (NO_LOOSE_FILES.includes(dir))
      for (const name of files(dir)) wrong.push(`${dir}/${name} lies loose beside the floors`);
    for (const e of entryImports(graph).filter((x) => x.folder === dir)) {
      const from = floorOf.get(e.from);
      const to = floorOf.get(e.to);
      if (from !== undefined && to !== undefined && to <= from)
        wrong.push(`${dir}/${e.from} imports ${dir}/${e.to}, ${to === from ? 'beside it' : 'above it'}: ${e.via}`);
    }
  }
  return wrong;
}

const entriesOf = (dir: string, kind: 'folders' | 'files') =>
  fs
    .readdirSync(path.join(ROOT, dir), { withFileTypes: true })
    .filter((d) =>
      kind === 'folders'
        ? d.isDirectory() && d.name !== 'dist' && d.name !== 'node_modules'
        : d.isFile() && /\.[cm]?tsx?$/.test(d.name),
    )
    .map((d) => d.name);

test('layout: no import cycle among the source files (type imports included)', () => {
  const cycles = cyclesOf(GRAPH);
  assert.deepEqual(cycles, [], `import cycles:\n${cycles.map((c) => c.join(' -> ')).join('\n')}`);
});

test('layout: in every folder at every depth, the imports between its files and folders go one way only', () => {
  const cycles = folderCycles(GRAPH);
  assert.deepEqual(cycles, [], `folders importing each other:\n${cycles.join('\n')}`);
});

test('layout: server/ is built by floors, each folder importing only the floors below it', () => {
  const wrong = floorViolations(
    GRAPH,
    FLOORS,
    (d) => entriesOf(d, 'folders'),
    (d) => entriesOf(d, 'files'),
  );
  assert.deepEqual(wrong, [], `against the floors:\n${wrong.join('\n')}`);
});

test('layout: the folder and floor checks find a violation where there is one', () => {
  // A check that found nothing would pass everything: a small tree that breaks each rule once.
  const j = (...p: string[]) => path.join(...p);
  const graph = new Map<string, string[]>([
    [j('server', 'backends', 'store', 'a.ts'), [j('server', 'backends', 'locker', 'b.ts')]],
    [
      j('server', 'backends', 'locker', 'b.ts'),
      [j('server', 'backends', 'store', 'c.ts'), j('server', 'pipeline', 'd.ts')],
    ],
    [j('server', 'backends', 'store', 'c.ts'), []],
    [j('server', 'pipeline', 'd.ts'), [j('server', 'upload', 'e.ts'), j('server', 'complete-form', 'f.ts')]],
  ]);
  const cycles = folderCycles(graph);
  assert.equal(cycles.length, 1);
  assert.match(cycles[0]!, /^server\/backends\/: locker, store import each other/);
  const wrong = floorViolations(
    graph,
    { server: FLOORS.server! },
    () => ['backends', 'pipeline', 'upload', 'complete-form'],
    () => ['loose.ts'],
  );
  assert.ok(
    wrong.some((w) => w.startsWith('server/backends imports server/pipeline, above it')),
    wrong.join('\n'),
  );
  assert.ok(
    wrong.some((w) => w.startsWith('server/pipeline imports server/upload, above it')),
    wrong.join('\n'),
  );
  assert.ok(
    wrong.some((w) => w.startsWith('server/pipeline imports server/complete-form, beside it')),
    wrong.join('\n'),
  );
  assert.ok(wrong.includes('server/loose.ts lies loose beside the floors'), wrong.join('\n'));
  assert.ok(wrong.includes('server/start/ is on a floor but is no folder'), wrong.join('\n'));
});

test('layout: the checks see the tree (a file of each layer, and the known import from server to hooks)', () => {
  for (const layer of LAYERS)
    assert.ok(
      FILES.some((f) => layerOf(f) === layer),
      `no source file found under ${layer}/`,
    );
  // A check that found no edges would pass everything: the server's composition root imports the hook runner.
  assert.ok(GRAPH.get(path.join('server', 'start', 'start.ts'))?.includes(path.join('hooks', 'runner.ts')));
});
