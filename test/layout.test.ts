// The direction of imports (docs/architecture.md, "Layout"): core ← hooks ← server ← cli, the clients
// apart on core. Every import counts — static, dynamic, `import type`, `export … from` — because a
// type import is still a dependency a reader must follow. TypeScript's own pre-parser finds them.
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

const layerOf = (file: string): Layer | undefined => LAYERS.find((l) => file === l || file.startsWith(`${l}${path.sep}`));

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
  const missing = [...GRAPH].flatMap(([file, targets]) => targets.filter((t) => !fs.existsSync(path.join(ROOT, t))).map((t) => `${file} -> ${t}`));
  assert.deepEqual(missing, []);
});

test('layout: no import cycle among the source files (type imports included)', () => {
  // Tarjan's strongly connected components: any component of more than one file is a cycle.
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
    for (const w of GRAPH.get(v) ?? []) {
      if (!GRAPH.has(w)) continue;
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
      if (component.length > 1 || (GRAPH.get(v) ?? []).includes(v)) cycles.push(component.sort());
    }
  };
  for (const file of GRAPH.keys()) if (!indexOf.has(file)) visit(file);
  assert.deepEqual(cycles, [], `import cycles:\n${cycles.map((c) => c.join(' -> ')).join('\n')}`);
});

test('layout: the checks see the tree (a file of each layer, and the known import from server to hooks)', () => {
  for (const layer of LAYERS) assert.ok(FILES.some((f) => layerOf(f) === layer), `no source file found under ${layer}/`);
  // A check that found no edges would pass everything: the server's composition root imports the hook runner.
  assert.ok(GRAPH.get(path.join('server', 'start.ts'))?.includes(path.join('hooks', 'runner.ts')));
});
