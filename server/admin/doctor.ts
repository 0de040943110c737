// `tuspass doctor`: checks what `tuspass start` needs before it is started (or while it runs), each
// line "ok" or what to do. Changes nothing: a directory not there yet is fine when its parent lets the
// server create it; a write probe (a file, or a directory where one is to be made) is made and removed,
// as the server's own start does. With S3_BUCKET, the bucket and the uploads' records in it (doctor-s3.ts).
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { ConfigError, load, type Config } from '../config/config.ts';
import { secretFile } from '../config/secret.ts';
import { ADMIN_EXIT, printJson, UsageError, type Check } from './output.ts';

const mode = (m: number) => `0${(m & 0o777).toString(8)}`;
const gib = (n: number) => `${(n / 2 ** 30).toFixed(n < 2 ** 30 ? 3 : 1)} GiB`;

/** fs.statSync without the throw for a path that is not there (ENOENT, or a file on the way: ENOTDIR). */
function statOf(file: string): fs.Stats | undefined {
  try {
    return fs.statSync(file);
  } catch (e) {
    if (['ENOENT', 'ENOTDIR'].includes((e as NodeJS.ErrnoException).code ?? '')) return undefined;
    throw e;
  }
}

/** The directory itself, or the nearest existing parent that would hold it. */
function nearestExisting(dir: string): string {
  let d = dir;
  while (!fs.existsSync(d) && path.dirname(d) !== d) d = path.dirname(d);
  return d;
}

function directoryCheck(name: string, setting: string, dir: string): Check {
  const st = statOf(dir);
  if (!st) {
    const parent = nearestExisting(dir);
    const ps = statOf(parent);
    if (!ps?.isDirectory()) {
      return {
        check: name,
        ok: false,
        detail: `${dir} cannot be created: ${parent} is not a directory`,
        remedy: `set ${setting} to a directory path, or remove the file ${parent}`,
      };
    }
    // A probe directory made and removed, not a look at the parent's mode: root passes any access
    // check, and a file system may refuse every mkdir whatever the modes say (/proc answers ENOENT).
    const probe = path.join(parent, `.doctor-probe-${process.pid}`);
    try {
      fs.mkdirSync(probe);
      fs.rmdirSync(probe);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      if (code === 'EACCES' || code === 'EPERM') {
        return {
          check: name,
          ok: false,
          detail: `${dir} does not exist and ${parent} is not writable`,
          remedy: `create ${dir} owned by the user running tuspass (mkdir -p ${dir}), or set ${setting}`,
        };
      }
      return {
        check: name,
        ok: false,
        detail:
          `${dir} cannot be created: no directory can be made in ` +
          `${parent} (${code}): tuspass start would refuse it`,
        remedy: `set ${setting} to a path on a writable file system`,
      };
    }
    return { check: name, ok: true, detail: `${dir} does not exist yet; created at the first start (in ${parent})` };
  }
  if (!st.isDirectory())
    return {
      check: name,
      ok: false,
      detail: `${dir} is not a directory`,
      remedy: `set ${setting} to a directory, or move the file away`,
    };
  const probe = path.join(dir, `.doctor-probe-${process.pid}`);
  try {
    fs.writeFileSync(probe, '');
    fs.rmSync(probe);
  } catch (e) {
    return {
      check: name,
      ok: false,
      detail:
        `${dir} (mode ${mode(st.mode)}) is not writable ` +
        `(${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      remedy: `chown the directory to the user running tuspass, or chmod u+rwx ${dir}, or set ${setting}`,
    };
  }
  const open = st.mode & 0o007 ? `; others may ${st.mode & 0o002 ? 'write to' : 'read'} it — chmod o-rwx ${dir}` : '';
  return { check: name, ok: true, detail: `${dir} writable, mode ${mode(st.mode)}${open}` };
}

function freeSpaceCheck(config: Config): Check {
  const dir = nearestExisting(config.storeDir);
  let free: number;
  try {
    const s = fs.statfsSync(dir);
    free = s.bavail * s.bsize;
  } catch (e) {
    return {
      check: 'free space',
      ok: false,
      detail: `cannot read the free space of ${dir}: ${(e as Error).message}`,
      remedy: 'check that STORE_DIR is on a mounted file system',
    };
  }
  if (free <= config.minFreeSpace) {
    return {
      check: 'free space',
      ok: false,
      detail:
        `${gib(free)} free in ${dir}, MIN_FREE_SPACE is ${gib(config.minFreeSpace)}: every new upload would be ` +
        'refused (507)',
      remedy: 'free disk space, move STORE_DIR to a larger disk, or lower MIN_FREE_SPACE',
    };
  }
  return {
    check: 'free space',
    ok: true,
    detail: `${gib(free)} free in ${dir} (MIN_FREE_SPACE ${gib(config.minFreeSpace)})`,
  };
}

async function catalogCheck(config: Config): Promise<Check> {
  const file = config.catalogPath;
  if (!fs.existsSync(file)) {
    const dir = directoryCheck('catalog', 'CATALOG_PATH', path.dirname(file));
    return dir.ok
      ? { check: 'catalog', ok: true, detail: `${file} does not exist yet; created at the first start` }
      : { ...dir, detail: `catalog ${file}: ${dir.detail}` };
  }
  try {
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      const { n } = db.prepare('SELECT count(*) AS n FROM uploads').get() as { n: number };
      return { check: 'catalog', ok: true, detail: `${file} opens, ${n} upload(s) recorded` };
    } finally {
      db.close();
    }
  } catch (e) {
    return {
      check: 'catalog',
      ok: false,
      detail: `${file} does not open: ${(e as Error).message}`,
      remedy:
        'check its owner and mode (the user running tuspass reads and writes it), or move the damaged file away ' +
        'and start again (the catalog is rebuilt empty)',
    };
  }
}

function secretCheck(config: Config): Check {
  if (config.completionSecret) return { check: 'secret', ok: true, detail: 'from COMPLETION_SECRET' };
  const file = secretFile(config);
  const st = statOf(file);
  if (!st)
    return {
      check: 'secret',
      ok: true,
      detail: `${file} does not exist yet; generated at the first start (mode 0600)`,
    };
  if (!st.isFile())
    return {
      check: 'secret',
      ok: false,
      detail: `${file} is not a regular file`,
      remedy: `remove ${file}; a new secret is generated at the next start (the completion service must get it too)`,
    };
  if ((st.mode & 0o077) !== 0) {
    return {
      check: 'secret',
      ok: false,
      detail: `${file} has mode ${mode(st.mode)}: other users can read the key that signs completion forms`,
      remedy: `chmod 600 ${file}`,
    };
  }
  try {
    const text = fs.readFileSync(file, 'utf8').trim();
    if (text.length < 16)
      return {
        check: 'secret',
        ok: false,
        detail: `${file} holds ${text.length} characters, fewer than 16`,
        remedy: `remove ${file} to have one generated, or write a longer secret into it`,
      };
  } catch (e) {
    return {
      check: 'secret',
      ok: false,
      detail: `${file} is not readable (${(e as NodeJS.ErrnoException).code})`,
      remedy: `chown ${file} to the user running tuspass`,
    };
  }
  return { check: 'secret', ok: true, detail: `${file} present, mode ${mode(st.mode)}` };
}

/** Whether something answers on host:port as tuspass does (its health route). */
function tuspassAnswers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host, port, path: '/health', timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c.slice(0, 200)));
      res.on('end', () => resolve(res.statusCode === 200 && /^\{"ok":true/.test(body)));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

async function portCheck(name: string, setting: string, host: string, port: number): Promise<Check> {
  if (port === 0) return { check: name, ok: true, detail: `${setting}=0: a free port is chosen at start` };
  const error = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    const server = net.createServer();
    server.once('error', (e) => resolve(e));
    server.listen(port, host, () => server.close(() => resolve(undefined)));
  });
  if (!error) return { check: name, ok: true, detail: `${host}:${port} is free` };
  if (error.code === 'EADDRINUSE') {
    const connect = ['0.0.0.0', '::'].includes(host) ? '127.0.0.1' : host;
    if (await tuspassAnswers(connect, port))
      return { check: name, ok: true, detail: `${host}:${port} is in use by a running tuspass` };
    return {
      check: name,
      ok: false,
      detail: `${host}:${port} is in use by another program`,
      remedy: `set ${setting} (or --${setting.toLowerCase().replace(/_/g, '-')}) to a free port, or stop that program`,
    };
  }
  if (error.code === 'EACCES')
    return {
      check: name,
      ok: false,
      detail: `${host}:${port}: not allowed to listen (EACCES)`,
      remedy: `use a ${setting} above 1023, or grant the capability to bind low ports`,
    };
  return {
    check: name,
    ok: false,
    detail: `${host}:${port}: cannot listen (${error.code ?? error.message})`,
    remedy: `set HOST to an address of this machine (or 0.0.0.0), or another ${setting}`,
  };
}

export async function runChecks(config: Config): Promise<Check[]> {
  return [
    { check: 'config', ok: true, detail: 'valid' },
    directoryCheck('data dir', 'DATA_DIR', config.dataDir),
    directoryCheck('store dir', 'STORE_DIR', config.storeDir),
    // With S3_BUCKET the uploads are in the bucket: the disk's free space admits none of them.
    ...(config.s3Bucket ? await (await import('./doctor-s3.ts')).s3Checks(config) : [freeSpaceCheck(config)]),
    await catalogCheck(config),
    secretCheck(config),
    await portCheck('port', 'PORT', config.host, config.port),
    await portCheck('completion port', 'COMPLETION_PORT', config.host, config.completionPort).then((c) => ({
      ...c,
      detail: `${c.detail} (used by completion-server only)`,
    })),
  ];
}

export async function doctorCommand(args: readonly string[]): Promise<number> {
  const json = args.includes('--json');
  let checks: Check[];
  try {
    const { config, rest } = load(
      process.env,
      args.filter((a) => a !== '--json'),
    );
    if (rest.length) throw new UsageError(`unknown option or argument ${rest.map((a) => `"${a}"`).join(', ')}`);
    checks = await runChecks(config);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    checks = e.problems.map((p) => ({
      check: 'config',
      ok: false,
      detail: p,
      remedy: 'fix the setting named (tuspass --help lists them)',
    }));
  }
  if (json) printJson(checks);
  else
    for (const c of checks)
      process.stdout.write(
        c.ok ? `ok    ${c.check}: ${c.detail}\n` : `FAIL  ${c.check}: ${c.detail}\n      → ${c.remedy}\n`,
      );
  return checks.every((c) => c.ok) ? ADMIN_EXIT.OK : ADMIN_EXIT.FAILED;
}
