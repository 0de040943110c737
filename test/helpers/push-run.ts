// Runs `node bin/tuspass.js push ...` as a real process (stdout/stderr are pipes, not a TTY),
// with its own fingerprint file so tests never touch the user's ~/.config/tuspass.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.join(ROOT, 'bin', 'tuspass.js');

export interface PushRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface PushProcess {
  child: ChildProcess;
  /** Output so far (grows while the process runs). */
  output: { stdout: string; stderr: string };
  done: Promise<PushRun>;
}

export function spawnPush(args: string[], fingerprintFile: string, env: NodeJS.ProcessEnv = {}): PushProcess {
  const child = spawn(process.execPath, [BIN, 'push', ...args], {
    cwd: ROOT,
    env: { ...process.env, TUSPASS_FINGERPRINTS: fingerprintFile, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = { stdout: '', stderr: '' };
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    output.stdout += d;
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    output.stderr += d;
  });
  const done = new Promise<PushRun>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, ...output }));
  });
  return { child, output, done };
}

export function runPush(args: string[], fingerprintFile: string, env: NodeJS.ProcessEnv = {}): Promise<PushRun> {
  return spawnPush(args, fingerprintFile, env).done;
}
