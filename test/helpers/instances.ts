// tuspass server processes for tests that kill, stop or restart them: `node bin/tuspass.js <command>`
// (the bundle: `npm run build` first), each on a free port, its output kept, killed when the test ends.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { freePort } from './ports.ts';

const BIN = path.resolve('bin/tuspass.js');

export interface Instance {
  url: string;
  port: number;
  child: ChildProcess;
  /** Everything it wrote so far (stdout and stderr). */
  output(): string;
  /** Resolves with its exit code, or the signal that ended it. */
  exited: Promise<number | NodeJS.Signals | null>;
}

/** Starts `tuspass <command>` with this environment (on top of the test's) and its port; does not wait for it. */
export async function spawnTuspass(
  t: TestContext,
  command: string,
  env: Record<string, string>,
  port?: number,
): Promise<Instance> {
  const own = port ?? (await freePort());
  const flag = command === 'completion-server' ? '--completion-port' : '--port';
  const child = spawn(process.execPath, [BIN, command, flag, String(own), '--host', '127.0.0.1'], {
    env: { ...process.env, LOG_FORMAT: 'text', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (out += d));
  const exited = new Promise<number | NodeJS.Signals | null>((r) =>
    child.on('exit', (code, signal) => r(signal ?? code)),
  );
  t.after(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    // A process stopped with SIGSTOP takes SIGKILL all the same.
    child.kill('SIGKILL');
    await exited;
  });
  return { url: `http://127.0.0.1:${own}`, port: own, child, output: () => out, exited };
}

/** Resolves once the instance answers /healthz; throws with its output if it exits first or takes past `tries` × 50
 * ms. */
export async function answering(instance: Instance, tries = 1200): Promise<Instance> {
  for (let i = 0; ; i++) {
    if (instance.child.exitCode !== null || instance.child.signalCode !== null)
      throw new Error(
        `the instance exited (${instance.child.exitCode ?? instance.child.signalCode}): ${instance.output()}`,
      );
    const ok = await fetch(`${instance.url}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return instance;
    if (i >= tries) throw new Error(`the instance did not answer: ${instance.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts `tuspass <command>` and waits until it answers. */
export async function startTuspassProcess(
  t: TestContext,
  command: string,
  env: Record<string, string>,
  port?: number,
): Promise<Instance> {
  return answering(await spawnTuspass(t, command, env, port));
}

/** Polls `what` until `ok` holds (every 50 ms, up to `timeoutMs`); returns the last value. */
export async function until<T>(what: () => Promise<T> | T, ok: (v: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await what();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs `tuspass <args>` to its end (an admin command): its exit status and output. */
export function runTuspass(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c) => (stdout += c));
    child.stderr!.on('data', (c) => (stderr += c));
    child.once('exit', (status) => resolve({ status, stdout, stderr }));
  });
}
