// Starts and stops the server children (server-child.ts) and asks them for their memory.
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { ChildMessage, Side } from './server-child.ts';

export type { Side };
const CHILD = fileURLToPath(new URL('./server-child.ts', import.meta.url));
const ROOT = path.dirname(path.dirname(CHILD));

/**
 * The server children run as a bundle in plain node, as `tuspass start` does (bin/bundle.js), not
 * through tsx: tsx's loader thread adds some 35 MB to every process, the reference's as much as
 * tuspass's, and the memory figures are about the servers.
 */
let childBundle: Promise<string> | undefined;
function bundledChild(): Promise<string> {
  const outfile = path.join(ROOT, 'dist', 'bench-server-child.mjs');
  childBundle ??= build({
    entryPoints: [CHILD],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'warning',
  }).then(() => outfile);
  return childBundle;
}

export interface ServerProcess {
  side: Side;
  url: string;
  pid: number;
  dataDir: string;
  storeDir: string;
  /** Current and peak (VmHWM) resident set of the server process, in bytes. */
  memory(): Promise<{ rss: number; peakRss: number }>;
  /** CPU time the server process (all its threads) has used so far, in ms (/proc/<pid>/stat). */
  cpuMs(): number;
  /** Closes the server and lets the process exit normally (profiles get written). */
  stop(): Promise<void>;
  /** SIGKILL: a crash, for the resume scenario. */
  kill(): Promise<void>;
}

export interface StartOptions {
  /** Where `node --cpu-prof` writes this child's profile; undefined: no profiling. */
  profileDir?: string;
}

function nextMessage<T extends ChildMessage['type']>(
  child: ChildProcess,
  type: T,
  what: string,
): Promise<Extract<ChildMessage, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: ChildMessage) => {
      if (m.type !== type) return;
      cleanup();
      resolve(m as Extract<ChildMessage, { type: T }>);
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`${what}: server process exited (${code}) before answering ${type}`));
    };
    const cleanup = () => {
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

const exited = (child: ChildProcess) =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise<void>((resolve) => child.once('exit', () => resolve()));

let profiled = 0;

export async function startServer(side: Side, dataDir: string, options: StartOptions = {}): Promise<ServerProcess> {
  const execArgv: string[] = [];
  if (options.profileDir) {
    // One directory per server process, named after its scenario. Node's default file names are kept:
    // the hashing thread writes a profile of its own, and a fixed name would let the two overwrite
    // each other (the main thread's is the one with thread id 0).
    const dir = path.join(options.profileDir, `${path.basename(dataDir)}-${++profiled}`);
    fs.mkdirSync(dir, { recursive: true });
    execArgv.push('--cpu-prof', `--cpu-prof-dir=${dir}`);
  }
  // The server's log goes to a file beside its data directory, as a deployment's would (a terminal
  // or a discarded sink would price logging wrongly); its last lines are printed if it fails to start.
  const logFile = `${dataDir}.log`;
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const logFd = fs.openSync(logFile, 'a');
  const child = fork(await bundledChild(), [side, dataDir], {
    cwd: ROOT,
    execArgv,
    stdio: ['ignore', 'inherit', logFd, 'ipc'],
  });
  fs.closeSync(logFd);
  const ready = await nextMessage(child, 'ready', `${side} server`).catch((e: Error) => {
    throw new Error(`${e.message}\n${fs.readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n')}`);
  });
  return {
    side,
    url: ready.url,
    pid: child.pid!,
    cpuMs: () => processCpuMs(child.pid!),
    dataDir,
    storeDir: ready.storeDir,
    async memory() {
      const answer = nextMessage(child, 'memory', `${side} server`);
      child.send({ type: 'memory' });
      const { rss, peakRss } = await answer;
      return { rss, peakRss };
    },
    async stop() {
      const done = exited(child);
      if (child.connected) child.send({ type: 'stop' });
      await done;
    },
    async kill() {
      const done = exited(child);
      child.kill('SIGKILL');
      await done;
    },
  };
}

/** Deletes an upload's file and everything beside it (.json info, .digest state), so the disk does not fill up between
 * rounds. */
export function removeUpload(storeDir: string, id: string): void {
  for (const name of fs.readdirSync(storeDir))
    if (name.startsWith(id)) fs.rmSync(path.join(storeDir, name), { force: true });
}

/** Clock ticks per second of /proc's times (USER_HZ): 100 on Linux unless the kernel says otherwise. */
let ticksPerSecond: number | undefined;

/**
 * utime + stime of a process, all threads included, in ms. Server CPU time per upload is steadier
 * than uploads per second on a shared 2-core machine: it does not count the time a server waited
 * for the client or for a core.
 */
export function processCpuMs(pid: number): number {
  ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces, in parentheses): utime and stime are 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond;
}
