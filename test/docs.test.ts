// Docs that match the code (issue 16 item 2), where a check is cheap: every `tuspass <command>` the
// README and docs/ name exists, every command exists in the README, every `tuspass push` flag is in
// docs/clients.md's table and back, the page's element ids the docs and tests rely on are in the
// page, and the unit convention is the one units.ts states. (test/config.test.ts checks the README's
// configuration table against config.ts.)
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { USAGE as PUSH_USAGE } from '../client/cli/push-args.ts';
import { formatBytes, UNIT_CONVENTION } from '../client/shared/units.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const read = (file: string) => fs.readFileSync(path.join(ROOT, file), 'utf8');
const DOCS = ['README.md', ...fs.readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

async function helpCommands(): Promise<Set<string>> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(ROOT, 'cli', 'main.ts'), '--help'], { cwd: ROOT });
  const section = stdout.slice(stdout.indexOf('commands:'), stdout.indexOf('\noptions'));
  return new Set([...section.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1]!));
}

test('docs: every `tuspass <command>` named in README.md and docs/ exists, and every command is in the README', async () => {
  const commands = await helpCommands();
  assert.ok(commands.has('start') && commands.has('push') && commands.has('completion-server'), `parsed the help: ${[...commands].join(' ')}`);
  for (const file of DOCS) {
    const text = read(file);
    // Inline code, and command lines in fenced blocks (the odd pieces between ``` fences).
    const blocks = text.split('```').filter((_, i) => i % 2 === 1).join('\n');
    // `tuspass completion-form v2` and the like are the signature keys' HKDF labels, not commands.
    const named = [...text.matchAll(/`(?:\$ )?(?:npx )?tuspass ([a-z][a-z-]*)( v\d)?/g), ...blocks.matchAll(/^(?:\$ )?(?:npx )?tuspass ([a-z][a-z-]*)( v\d)?/gm)]
      .filter((m) => !m[2])
      .map((m) => m[1]!);
    for (const name of named) {
      assert.ok(commands.has(name), `${file} names \`tuspass ${name}\`, which \`tuspass --help\` does not list`);
    }
  }
  const readme = read('README.md');
  for (const name of commands) assert.match(readme, new RegExp(`tuspass ${name}\\b`), `the README mentions tuspass ${name}`);
});

test('docs: the `tuspass push` options table in docs/clients.md matches `tuspass push --help`', () => {
  const helpFlags = new Set([...PUSH_USAGE.matchAll(/^ {2}(?:-h, )?(--[a-z-]+)/gm)].map((m) => m[1]!).filter((f) => f !== '--help'));
  const clients = read('docs/clients.md');
  const tableFlags = new Set([...clients.matchAll(/^\| `(--[a-z-]+)/gm)].map((m) => m[1]!));
  for (const flag of helpFlags) assert.ok(tableFlags.has(flag), `docs/clients.md's table lists ${flag}`);
  for (const flag of tableFlags) assert.ok(helpFlags.has(flag), `docs/clients.md lists ${flag}, which push --help does not`);
});

test('docs: the page elements the docs describe exist, and no doc says expiry counts from creation', () => {
  const page = read('client/web/index.html');
  for (const id of ['drop-zone', 'limits', 'waiting', 'details-fold', 'settings-fold', 'field-name', 'field-description', 'setting-parallel', 'setting-token', 'total-progress', 'clear-finished', 'completed', 'units']) {
    assert.match(page, new RegExp(`id="${id}"`), `the page has #${id}`);
  }
  for (const file of DOCS) {
    for (const line of read(file).split('\n')) {
      if (/expir/i.test(line) && /(counts|counted|measured) from (its |the )?creation/i.test(line)) assert.fail(`${file}: "${line.trim()}"`);
    }
  }
});

test('units: one decimal convention, stated where sizes are shown', () => {
  assert.equal(formatBytes(1024 ** 3), '1.1 GB', 'a GiB shows as 1.1 GB, as the convention says');
  assert.equal(formatBytes(999_999), '1.0 MB', 'never "1000 kB": a value rounding to 1000 shows in the next unit');
  assert.equal(formatBytes(999_960_000), '1.0 GB');
  assert.equal(formatBytes(1_000_000), '1.0 MB');
  assert.match(UNIT_CONVENTION, /1 kB = 1000 bytes/);
  assert.ok(PUSH_USAGE.includes(UNIT_CONVENTION), 'push --help states it');
  assert.ok(read('client/web/src/main.ts').includes('UNIT_CONVENTION'), 'the page states it');
  assert.ok(read('docs/clients.md').includes('1 kB = 1000 bytes'), 'the docs state it');
});
