// Docs that match the code, where a check is cheap: every `tuspass <command>` the
// README and docs/ name exists, every command exists in the README, every `tuspass push` flag is in
// docs/clients.md's table and back, the page's element ids the docs and tests rely on are in the
// page, and the unit convention is the one units.ts states. (test/config.test.ts checks the README's
// configuration table against config.ts.)
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { tmpDir } from './helpers/tmp.ts';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { USAGE as PUSH_USAGE } from '../client/cli/push-args.ts';
import { formatBytes, UNIT_CONVENTION } from '../client/shared/units.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const read = (file: string) => fs.readFileSync(path.join(ROOT, file), 'utf8');
const DOCS = [
  'README.md',
  ...fs
    .readdirSync(path.join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

async function helpCommands(): Promise<Set<string>> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'cli', 'main.ts'), '--help'],
    { cwd: ROOT },
  );
  const section = stdout.slice(stdout.indexOf('commands:'), stdout.indexOf('\noptions'));
  return new Set([...section.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1]!));
}

test('docs: every `tuspass <command>` named in README.md and \
docs/ exists, and every command is in the README', async () => {
  const commands = await helpCommands();
  assert.ok(
    commands.has('start') && commands.has('push') && commands.has('completion-server'),
    `parsed the help: ${[...commands].join(' ')}`,
  );
  for (const file of DOCS) {
    const text = read(file);
    // Inline code, and command lines in fenced blocks (the odd pieces between ``` fences).
    const blocks = text
      .split('```')
      .filter((_, i) => i % 2 === 1)
      .join('\n');
    // `tuspass completion-form v2` and the like are the signature keys' HKDF labels, not commands.
    const named = [
      ...text.matchAll(/`(?:\$ )?(?:npx )?tuspass ([a-z][a-z-]*)( v\d)?/g),
      ...blocks.matchAll(/^(?:\$ )?(?:npx )?tuspass ([a-z][a-z-]*)( v\d)?/gm),
    ]
      .filter((m) => !m[2])
      .map((m) => m[1]!);
    for (const name of named) {
      assert.ok(commands.has(name), `${file} names \`tuspass ${name}\`, which \`tuspass --help\` does not list`);
    }
  }
  const readme = read('README.md');
  for (const name of commands)
    assert.match(readme, new RegExp(`tuspass ${name}\\b`), `the README mentions tuspass ${name}`);
});

test('docs: the `tuspass push` options table in docs/clients.md matches `tuspass push --help`', () => {
  const helpFlags = new Set(
    [...PUSH_USAGE.matchAll(/^ {2}(?:-h, )?(--[a-z-]+)/gm)].map((m) => m[1]!).filter((f) => f !== '--help'),
  );
  const clients = read('docs/clients.md');
  const tableFlags = new Set([...clients.matchAll(/^\| `(--[a-z-]+)/gm)].map((m) => m[1]!));
  for (const flag of helpFlags) assert.ok(tableFlags.has(flag), `docs/clients.md's table lists ${flag}`);
  for (const flag of tableFlags)
    assert.ok(helpFlags.has(flag), `docs/clients.md lists ${flag}, which push --help does not`);
});

test('docs: the page elements the docs describe exist, and no doc says expiry counts from creation', () => {
  const page = read('client/web/index.html');
  for (const id of [
    'drop-zone',
    'limits',
    'waiting',
    'details-fold',
    'settings-fold',
    'field-name',
    'field-description',
    'setting-parallel',
    'setting-token',
    'total-progress',
    'clear-finished',
    'completed',
    'units',
  ]) {
    assert.match(page, new RegExp(`id="${id}"`), `the page has #${id}`);
  }
  for (const file of DOCS) {
    for (const line of read(file).split('\n')) {
      if (/expir/i.test(line) && /(counts|counted|measured) from (its |the )?creation/i.test(line))
        assert.fail(`${file}: "${line.trim()}"`);
    }
  }
});

// ---- the docs' commands, run as written ---------------------------------------------------------

/** Words that stand for something the reader fills in: not a command to run as written. */
const PLACEHOLDER =
  /\b(?:FILE|NAME|ID|EVENT|EVENTS|URL|DIR|PATH|T|H|P|BYTES|KEY|VALUE|SECONDS|SIZE|N)\b|\.\.\.|…|\[|\||\bv\d\b/;
/**
 * Commands that answer and end without a server to talk to (servers run until stopped; push needs
 * one and files), written out in full: `tuspass token` alone names the command, it is no example.
 */
const RUNNABLE =
  /^(?:[A-Z_]+=\S+ )*(?:npx )?tuspass (?:token --|hooks test [a-z]|doctor|queue list|uploads list|--help|push --help)/;

interface DocCommand {
  file: string;
  command: string;
  /** The paragraph (or table row, or code block) the command sits in: what a reader sees beside it. */
  context: string;
}

function docCommands(): DocCommand[] {
  const found: DocCommand[] = [];
  for (const file of [...DOCS, 'client/cli/README.md']) {
    const text = read(file);
    // Paragraphs: runs of lines between blank lines (a fenced block is one run unless it has blank lines).
    for (const context of text.split(/\n\s*\n/)) {
      const inline = [...context.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!);
      const lines = context.includes('```')
        ? context.split('\n').map((l) => l.replace(/\s+#.*$/, '').replace(/^\$ /, ''))
        : [];
      for (const command of [...inline, ...lines]) {
        if (RUNNABLE.test(command) && !PLACEHOLDER.test(command))
          found.push({ file, command: command.trim(), context });
      }
    }
  }
  return found;
}

test('docs: each command of the docs that runs without a server runs as written — or says clearly what is missing, as \
the text beside it does', { timeout: 300_000 }, async (t) => {
  const { SETTINGS } = await import('../server/config/config.ts');
  const commands = docCommands();
  const named = commands.map((c) => c.command);
  for (const wanted of [
    'tuspass token --sub alice --scope "upload read"',
    'tuspass hooks test pre-create --hooks-dir ./hooks.d --size 5000000 --meta filename=a.pdf',
    'tuspass doctor',
  ]) {
    assert.ok(
      named.some((c) => c.endsWith(wanted)),
      `found ${wanted} among ${JSON.stringify(named)}`,
    );
  }
  // `tuspass` as an installed package puts it on PATH; a person's shell, in a directory of their own.
  const bin = tmpDir(t);
  fs.writeFileSync(
    path.join(bin, 'tuspass'),
    `#!/bin/sh\nexec "${process.execPath}" "${path.join(ROOT, 'bin', 'tuspass.js')}" "$@"\n`,
    { mode: 0o755 },
  );
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !/^(?:AUTH_|TUSPASS_|COMPLETION_|HOOKS_|DATA_DIR|STORE_DIR|PORT)/.test(k),
    ),
  );
  for (const { file, command, context } of commands) {
    const cwd = tmpDir(t);
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(
        '/bin/sh',
        ['-c', command],
        {
          cwd,
          env: { ...env, PATH: `${bin}:${env.PATH}`, HOME: cwd, LOG_FORMAT: 'text', PORT: '0', COMPLETION_PORT: '0' },
          timeout: 60_000,
        },
        (e, stdout, stderr) => resolve({ code: e ? ((e as { code?: number }).code ?? null) : 0, stdout, stderr }),
      );
    });
    const what = `${file}: \`${command}\` exited ${r.code}\n${r.stderr}${r.stdout}`;
    assert.doesNotMatch(r.stderr + r.stdout, /\n\s+at .+:\d+:\d+/, `${what}: a stack trace`);
    if (r.code === 0) continue;
    // Not a dead end: a refused configuration (78) names what to set, and the text beside the
    // example names it too (or the command sets it with its own flag).
    assert.equal(r.code, 78, what);
    const settings = SETTINGS.filter((s) => r.stderr.includes(s.env) || r.stderr.includes(s.flag));
    assert.ok(settings.length > 0, `${what}: names no setting`);
    // (A message may offer alternatives, "AUTH_JWT_SECRET (or AUTH_JWT_SECRET_FILE)": one of them said is enough.)
    assert.ok(
      settings.some((s) => context.includes(s.env) || command.includes(s.flag)),
      `${what}: the text beside the example does not say ${settings.map((s) => s.env).join(' or ')} is needed`,
    );
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
