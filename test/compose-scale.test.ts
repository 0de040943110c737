// docker-compose.scale.yml and the nginx.conf it mounts cannot run here (no Docker engine), so this
// checks they agree with the CLI and with docs/scaling.md: nginx round robin without sticky sessions,
// streaming bodies of any size with forwarded headers; three upload servers on one volume, Redis and
// PostgreSQL; every tuspass setting valid; secrets only from .env.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { parse } from 'yaml';
import { isServerCommand } from '../cli/commands.ts';
import { SETTINGS, load } from '../server/config/config.ts';
import { parseDuration } from '../core/parse.ts';

interface Service {
  image?: string;
  build?: string;
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  expose?: string[];
  restart?: string;
  volumes?: string[];
  healthcheck?: { test: string[]; start_period?: string };
  stop_grace_period?: string;
  depends_on?: Record<string, { condition: string }>;
}

const compose = parse(fs.readFileSync(new URL('../docker-compose.scale.yml', import.meta.url), 'utf8'), {
  merge: true,
}) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};
const services = compose.services;
const tuspass = Object.entries(services).filter(([, s]) => s.build === '.');
const uploads = tuspass.filter(([, s]) => s.command?.[0] === 'upload-server');
const completion = services.completion!;
/** `${VAR:?message}` replaced the way compose does when .env has VAR. */
const resolved = (env: Record<string, string>) =>
  Object.fromEntries(
    Object.entries(env).map(([k, v]) => [
      k,
      v.replace(
        /\$\{(\w+):\?[^}]*\}/g,
        (_m, name: string) => `${name.toLowerCase()}-from-env-0123456789abcdef0123456789`,
      ),
    ]),
  );

const nginxMount = services.nginx?.volumes?.find((v) => v.endsWith(':/etc/nginx/nginx.conf:ro'));
const nginxConf = fs
  .readFileSync(new URL(`../${nginxMount!.split(':')[0]!.replace(/^\.\//, '')}`, import.meta.url), 'utf8')
  .split('\n')
  .map((l) => l.replace(/#.*/, '').trim())
  .filter(Boolean)
  .join('\n');

test('nginx, three upload servers, one completion service, Redis and PostgreSQL; every tuspass service runs a tuspass \
command with a valid configuration', () => {
  assert.deepEqual(Object.keys(services).sort(), [
    'completion',
    'nginx',
    'postgres',
    'redis',
    'upload1',
    'upload2',
    'upload3',
  ]);
  assert.equal(uploads.length, 3);
  assert.equal(completion.command?.[0], 'completion-server');
  const known = new Set(SETTINGS.map((s) => s.env));
  for (const [name, svc] of tuspass) {
    assert.ok(isServerCommand(svc.command![0]!), `${name}: ${svc.command![0]}`);
    for (const key of Object.keys(svc.environment!)) assert.ok(known.has(key), `${name}: ${key} is a setting`);
    assert.doesNotThrow(() => load(resolved(svc.environment!), svc.command!.slice(1)), `${name}: configuration loads`);
    assert.equal(svc.restart, 'unless-stopped', name);
  }
});

test('the upload servers share one volume, one STORE_DIR, one Redis and one database with the completion service; each \
has its own DATA_DIR', () => {
  const configs = uploads.map(([, s]) => load(resolved(s.environment!)).config);
  const done = load(resolved(completion.environment!)).config;
  const volumes = [...uploads.map(([, s]) => s.volumes!), completion.volumes!].map((v) => v[0]!.split(':')[0]);
  assert.equal(new Set(volumes).size, 1, 'one shared volume');
  assert.ok(Object.hasOwn(compose.volumes, volumes[0]!));
  for (const c of configs) {
    assert.equal(c.storeDir, done.storeDir);
    assert.equal(c.redisUrl, 'redis://redis:6379');
    assert.equal(new URL(c.redisUrl!).hostname, 'redis');
    assert.equal(c.databaseUrl, done.databaseUrl);
    assert.equal(c.behindProxy, true, 'upload URLs from the forwarded headers');
    assert.equal(c.completionSecret, done.completionSecret, 'forms signed with the key the service checks');
    const target = new URL(c.completionUrl!);
    assert.equal(`${target.hostname}:${target.port}${target.pathname}`, `completion:${done.completionPort}/complete/`);
  }
  assert.equal(new URL(done.databaseUrl!).hostname, 'postgres');
  assert.equal(new Set([...configs.map((c) => c.dataDir), done.dataDir]).size, 4, 'a DATA_DIR each');
  // The store is not inside any DATA_DIR: nothing of one instance's own lands among the uploads.
  for (const c of [...configs, done]) assert.ok(!c.storeDir.startsWith(`${c.dataDir}/`), c.dataDir);
});

test('only nginx is published; the upload servers wait for the \
completion service, Redis and PostgreSQL to be healthy', () => {
  for (const [name, svc] of Object.entries(services))
    if (name !== 'nginx') assert.equal(svc.ports, undefined, `${name} publishes nothing`);
  assert.equal(services.nginx!.ports![0]!.split(':')[1], '80');
  for (const [name, svc] of uploads) {
    assert.deepEqual(svc.expose, [String(load(resolved(svc.environment!)).config.port)], name);
    for (const dep of ['completion', 'redis', 'postgres'])
      assert.equal(svc.depends_on?.[dep]?.condition, 'service_healthy', `${name} waits for ${dep}`);
    assert.match(svc.healthcheck!.test.join(' '), /127\.0\.0\.1:1080\/readyz/);
  }
  assert.equal(completion.depends_on?.postgres?.condition, 'service_healthy');
  assert.ok(services.redis!.healthcheck && services.postgres!.healthcheck);
});

test('nginx: round robin over exactly the three upload servers, no sticky sessions', () => {
  const upstream = /upstream\s+(\w+)\s*\{([^}]*)\}/.exec(nginxConf);
  assert.ok(upstream, 'an upstream block');
  const servers = [...upstream[2]!.matchAll(/^server\s+([\w.-]+):(\d+)/gm)].map((m) => `${m[1]}:${m[2]}`).sort();
  assert.deepEqual(servers, uploads.map(([name, s]) => `${name}:${load(resolved(s.environment!)).config.port}`).sort());
  for (const sticky of ['ip_hash', 'hash ', 'sticky', 'least_conn', 'random'])
    assert.ok(!upstream[2]!.includes(sticky), `no ${sticky}`);
  assert.match(nginxConf, new RegExp(`proxy_pass\\s+http://${upstream[1]};`));
});

test('nginx streams bodies of any size and forwards the client origin', () => {
  for (const directive of [
    /client_max_body_size 0;/,
    /proxy_request_buffering off;/,
    /proxy_http_version 1\.1;/,
    /proxy_set_header X-Forwarded-Proto \$scheme;/,
    /proxy_set_header X-Forwarded-Host \$http_host;/,
    /proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;/,
  ])
    assert.match(nginxConf, directive);
  // nginx's 60 s default would cut a client that pauses between chunks before tuspass's own timeout.
  const read = /proxy_read_timeout (\d+)(h|m|s);/.exec(nginxConf);
  assert.ok(read, 'proxy_read_timeout set');
  const seconds = Number(read[1]) * { h: 3600, m: 60, s: 1 }[read[2] as 'h' | 'm' | 's'];
  const up = load(resolved(uploads[0]![1].environment!)).config;
  assert.ok(seconds * 1000 > up.networkTimeoutMs, `${seconds}s exceeds NETWORK_TIMEOUT`);
});

test('secrets come from .env only: AUTH_JWT_SECRET, COMPLETION_SECRET and the database password are required, never \
written here', () => {
  for (const [name, svc] of tuspass) {
    for (const key of ['AUTH_JWT_SECRET', 'COMPLETION_SECRET'])
      assert.match(svc.environment![key] ?? '', new RegExp(`^\\$\\{${key}:\\?[^}]+\\}$`), `${name}: ${key}`);
    assert.match(
      svc.environment!.DATABASE_URL!,
      /^postgres:\/\/tuspass:\$\{POSTGRES_PASSWORD:\?[^}]+\}@postgres:5432\/tuspass$/,
      name,
    );
  }
  assert.match(services.postgres!.environment!.POSTGRES_PASSWORD!, /^\$\{POSTGRES_PASSWORD:\?[^}]+\}$/);
  const lines = fs
    .readFileSync(new URL('../.gitignore', import.meta.url), 'utf8')
    .split('\n')
    .map((l) => l.trim());
  assert.ok(lines.includes('.env'));
});

test('every tuspass service waits for Redis and PostgreSQL at start (STARTUP_TIMEOUT), and its healthcheck gives it \
that long', () => {
  for (const [name, svc] of tuspass) {
    const c = load(resolved(svc.environment!)).config;
    assert.equal(c.startupTimeoutMs, 60_000, `${name}: STARTUP_TIMEOUT as docs/scaling.md says`);
    assert.ok(
      parseDuration(svc.healthcheck!.start_period!) > c.startupTimeoutMs,
      `${name}: start_period covers STARTUP_TIMEOUT`,
    );
  }
});
