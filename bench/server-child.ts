// A server in its own process, so the client and the server do not share one event loop and the
// RSS measured is the server's alone. Started by servers.ts with fork():
//   server-child.ts <tuspass|tuspass-noform|reference|raw|raw-plain> <dataDir>
// Messages in: {type:'memory'} → answers {type:'memory', rss, peakRss}; {type:'stop'} → closes and
// exits normally (so `--cpu-prof` gets to write its profile).
import fs from 'node:fs';
import path from 'node:path';
import { configFor, load } from '../server/config/config.ts';
import { startTuspass } from '../server/start/start.ts';
import type { HookHandler } from '../hooks/types.ts';
import { BENCH_JWT_SECRET } from './auth-token.ts';
import { startRawServer } from './raw-server.ts';
import { startReferenceServer, type BenchServer } from './reference-server.ts';

export type Side =
  | 'tuspass'
  | 'tuspass-s3'
  | 'tuspass-redis'
  | 'tuspass-lb'
  | 'tuspass-auth'
  | 'tuspass-access'
  | 'tuspass-quiet'
  | 'tuspass-noform'
  | 'reference'
  | 'raw'
  | 'raw-plain';
export type ChildMessage =
  | { type: 'ready'; url: string; storeDir: string }
  | { type: 'memory'; rss: number; peakRss: number };

/** Peak resident set (VmHWM) in bytes; the kernel keeps it, so no sampling can miss a spike. */
function peakRss(): number {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const kb = /^VmHWM:\s+(\d+)\s+kB/m.exec(status)?.[1];
  return kb ? Number(kb) * 1024 : process.resourceUsage().maxRSS * 1024;
}

async function start(side: Side, dataDir: string): Promise<BenchServer & { storeDir: string }> {
  const storeDir = path.join(dataDir, 'uploads');
  fs.mkdirSync(storeDir, { recursive: true });
  if (side === 'tuspass') {
    // md5 is always on; the completion service runs in-process and the complete-form hook posts to it.
    const running = await startTuspass(configFor({ dataDir, port: 0, logFormat: 'json' }), { completion: true });
    return { url: running.url, close: running.close, storeDir };
  }
  if (side === 'tuspass-redis') {
    // As 'tuspass' with the Redis locker (BENCH_REDIS_URL, default the local Redis): the difference is
    // the lock round trips and the fence before each write.
    const running = await startTuspass(
      configFor({
        dataDir,
        port: 0,
        logFormat: 'json',
        redisUrl: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
      }),
      { completion: true, redisPrefix: `tuspass-bench-${process.pid}:` },
    );
    return { url: running.url, close: running.close, storeDir };
  }
  if (side === 'tuspass-lb') {
    // One of several upload servers behind a load balancer (scenario-balancer.ts): a data directory
    // each, one store shared by all (the balancer-store directory beside the data directories), the
    // upload locks in Redis under one prefix per bench run (the parent's pid), one form secret,
    // upload URLs from the proxy's X-Forwarded-* headers. Each runs its own completion service.
    const shared = path.join(path.dirname(dataDir), 'balancer-store');
    fs.mkdirSync(shared, { recursive: true });
    const config = configFor({
      dataDir,
      storeDir: shared,
      port: 0,
      logFormat: 'json',
      behindProxy: true,
      completionSecret: 'bench-balancer-shared-secret',
      redisUrl: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
    });
    const running = await startTuspass(config, { completion: true, redisPrefix: `tuspass-bench-lb-${process.ppid}:` });
    return { url: running.url, close: running.close, storeDir: shared };
  }
  if (side === 'tuspass-auth') {
    // As 'tuspass' with bearer tokens required (AUTH_JWT_SECRET): the difference is verification and ownership.
    const running = await startTuspass(
      configFor({ dataDir, port: 0, logFormat: 'json', authJwtSecret: BENCH_JWT_SECRET }),
      { completion: true },
    );
    return { url: running.url, close: running.close, storeDir };
  }
  if (side === 'tuspass-access') {
    // As 'tuspass' with a pre-access hook that lets everything through, in-process (a module hook's
    // path without loading a file): the difference is the access step's hook call (the upload's info
    // read, the payload, the runner) on every HEAD, GET, PATCH and DELETE.
    const allow: HookHandler = { name: 'bench-allow', events: ['pre-access'], invokeHook: async () => ({}) };
    const running = await startTuspass(configFor({ dataDir, port: 0, logFormat: 'json' }), {
      completion: true,
      hooks: [allow],
    });
    return { url: running.url, close: running.close, storeDir };
  }
  if (side === 'tuspass-s3') {
    // As 'tuspass' with the S3 store: S3_* from the environment the scenario sets (scenario-s3.ts).
    const config = load({
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('S3_'))),
      DATA_DIR: dataDir,
      PORT: '0',
      LOG_FORMAT: 'json',
    }).config;
    const running = await startTuspass(config, { completion: true });
    return { url: running.url, close: running.close, storeDir };
  }
  if (side === 'tuspass-quiet') {
    // As 'tuspass' with metrics (METRICS=false) and logging (LOG_LEVEL=silent) off: the difference is their cost.
    const running = await startTuspass(configFor({ dataDir, port: 0, metrics: false, logLevel: 'silent' }), {
      completion: true,
    });
    return { url: running.url, close: running.close, storeDir };
  }
  if (side === 'tuspass-noform') {
    // The upload server alone, like for like with the reference: md5 on, no completion form.
    const running = await startTuspass(configFor({ dataDir, port: 0, logFormat: 'json', hooksBuiltin: [] }), {
      completion: false,
    });
    return { url: running.url, close: running.close, storeDir };
  }
  const server =
    side === 'reference'
      ? await startReferenceServer(storeDir)
      : await startRawServer(storeDir, { md5: side === 'raw' });
  return { ...server, storeDir };
}

const [side, dataDir] = process.argv.slice(2) as [Side, string];
const server = await start(side, dataDir);
const reply = (m: ChildMessage) => process.send?.(m);
process.on('message', (m: { type: string }) => {
  if (m.type === 'memory') reply({ type: 'memory', rss: process.memoryUsage().rss, peakRss: peakRss() });
  if (m.type === 'stop') void server.close().finally(() => process.exit(0));
});
// The parent going away (Ctrl-C, crash) must not leave servers behind.
process.on('disconnect', () => process.exit(0));
reply({ type: 'ready', url: server.url, storeDir: server.storeDir });
