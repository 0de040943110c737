// Engines of a test's own, for tests that stop and start them: a redis-server on a free port and a
// PostgreSQL cluster made by initdb in a temporary directory (run as user postgres), never the
// machine's shared ones. Each can be stopped the hard way (SIGKILL, `pg_ctl stop -m immediate`) and
// started again on the same port; all is stopped and removed when the test ends.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { freePort } from './ports.ts';

const run = promisify(execFile);

/** Resolves once something accepts connections on the port (or throws after `tries` × 50 ms). */
export async function listening(port: number, tries = 200): Promise<void> {
  for (let i = 0; ; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), r(true))).once('error', () => r(false));
    });
    if (ok) return;
    if (i >= tries) throw new Error(`nothing listens on port ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface OwnEngine {
  url: string;
  port: number;
  /** Stops it the hard way: no goodbye to its clients. */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty for Redis, with its data for PostgreSQL. */
  start(): Promise<void>;
}

/** A redis-server of the test's own (no persistence: a restart comes back empty, as after a crash). */
export async function ownRedis(
  t: TestContext,
  options: { start?: boolean; password?: string } = {},
): Promise<OwnEngine> {
  const port = await freePort();
  let proc: ChildProcess | undefined;
  const stop = async () => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGKILL');
    await exited;
  };
  const start = async () => {
    const args = [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      ...(options.password ? ['--requirepass', options.password] : []),
    ];
    proc = spawn('redis-server', args, { stdio: 'ignore' });
    await listening(port);
  };
  t.after(stop);
  if (options.start ?? true) await start();
  return { url: `redis://127.0.0.1:${port}`, port, stop, start };
}

/** The newest PostgreSQL installed (Debian: /usr/lib/postgresql/<version>/bin). */
function pgBin(): string {
  const versions = fs
    .readdirSync('/usr/lib/postgresql')
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  if (!versions.length) throw new Error('no PostgreSQL under /usr/lib/postgresql');
  return `/usr/lib/postgresql/${versions[0]}/bin`;
}

/** Runs a PostgreSQL program as user postgres (the cluster's owner: PostgreSQL refuses to run as root). */
const asPostgres = (program: string, args: string[]) =>
  run('runuser', ['-u', 'postgres', '--', path.join(pgBin(), program), ...args]);

/**
 * A PostgreSQL cluster of the test's own, trust authentication for user postgres on 127.0.0.1;
 * `url` names its database `postgres`. fsync off: its data need not outlive the test.
 */
export async function ownPostgres(t: TestContext, options: { start?: boolean } = {}): Promise<OwnEngine> {
  const port = await freePort();
  // Its own directory, removed by its own after-hook once the cluster is stopped (after-hooks run in
  // the order they were added: a tmpDir made first would go while PostgreSQL still runs in it).
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tuspass-pg-'));
  const { stdout } = await run('id', ['-u', 'postgres']);
  const uid = Number(stdout.trim());
  fs.chownSync(dir, uid, uid);
  const data = path.join(dir, 'data');
  await asPostgres('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync']);
  let running = false;
  const start = async () => {
    const settings = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off`;
    await asPostgres('pg_ctl', ['-D', data, '-o', settings, '-l', path.join(dir, 'log'), '-w', '-t', '60', 'start']);
    running = true;
  };
  const stop = async () => {
    if (!running) return;
    running = false;
    await asPostgres('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
  };
  t.after(async () => {
    await stop().catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  });
  if (options.start ?? true) await start();
  return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, port, stop, start };
}
