// A tuspass child process that crashed fails its test: node's report of an uncaught exception on
// its stderr, or an exit nobody asked for (no signal sent through proc.kill). A test waiting on the
// child's answers would otherwise see only a refused connection, or nothing, and blame something else.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import type { TestContext } from 'node:test';

/** What node writes when an exception reaches process level ("Node.js v20.…" closes the report). */
const CRASH = /^Node\.js v\d+\.\d+\.\d+$|\bUncaught\b|Unhandled 'error' event/m;

export function watchChild(t: TestContext, proc: ChildProcess): void {
  let stderr = '';
  proc.stderr?.on('data', (c: Buffer | string) => (stderr += c));
  let asked = false;
  const kill = proc.kill.bind(proc);
  proc.kill = (signal?: NodeJS.Signals | number) => {
    asked = true;
    return kill(signal);
  };
  let unexpected: string | undefined;
  proc.once('exit', (code, signal) => {
    if (!asked) unexpected = `exited by itself (code ${code}, signal ${signal})`;
  });
  t.after(() => {
    assert.doesNotMatch(stderr, CRASH, `the tuspass child process crashed:\n${stderr.slice(-4000)}`);
    assert.equal(unexpected, undefined, `the tuspass child process ${unexpected}:\n${stderr.slice(-4000)}`);
  });
}
