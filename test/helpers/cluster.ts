// The deployment of docker-compose.scale.yml, for tests that break it: `tuspass upload-server`
// processes on one store and the test's own Redis (and PostgreSQL, if given), posting their forms to
// a completion service in the test's process; and uploads by tus-js-client under way through a balancer.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { startCompletionServer, type RunningCompletionServer } from '../../server/start/completion-server.ts';
import { configFor } from '../../server/config/config.ts';
import type { Balancer } from './balancer.ts';
import { startTuspassProcess, until, type Instance } from './instances.ts';
import { tusJsUpload, type TusJsOutcome } from './tus-js.ts';

export const SECRET = 'test-secret-0123456789';

export interface Cluster {
  storeDir: string;
  service: RunningCompletionServer;
  /** The environment every instance started with (DATA_DIR aside): to start one again. */
  env: Record<string, string>;
  dataDirs: string[];
  instances: Instance[];
}

/** `count` instances with a lease of 2 s; `env` adds or overrides settings. */
export async function startCluster(
  t: TestContext,
  count: number,
  engines: { redisUrl: string; databaseUrl?: string },
  env: Record<string, string> = {},
): Promise<Cluster> {
  // Its directories go once the processes writing into them are gone: after-hooks run in the order
  // they were added, so their removal is added after the instances' (tmpDir's would come first).
  const dirs: string[] = [];
  const dir = () => {
    const made = fs.mkdtempSync(path.join(os.tmpdir(), 'tuspass-'));
    dirs.push(made);
    return made;
  };
  const removeDirs = () => {
    for (const made of dirs) fs.rmSync(made, { recursive: true, force: true });
  };
  try {
    const storeDir = dir();
    const service = await startCompletionServer(
      configFor({
        dataDir: dir(),
        storeDir,
        completionPort: 0,
        completionSecret: SECRET,
        databaseUrl: engines.databaseUrl,
      }),
      { log: () => {} },
    );
    t.after(() => service.close());
    const common = {
      STORE_DIR: storeDir,
      REDIS_URL: engines.redisUrl,
      ...(engines.databaseUrl && { DATABASE_URL: engines.databaseUrl }),
      REDIS_LOCK_TTL: '2s',
      COMPLETION_URL: `${service.url}/complete/`,
      COMPLETION_SECRET: SECRET,
      MIN_FREE_SPACE: '0',
      ...env,
    };
    const dataDirs = Array.from({ length: count }, () => dir());
    const instances = await Promise.all(
      dataDirs.map((dataDir) => startTuspassProcess(t, 'upload-server', { ...common, DATA_DIR: dataDir })),
    );
    t.after(removeDirs);
    return { storeDir, service, env: common, dataDirs, instances };
  } catch (e) {
    t.after(removeDirs);
    throw e;
  }
}

/**
 * Starts one tus-js-client upload per file through the balancer; resolves once every one is created
 * and has `onDisk` bytes in the store (mid-upload), with the uploads' outcomes still to come.
 */
export async function uploadsUnderWay(
  lb: Balancer,
  storeDir: string,
  files: ReadonlyArray<{ name: string; bytes: Buffer }>,
  onDisk: number,
): Promise<Array<Promise<TusJsOutcome>>> {
  const uploads = files.map((f) => tusJsUpload(`${lb.url}/files/`, f.bytes, f.name));
  // Awaited by the test; a failure before that is not an unhandled rejection.
  uploads.forEach((u) => u.catch(() => {}));
  const sizeOf = (location: string) =>
    fs.statSync(path.join(storeDir, location.split('/').pop()!), { throwIfNoEntry: false })?.size ?? 0;
  const created = await until(
    () => lb.exchanges.filter((x) => x.method === 'POST' && x.status === 201),
    (c) => c.length === files.length && c.every((x) => sizeOf(x.location!) >= onDisk),
  );
  if (created.length !== files.length) throw new Error(`${created.length} of ${files.length} uploads created`);
  return uploads;
}
