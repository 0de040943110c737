// What a user starts — `npm start` in a clone, `npx tuspass start` — stopped the way a process
// manager or a plain `kill` stops it: one SIGTERM to that process. The server must stop with it: its
// port closed and no process of it left behind (npm hands the signal to the shell it runs the command
// in, and a shell that dies without passing it on would leave the server orphaned and listening).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tmpDir } from './helpers/tmp.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Not part of a clone a user has (or rebuilt by npm start when missing: dist/ comes with the copy). */
const LEFT_OUT = new Set(['node_modules', '.git', 'data', 'test-output']);

/** A copy of the clone, built as it is here (timestamps kept, so prestart finds nothing stale). */
function copyOfClone(t: TestContext): string {
  const copy = path.join(tmpDir(t, 'tuspass-clone-'), 'tuspass');
  fs.cpSync(ROOT, copy, {
    recursive: true,
    preserveTimestamps: true,
    filter: (src) => !LEFT_OUT.has(path.basename(src)) || path.dirname(src) !== ROOT,
  });
  fs.symlinkSync(fs.realpathSync(path.join(ROOT, 'node_modules')), path.join(copy, 'node_modules'));
  return copy;
}

/** The processes below `pid` now (from /proc): npm's shell, the server. */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    // "pid (comm) state ppid …": comm may hold spaces and parentheses, so read after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length) for (const child of children.get(queue.shift()!) ?? []) found.push(child), queue.push(child);
  return found;
}

const alive = (pid: number) =>
  fs.existsSync(`/proc/${pid}`) && !/^\S+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));

/** The processes of `pids` still running once they had a generous while to stop (an orphan cannot be waited on:
 * polled). */
async function stillRunning(pids: number[], withinMs = 30_000): Promise<number[]> {
  const until = Date.now() + withinMs;
  for (;;) {
    const running = pids.filter((p) => {
      try {
        return alive(p);
      } catch {
        return false;
      }
    });
    if (running.length === 0 || Date.now() > until) return running;
    await new Promise((r) => setTimeout(r, 100));
  }
}

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

/** The environment of a user's shell: none of the npm_* variables `npm test` gave this process. */
function userEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('npm_'))), ...extra };
}

async function startAndTerminate(
  t: TestContext,
  cwd: string,
  command: string,
  args: string[],
  env: Record<string, string>,
) {
  const child = spawn(command, args, {
    cwd,
    env: userEnv({ PORT: '0', LOG_FORMAT: 'text', ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  // After the exit and the end of its output: the server, if it stayed, would hold the pipes open.
  const closed = new Promise<void>((r) => child.once('close', () => r()));
  const port = await new Promise<number>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      out += chunk;
      const m = /tus uploads on http:\/\/127\.0\.0\.1:(\d+)\/files\//.exec(out);
      if (m) resolve(Number(m[1]));
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then(() => reject(new Error(`${command} ${args.join(' ')} exited before listening: ${out}`)));
  });
  const started = descendants(child.pid!);
  t.after(() => {
    for (const pid of started) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone already, as it should be.
      }
    }
  });
  assert.ok(started.length > 0, 'the server runs below npm');
  assert.equal(await connects(port), true, 'listening');

  child.kill('SIGTERM');
  await exited;
  assert.deepEqual(
    await stillRunning(started),
    [],
    `no process of ${command} ${args.join(' ')} is left running after its SIGTERM:\n${out}`,
  );
  assert.equal(await connects(port), false, 'the port is closed');
  await closed;
  return out;
}

test('SIGTERM to `npm start` in a clone stops the server: port closed, no process left', {
  timeout: 180_000,
}, async (t) => {
  const clone = copyOfClone(t);
  const out = await startAndTerminate(t, clone, 'npm', ['start'], { DATA_DIR: tmpDir(t) });
  assert.match(out, /SIGTERM, stopping/, 'a graceful stop (uploads in flight get SHUTDOWN_TIMEOUT)');
  assert.match(out, /tuspass start: stopped/);
});

test('SIGTERM to `npx tuspass start` stops the server: port closed, no process left', {
  timeout: 180_000,
}, async (t) => {
  const clone = copyOfClone(t);
  // npx links the clone into its own cache: a cache of this test's, and nothing fetched.
  const out = await startAndTerminate(t, clone, 'npx', ['--offline', '--yes', 'tuspass', 'start'], {
    DATA_DIR: tmpDir(t),
    npm_config_cache: tmpDir(t),
  });
  assert.match(out, /the npm process that ran it is gone, stopping/);
  assert.match(out, /tuspass start: stopped/);
});
