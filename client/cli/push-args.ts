// Command line of `tuspass push`: flags as in the old nginx-upload push script
// (--host/--port/--schema) plus --endpoint, metadata, and resume/retry knobs.
import { parseArgs } from 'node:util';
import { UNIT_CONVENTION } from '../shared/units.ts';

export interface PushOptions {
  /** tus creation endpoint, e.g. http://127.0.0.1:1080/files/ */
  endpoint: string;
  files: string[];
  /** Upload metadata from --field key=value and --name (the completion form's pass-through fields). */
  fields: Record<string, string>;
  quiet: boolean;
  resume: boolean;
  /** Keep retrying network errors and 5xx for this long before giving up, in seconds. */
  retryForSeconds: number;
  /** Bytes per PATCH; Infinity streams the whole file in one request. */
  chunkSize: number;
  /** Parts sent at once (tus concatenation extension); 1 is a single stream. */
  parallel: number;
  /** Bearer token sent on every request (--token, or TUSPASS_TOKEN). */
  token?: string;
  /** tus 1.0.0, or the IETF Resumable Uploads draft (tus-js-client's ietf-draft-05, interop version 6). */
  protocol: 'tus' | 'ietf';
}

/** More connections than this stop helping on one server and only add partial uploads to clean up. */
export const MAX_PARALLEL = 16;

export const USAGE = `usage: tuspass push [options] FILE...

Uploads files to a tuspass (or any tus 1.0.0) server, resuming where an earlier run stopped.

  --endpoint URL       tus endpoint (default: SCHEMA://HOST:PORT/files/)
  --host HOST          server host (default 127.0.0.1)
  --port PORT          server port (default 1080)
  --schema http|https  (default http)
  --field KEY=VALUE    upload metadata, repeatable (e.g. --field description=holiday)
  --name NAME          the "name" metadata field
  --quiet              no progress; still prints each completion answer and errors
  --no-resume          start over instead of resuming an earlier upload of the same file
  --retry-for SECONDS  keep retrying network errors and 5xx this long (default 60)
  --chunk-size SIZE    bytes per request, e.g. 8M (default: the whole file in one request)
  --parallel N         send each file as N parts at once, 1-16 (default 1; needs the
                       server's concatenation extension)
  --token JWT          bearer token sent on every request (default: TUSPASS_TOKEN)
  --protocol tus|ietf  tus 1.0.0 (default), or the IETF Resumable Uploads draft
                       (interop version 6; no --parallel)
  -h, --help           this text

Sizes and speeds are decimal, as disks and networks count them: ${UNIT_CONVENTION}.

Exit codes: see client/cli/README.md (0 ok, 3 local file, 4 unreachable, 5 rejected by the
server, 6 rejected by the completion service, 7 completion pending).

Environment: TUSPASS_TOKEN is the bearer token when --token is not given. TUSPASS_FINGERPRINTS names the file that
remembers started uploads (default $XDG_CONFIG_HOME/tuspass/uploads.json or ~/.config/tuspass/uploads.json).`;

export class UsageError extends Error {}

/** Parses argv; throws UsageError naming every problem at once. Returns 'help' for -h/--help. */
export function parsePushArgs(
  argv: string[],
  env: Record<string, string | undefined> = process.env,
): PushOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        endpoint: { type: 'string' },
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string', default: '1080' },
        schema: { type: 'string', default: 'http' },
        field: { type: 'string', multiple: true, default: [] },
        name: { type: 'string' },
        quiet: { type: 'boolean', default: false },
        'no-resume': { type: 'boolean', default: false },
        'retry-for': { type: 'string', default: '60' },
        'chunk-size': { type: 'string' },
        parallel: { type: 'string', default: '1' },
        token: { type: 'string' },
        protocol: { type: 'string', default: 'tus' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return 'help';

  const problems: string[] = [];
  const endpoint = values.endpoint ?? `${values.schema}://${values.host}:${values.port}/files/`;
  if (!values.endpoint) {
    if (!/^https?$/.test(values.schema)) problems.push(`--schema must be http or https, got "${values.schema}"`);
    if (!/^\d+$/.test(values.port) || Number(values.port) < 1 || Number(values.port) > 65535)
      problems.push(`--port must be 1-65535, got "${values.port}"`);
  }
  if (!isHttpUrl(endpoint)) problems.push(`--endpoint must be an http(s) URL, got "${endpoint}"`);

  const fields: Record<string, string> = {};
  for (const f of values.field) {
    const eq = f.indexOf('=');
    if (eq <= 0) problems.push(`--field must be KEY=VALUE, got "${f}"`);
    else fields[f.slice(0, eq)] = f.slice(eq + 1);
  }
  if (values.name !== undefined) fields.name = values.name;

  const retryFor = Number(values['retry-for']);
  if (!/^\d+(\.\d+)?$/.test(values['retry-for']))
    problems.push(`--retry-for must be a number of seconds, got "${values['retry-for']}"`);

  let chunkSize = Number.POSITIVE_INFINITY;
  if (values['chunk-size'] !== undefined) {
    const size = parseSize(values['chunk-size']);
    if (size === undefined || size < 1)
      problems.push(`--chunk-size must be a size like 5242880, 512k or 8M, got "${values['chunk-size']}"`);
    else chunkSize = size;
  }
  const parallel = Number(values.parallel);
  if (!/^\d+$/.test(values.parallel) || parallel < 1 || parallel > MAX_PARALLEL) {
    problems.push(`--parallel must be a whole number from 1 to ${MAX_PARALLEL}, got "${values.parallel}"`);
  }
  const protocol = values.protocol;
  if (protocol !== 'tus' && protocol !== 'ietf') problems.push(`--protocol must be tus or ietf, got "${protocol}"`);
  // The draft has no concatenation: one upload resource per file.
  else if (protocol === 'ietf' && parallel > 1)
    problems.push('--parallel needs --protocol tus (the IETF draft has no concatenation)');
  if (positionals.length === 0) problems.push('no FILE given');
  const token = (values.token ?? env.TUSPASS_TOKEN)?.trim() || undefined;
  // A header value cannot hold line breaks or spaces; a token with them is a copy-paste mistake.
  if (token !== undefined && !/^[A-Za-z0-9\-._~+/]+=*$/.test(token))
    problems.push('--token / TUSPASS_TOKEN is not a bearer token (letters, digits and -._~+/ only)');
  if (problems.length) throw new UsageError(problems.join('\n'));

  return {
    endpoint,
    files: positionals,
    fields,
    quiet: values.quiet,
    resume: !values['no-resume'],
    retryForSeconds: retryFor,
    chunkSize,
    parallel,
    protocol: protocol === 'ietf' ? 'ietf' : 'tus',
    ...(token !== undefined && { token }),
  };
}

function isHttpUrl(text: string): boolean {
  try {
    const u = new URL(text);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

/** "8M" → 8388608; binary units, as chunk sizes usually are. */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+)([kKmMgG]?)[bB]?$/.exec(text.trim());
  if (!m) return undefined;
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Number(m[1]) * unit;
}
