// Scenario "balancer": one large upload (POST, then one PATCH of the whole file) through nginx in
// front of three tuspass upload servers sharing one store (upload locks in Redis, BEHIND_PROXY),
// against the same upload sent directly to one of those servers, alternated round by round.
// nginx is Debian's package run as a child process with a config generated under the bench's tmp
// dir; without nginx (or without Redis) the scenario says so and skips, it does not fail.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createUpload, patchFile, uploadId } from './client.ts';
import { deleteRedisPrefix } from './redis-cleanup.ts';
import { GiB, MiB, rotate, Samples, type BenchContext, type Check, type ScenarioResult } from './scenario.ts';
import { removeUpload, startServer, type ServerProcess } from './servers.ts';
import { mbps, summarize } from './stats.ts';

const INSTANCES = 3;
const SIDES = ['nginx', 'direct'] as const;
type BalancerSide = (typeof SIDES)[number];

function findNginx(): string | undefined {
  for (const candidate of [
    process.env.BENCH_NGINX,
    '/usr/sbin/nginx',
    '/usr/local/sbin/nginx',
    '/usr/local/nginx/sbin/nginx',
  ]) {
    if (candidate && fs.existsSync(candidate)) return candidate;
  }
  const which = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' });
  return which.status === 0 && which.stdout.trim() ? which.stdout.trim() : undefined;
}

/** A port nobody listens on right now (the kernel's pick for port 0, released again). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** The settings of deploy/nginx.conf (round robin, no stickiness, bodies streamed), with every path inside `dir`. */
function nginxConfig(dir: string, port: number, upstreams: string[]): string {
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  return `${user}worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream tuspass {
    # Round robin (nginx's default): no ip_hash, hash or sticky.
${upstreams.map((u) => `    server ${u};`).join('\n')}
    keepalive 32;
  }
  server {
    listen 127.0.0.1:${port};
    client_max_body_size 0;
    location / {
      proxy_pass http://tuspass;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_request_buffering off;
      proxy_buffering off;
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
    }
  }
}
`;
}

async function startNginx(
  binary: string,
  dir: string,
  upstreams: string[],
): Promise<{ url: string; stop(): Promise<void> }> {
  fs.mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const conf = path.join(dir, 'nginx.conf');
  fs.writeFileSync(conf, nginxConfig(dir, port, upstreams));
  // -e: the error log before the config is read (else nginx opens its compiled-in /var/log path).
  const child: ChildProcess = spawn(
    binary,
    ['-e', path.join(dir, 'error.log'), '-p', dir, '-c', conf, '-g', 'daemon off;'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) break;
    if (await canConnect(port)) {
      return {
        url: `http://127.0.0.1:${port}`,
        async stop() {
          // SIGQUIT: graceful shutdown of master and worker.
          if (child.exitCode === null) child.kill('SIGQUIT');
          await exited;
        },
      };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  await exited;
  const log = fs.existsSync(path.join(dir, 'error.log')) ? fs.readFileSync(path.join(dir, 'error.log'), 'utf8') : '';
  throw new Error(`nginx did not start: ${stderr}${log}`.trim());
}

function skipped(reason: string, size: number, ctx: BenchContext): ScenarioResult {
  ctx.log(`  skipped: ${reason}`);
  return {
    id: 'balancer',
    title: `Balancer: one upload of ${size / MiB} MiB through nginx vs direct (skipped: ${reason})`,
    settings: { bytes: size, rounds: ctx.rounds, skipped: reason },
    figures: [],
    targets: [],
    checks: [],
  };
}

export async function balancer(ctx: BenchContext): Promise<ScenarioResult> {
  const size = ctx.quick ? 256 * MiB : GiB;
  const nginxBinary = findNginx();
  if (!nginxBinary) return skipped('nginx is not installed (apt-get install nginx, or BENCH_NGINX=<path>)', size, ctx);
  const redisUrl = new URL(process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379');
  const redisUp = await new Promise<boolean>((resolve) => {
    const socket = net.connect(Number(redisUrl.port || 6379), redisUrl.hostname);
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
  if (!redisUp) return skipped(`no Redis at ${redisUrl.host} (BENCH_REDIS_URL)`, size, ctx);

  const file = await ctx.file(size);
  const servers: ServerProcess[] = [];
  // One after another: the first start creates the shared store directory.
  for (let i = 1; i <= INSTANCES; i++)
    servers.push(await startServer('tuspass-lb', path.join(ctx.tmp, `balancer-${i}`), { profileDir: ctx.profileDir }));
  const samples = new Samples();
  const checks: Check[] = [];
  let nginx: Awaited<ReturnType<typeof startNginx>> | undefined;
  try {
    nginx = await startNginx(
      nginxBinary,
      path.join(ctx.tmp, 'balancer-nginx'),
      servers.map((s) => new URL(s.url).host),
    );
    const base: Record<BalancerSide, string> = { nginx: nginx.url, direct: servers[0]!.url };
    for (let round = 0; round < ctx.rounds; round++) {
      for (const side of rotate(SIDES, round)) {
        const started = performance.now();
        const location = await createUpload(base[side], size);
        const t = await patchFile(location, file.path, 0, size);
        // POST and PATCH both: what a client of the deployment waits for.
        samples.add(side, mbps(size, t.answeredAt - started));
        samples.add(`${side} patch`, mbps(size, t.answeredAt - t.startedAt));
        if (side === 'nginx' && round === 0) {
          const via = new URL(location).host === new URL(nginx.url).host;
          checks.push({ name: 'balancer: upload URL points at nginx (BEHIND_PROXY)', pass: via, detail: location });
        }
        const md5 = (JSON.parse(t.answer.body || '{}') as { md5?: string }).md5;
        checks.push({
          name: `round ${round + 1}: ${side} completion md5 = file md5`,
          pass: md5 === file.md5,
          detail: `${md5} vs ${file.md5}`,
        });
        removeUpload(servers[0]!.storeDir, uploadId(location));
      }
      ctx.log(`  round ${round + 1}: ${SIDES.map((s) => `${s} ${samples.get(s).at(-1)!.toFixed(0)}`).join(', ')} MB/s`);
    }
  } finally {
    await nginx?.stop();
    for (const server of servers) await server.stop();
    // server-child.ts's prefix for 'tuspass-lb': this process's pid.
    await deleteRedisPrefix(`tuspass-bench-lb-${process.pid}:`);
  }

  const ratio = samples.get('nginx').map((v, i) => v / samples.get('direct')[i]!);
  const mb = (side: string, metric: string) => ({ metric, unit: 'MB/s', side, summary: summarize(samples.get(side)) });
  return {
    id: 'balancer',
    title:
      `Balancer: one upload of ${size / MiB} MiB (POST + one PATCH) through nginx before ${INSTANCES} upload ` +
      'servers (Redis locks, one store) vs direct to one of them',
    settings: { bytes: size, rounds: ctx.rounds, instances: INSTANCES, nginx: nginxBinary },
    figures: [
      mb('nginx', 'POST + PATCH throughput'),
      mb('direct', 'POST + PATCH throughput'),
      mb('nginx patch', 'PATCH alone throughput'),
      mb('direct patch', 'PATCH alone throughput'),
      { metric: 'ratio MB/s', unit: 'x', side: 'nginx/direct', summary: summarize(ratio) },
    ],
    targets: [],
    checks,
  };
}
