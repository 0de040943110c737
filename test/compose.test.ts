// docker-compose.yml cannot run here (no Docker engine), so this checks that it agrees with the CLI:
// known subcommands, valid configuration, one shared volume, ports and the completion URL lining up,
// and the defaults that protect a server nobody tuned: restarted after an exit, the
// completion service not published, a non-root user.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { parse } from 'yaml';
import { isServerCommand } from '../cli/commands.ts';
import { SETTINGS, load } from '../server/config/config.ts';

interface Service {
  build?: string;
  command: string[];
  environment: Record<string, string>;
  ports?: string[];
  expose?: string[];
  restart?: string;
  volumes: string[];
  healthcheck?: { test: string[]; interval?: string; timeout?: string; retries?: number };
  stop_grace_period?: string;
  depends_on?: unknown;
}

const compose = parse(fs.readFileSync(new URL('../docker-compose.yml', import.meta.url), 'utf8')) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};
const { upload, completion } = compose.services;

test('two services, each running a tuspass subcommand with a valid configuration', () => {
  assert.deepEqual(Object.keys(compose.services).sort(), ['completion', 'upload']);
  const known = new Set(SETTINGS.map((s) => s.env));
  for (const [name, svc] of Object.entries(compose.services)) {
    assert.ok(isServerCommand(svc.command[0]!), `${name}: ${svc.command[0]} is a tuspass command`);
    for (const key of Object.keys(svc.environment)) assert.ok(known.has(key), `${name}: ${key} is a setting`);
    assert.doesNotThrow(() => load(svc.environment, svc.command.slice(1)), `${name}: configuration loads`);
  }
  assert.equal(upload!.command[0], 'upload-server');
  assert.equal(completion!.command[0], 'completion-server');
});

test('both services mount the one shared volume at their DATA_DIR and agree on STORE_DIR', () => {
  const mounts = [upload!, completion!].map((s) => s.volumes[0]!.split(':'));
  assert.equal(mounts[0]![0], mounts[1]![0]);
  assert.ok(Object.hasOwn(compose.volumes, mounts[0]![0]!), 'volume declared');
  assert.equal(mounts[0]![1], upload!.environment.DATA_DIR);
  assert.equal(mounts[1]![1], completion!.environment.DATA_DIR);
  assert.equal(load(upload!.environment).config.storeDir, load(completion!.environment).config.storeDir);
});

test('the upload port is published, the completion port only \
reachable by the upload server, and forms go there', () => {
  const up = load(upload!.environment).config;
  const done = load(completion!.environment).config;
  assert.equal(up.host, '0.0.0.0');
  assert.equal(done.host, '0.0.0.0');
  assert.equal(upload!.ports![0]!.split(':')[1], String(up.port));
  // Signed forms and the catalog are for the upload server alone, over the compose network.
  assert.equal(completion!.ports, undefined, 'the completion service publishes no port to the host');
  assert.deepEqual(completion!.expose, [String(done.completionPort)]);
  const target = new URL(up.completionUrl!);
  assert.equal(target.hostname, 'completion', 'service name as host');
  assert.equal(target.port, String(done.completionPort));
  assert.equal(target.pathname, '/complete/');
});

test('healthchecks ask /readyz on the port of each service with node (the image has no curl); the upload server waits \
for a healthy completion service', () => {
  for (const [name, svc, port] of [
    ['upload', upload!, load(upload!.environment).config.port],
    ['completion', completion!, load(completion!.environment).config.completionPort],
  ] as const) {
    const check = svc.healthcheck;
    assert.ok(check, `${name} has a healthcheck`);
    assert.deepEqual(check.test.slice(0, 3), ['CMD', 'node', '-e'], `${name}: exec form, node only`);
    const script = check.test[3]!;
    assert.match(script, new RegExp(`fetch\\('http://127\\.0\\.0\\.1:${port}/readyz'\\)`), `${name}: its own port`);
    assert.match(script, /process\.exit\(r\.ok \? 0 : 1\)/, `${name}: a 503 is unhealthy`);
    assert.match(script, /\(\) => process\.exit\(1\)/, `${name}: no answer is unhealthy`);
    // Docker waits this long after SIGTERM before SIGKILL: longer than SHUTDOWN_TIMEOUT, or uploads are not cut
    // cleanly.
    const grace = Number(/^(\d+)s$/.exec(svc.stop_grace_period ?? '')?.[1]) * 1000;
    assert.ok(
      grace > load(svc.environment).config.shutdownTimeoutMs,
      `${name}: stop_grace_period ${svc.stop_grace_period} exceeds SHUTDOWN_TIMEOUT`,
    );
  }
  assert.deepEqual(upload!.depends_on, { completion: { condition: 'service_healthy' } });
});

test('both services come back after an exit (restart: unless-stopped)', () => {
  for (const [name, svc] of Object.entries(compose.services)) assert.equal(svc.restart, 'unless-stopped', name);
});

test('the image runs as the unprivileged node user, owning /data, and takes nothing local into the image', () => {
  const lines = fs
    .readFileSync(new URL('../Dockerfile', import.meta.url), 'utf8')
    .split('\n')
    .map((l) => l.trim());
  const users = lines.filter((l) => /^USER\s/.test(l));
  assert.deepEqual(users.at(-1), 'USER node', 'the last USER is node');
  const userAt = lines.indexOf('USER node');
  assert.ok(userAt > lines.findIndex((l) => l.startsWith('RUN npm run build')), 'the build runs before, as root');
  assert.ok(userAt < lines.findIndex((l) => l.startsWith('ENTRYPOINT')), 'the services run after, as node');
  // A named volume takes the ownership of the image's directory when first created.
  const chownAt = lines.findIndex((l) => /^RUN .*chown (-R )?node:node \/data\b/.test(l));
  assert.ok(
    chownAt >= 0 && chownAt < lines.findIndex((l) => l.startsWith('VOLUME')),
    '/data is owned by node before VOLUME',
  );
  const ignored = fs
    .readFileSync(new URL('../.dockerignore', import.meta.url), 'utf8')
    .split('\n')
    .map((l) => l.trim());
  for (const entry of ['node_modules', 'data', 'dist'])
    assert.ok(ignored.includes(entry), `.dockerignore has ${entry}`);
});

test('the Dockerfile runs the same entry point as npm start', () => {
  const dockerfile = fs.readFileSync(new URL('../Dockerfile', import.meta.url), 'utf8');
  const pkg = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  assert.match(dockerfile, /ENTRYPOINT \["node", "bin\/tuspass.js"\]/);
  // exec: npm's shell becomes the server, so a SIGTERM to npm start reaches it (test/npm-start.test.ts).
  assert.equal(pkg.scripts.start, 'exec node bin/tuspass.js start');
  assert.match(dockerfile, /npm ci/);
});

test('docker compose up is authenticated: both services require AUTH_JWT_SECRET from .env (never committed), without \
it the start is refused', async () => {
  const { requireAuthBeyondLoopback } = await import('../server/auth/loopback.ts');
  const secret = 'a'.repeat(64);
  for (const [name, svc] of Object.entries(compose.services)) {
    // ${VAR:?message}: compose itself refuses to start when .env (or the environment) lacks it.
    assert.match(
      svc.environment.AUTH_JWT_SECRET ?? '',
      /^\$\{AUTH_JWT_SECRET:\?[^}]+\}$/,
      `${name}: AUTH_JWT_SECRET required from .env`,
    );
    const env = { ...svc.environment, AUTH_JWT_SECRET: secret };
    assert.doesNotThrow(() => requireAuthBeyondLoopback(load(env).config), `${name}: starts with the secret`);
    const { AUTH_JWT_SECRET: _none, ...anonymous } = svc.environment;
    assert.throws(
      () => requireAuthBeyondLoopback(load(anonymous).config),
      /AUTH_JWT_SECRET/,
      `${name}: refused without it`,
    );
  }
  for (const file of ['../.gitignore', '../.dockerignore']) {
    const lines = fs
      .readFileSync(new URL(file, import.meta.url), 'utf8')
      .split('\n')
      .map((l) => l.trim());
    assert.ok(lines.includes('.env'), `${file} keeps .env out`);
  }
});

test('docs/docker.md, linked from the README, covers both compose files: each service, each volume, each secret .env \
must hold', () => {
  const doc = fs.readFileSync(new URL('../docs/docker.md', import.meta.url), 'utf8');
  assert.match(
    fs.readFileSync(new URL('../README.md', import.meta.url), 'utf8'),
    /\]\(docs\/docker\.md\)/,
    'the README points to it',
  );
  for (const file of ['docker-compose.yml', 'docker-compose.scale.yml']) {
    const text = fs.readFileSync(new URL(`../${file}`, import.meta.url), 'utf8');
    const parsed = parse(text) as { services: Record<string, unknown>; volumes: Record<string, unknown> };
    assert.ok(doc.includes(`\`${file}\``), `names ${file}`);
    for (const volume of Object.keys(parsed.volumes))
      assert.ok(doc.includes(`| \`${volume}\` |`), `${file}: what volume ${volume} holds`);
    for (const [variable] of text.matchAll(/(?<=\$\{)[A-Z_]+(?=:\?)/g))
      assert.ok(doc.includes(`echo "${variable}=`), `${file}: how to put ${variable} in .env`);
    for (const service of Object.keys(parsed.services))
      assert.ok(new RegExp(`\\b${service.replace(/\d$/, '')}`).test(doc), `${file}: service ${service}`);
  }
  // What DATA_DIR holds, as start.ts lays it out.
  for (const entry of [
    '/data/uploads/',
    '/data/completion-secret',
    '/data/queue/',
    '/data/completions-handled',
    '/data/catalog.sqlite',
  ])
    assert.ok(doc.includes(entry), entry);
});
