// Starts tuspass (upload server + in-process completion service) on 127.0.0.1:0 for one test,
// with a fresh data directory; stopped when the test ends.
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { configFor, type Config } from '../../server/config/config.ts';
import { startTuspass, type RunningTuspass, type StartOptions } from '../../server/start/start.ts';
import { tmpDir } from './tmp.ts';

export interface TestServer extends RunningTuspass {
  config: Config;
  /** The tus endpoint, `${url}/files/`. */
  endpoint: string;
  /** Log lines the server wrote. */
  logs: string[];
}

export async function startTestServer(
  t: TestContext,
  overrides: Partial<Config> = {},
  options: StartOptions = {},
): Promise<TestServer> {
  const dataDir = overrides.dataDir ?? tmpDir(t);
  const config = configFor({
    port: 0,
    completionSecret: 'test-secret-0123456789',
    retryMinMs: 100,
    retryMaxMs: 1000,
    ...overrides,
    dataDir,
  });
  const logs: string[] = [];
  const running = await startTuspass(config, { log: (line) => logs.push(line), ...options });
  const uncaught = watchUncaught();
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await running.close();
  };
  t.after(async () => {
    await close();
    // Callbacks the close left queued run before the check.
    await new Promise((resolve) => setImmediate(resolve));
    uncaught.check();
  });
  return { ...running, close, config, endpoint: `${running.url}/files/`, logs };
}

/** The catalog's records once at least `count` are there (polled: completions may run in the background). */
export async function recordsWhenPresent(
  baseUrl: string,
  count = 1,
  timeoutMs = 5000,
): Promise<Array<Record<string, unknown>>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const list = (await (await fetch(`${baseUrl}/api/uploads`)).json()) as Array<Record<string, unknown>>;
    if (list.length >= count || Date.now() > until) return list;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Records the exceptions that reached process level while a server ran in this process; check()
 * fails the test if there was one. node's test runner catches them (the process would otherwise
 * have died), so a request that crashes the server would show only as some test's odd failure.
 */
export function watchUncaught(): { check(): void } {
  const seen: unknown[] = [];
  const monitor = (e: unknown) => seen.push(e);
  process.on('uncaughtExceptionMonitor', monitor);
  let checked = false;
  const check = () => {
    if (checked) return;
    checked = true;
    process.off('uncaughtExceptionMonitor', monitor);
    assert.deepEqual(
      seen.map((e) => (e instanceof Error ? e.stack : String(e))),
      [],
      'an exception reached process level while the server ran (a tuspass process would have exited)',
    );
  };
  return { check };
}
