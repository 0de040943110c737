// One validated configuration for every tuspass command.
// Each setting has a flag, an environment variable, a default and a doc line (SETTINGS: each default
// written there once, and --help, the README check and load() all take it from there); load() reads
// them all, collects every problem at once (naming the setting) and returns a frozen object.
import path from 'node:path';
import { DEFAULT_FORM_FIELDS, parseFormTemplates, type FormTemplates } from './form-templates.ts';
import { parseStatusRanges, type StatusRanges } from '../../core/status-ranges.ts';
import {
  parseBoolean,
  parseDuration,
  parseList,
  parsePositiveDuration,
  parseSize,
  parseSizeOrShare,
  type SizeOrShare,
} from '../../core/parse.ts';
import { DEFAULT_ENABLED_EVENTS, parseEventList, type HookEventType } from '../../hooks/types.ts';
import { parseJwtSecret, readJwtPublicKey, readJwtSecretFile, type JwtPublicKey } from './key-settings.ts';
import { defaultLogFormat, LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from '../../core/log-settings.ts';
import { parseOrigins } from './cors-origins.ts';
import { DEFAULT_TOLERANCE_MS } from '../../core/signature.ts';
import { DIGEST_NAMES, type DigestName } from '../../core/wire.ts';

/** A digest DIGESTS may name: the names on the wire (core/wire.ts). */

/** The settings as loaded; each one's default is its entry's in SETTINGS. */
export interface Config {
  /** Address the HTTP servers bind to. */
  host: string;
  /** Port of the upload server (and of `tuspass start`). */
  port: number;
  /** Port of `tuspass completion-server` when it runs on its own. */
  completionPort: number;
  /** Directory for everything tuspass keeps: uploads, queue, catalog, secret. */
  dataDir: string;
  /** The shared store where uploads are written. */
  storeDir: string;
  /**
   * Where the complete-form hook posts; undefined: the built-in completion service (completionUrlOf).
   */
  completionUrl: string | undefined;
  /** REDIS_URL: the upload locks shared by several upload servers (redis-locker.ts). */
  redisUrl: string | undefined;
  /** Lease of an upload lock in Redis, in ms, renewed while held. */
  redisLockTtlMs: number;
  /** DATABASE_URL: the catalog, notice queue and completion journal on PostgreSQL (server/backends/pg/). */
  databaseUrl: string | undefined;
  /** S3_BUCKET: uploads go to this S3 bucket as multipart uploads instead of STORE_DIR (backends/store/s3/). */
  s3Bucket: string | undefined;
  /** S3_ENDPOINT: an S3-compatible server's URL; undefined: AWS's endpoint for S3_REGION. */
  s3Endpoint: string | undefined;
  /** S3_REGION: the region requests are signed for. */
  s3Region: string;
  /** S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY: both or neither; neither: the SDK's credential chain. */
  s3AccessKeyId: string | undefined;
  s3SecretAccessKey: string | undefined;
  /** S3_FORCE_PATH_STYLE: bucket in the path (http://host/bucket/key), as most S3-compatible servers want. */
  s3ForcePathStyle: boolean;
  /** S3_PREFIX: where in the bucket the uploads' objects are named (prefix + id). */
  s3Prefix: string;
  /**
   * S3_PART_SIZE: smallest multipart part, in bytes; larger when the upload's length needs it to stay within 10,000
   * parts.
   */
  s3PartSize: number;
  /** S3_EQUAL_PARTS: every part but the last of one size (stores such as R2 require it). */
  s3EqualParts: boolean;
  /** S3_PARTS_IN_FLIGHT: parts of one upload sent to S3 at once while its bytes arrive. */
  s3PartsInFlight: number;
  /**
   * S3_DOWNLOAD_REDIRECT: GET of a finished upload redirects to a presigned URL valid this long, in ms; 0 streams it
   * through tuspass.
   */
  s3DownloadRedirectMs: number;
  /** S3_FORM_URL_TTL: the completion form's `<field>.url` is a presigned GET URL valid this long, in ms; 0: none. */
  s3FormUrlTtlMs: number;
  /** S3_TIMEOUT: how long a request to S3 may go without a byte sent or received. */
  s3TimeoutMs: number;
  /** At start, how long an engine that does not answer yet (Redis, PostgreSQL) is waited for, in ms
   * (server/backends/engine-wait.ts). */
  startupTimeoutMs: number;
  /** With REDIS_URL: how often each instance looks for finished uploads nobody announced, in ms
   * (completion-sweep.ts). */
  completionSweepMs: number;
  /** HMAC-SHA256 key that signs completion forms. */
  completionSecret: string | undefined;
  /** Digests computed on the way in besides md5 and size, and put into the form. */
  digests: readonly DigestName[];
  /** Upload metadata keys copied into the form as they are. */
  passFields: RegExp;
  /** Completion statuses after which the uploaded file is deleted. */
  cleanupStatuses: StatusRanges;
  /** Path of the nginx-upload-module style multipart endpoint (also with a trailing slash). */
  uploadFormPath: string;
  /** The multipart form's per-file field templates (upload_set_form_field/upload_aggregate_form_field). */
  multipartFormFields: FormTemplates;
  /** Most resumable-mode sessions (nginx upload module's Session-ID) open at once; more get 503. */
  resumableSessionsMax: number;
  /** How long one completion POST may take, in ms. */
  completionTimeoutMs: number;
  /** First retry delay of a queued completion notice, in ms (doubles up to the max). */
  retryMinMs: number;
  /** Longest delay between retries of a queued notice, in ms. */
  retryMaxMs: number;
  /** SQLite file of the completion catalog. */
  catalogPath: string;
  /** Largest upload accepted, in bytes; 0 means no limit. */
  maxSize: number;
  /** Unfinished uploads expire this long after their last write, in ms; 0 never. */
  expireAfterMs: number;
  /** Uploads that received no byte expire this long after their creation, in ms; 0 never (EXPIRE_AFTER still
   * applies). */
  expireUnstartedAfterMs: number;
  /** Free space the store keeps beyond what unfinished uploads are owed, in bytes; creations that would eat into it get
   * 507. */
  minFreeSpace: number;
  /** Most unfinished uploads one owner (token subject, or client address when anonymous) holds; 0 no limit. */
  ownerMaxOpen: number;
  /** Most bytes one owner's unfinished uploads may still be owed: bytes, or a share of the space above
   * MIN_FREE_SPACE. */
  ownerMaxOwed: SizeOrShare;
  /** A request body that sends nothing for this long, in ms, is cut (bytes so far kept). */
  networkTimeoutMs: number;
  /** Most partial uploads one final upload may list (concatenation). */
  maxConcatParts: number;
  /** Most notices the durable queue holds; at the cap new creations get 503 with Retry-After. */
  queueMax: number;
  /** Keep partial uploads after a final upload was built from them (concatenation). */
  keepPartials: boolean;
  /** IETF_DRAFT: serve the IETF Resumable Uploads draft on the tus endpoint beside tus 1.0.0. */
  ietfDraft: boolean;
  /** Count and serve Prometheus metrics (server/ops/metrics.ts); false turns /metrics and the counting off. */
  metrics: boolean;
  /** Serve /metrics (and /healthz, /readyz) on this port of METRICS_HOST only, not on PORT. */
  metricsPort: number | undefined;
  /** Address of the METRICS_PORT listener. */
  metricsHost: string;
  /** On SIGTERM/SIGINT, how long requests in flight may finish before PATCHes are cut (bytes kept), in ms. */
  shutdownTimeoutMs: number;
  /** Command hooks: a directory of executables named after events (tusd -hooks-dir). */
  hooksDir: string | undefined;
  /** HTTP hooks: the URL hook payloads are POSTed to (tusd -hooks-http). */
  hooksHttp: string | undefined;
  /** Retries of an HTTP hook on a network error or 5xx, on blocking events (notices retry through the queue). */
  hooksHttpRetry: number;
  /** Wait between those retries, in ms. */
  hooksHttpBackoffMs: number;
  /** Client request headers copied onto HTTP hook requests. */
  hooksHttpForwardHeaders: readonly string[];
  /** Events sent to command and HTTP hooks (tusd's default: all but pre-finish and pre-terminate). */
  hooksEnabledEvents: readonly HookEventType[];
  /** Events for command hooks only, when they must differ. */
  hooksDirEvents: readonly HookEventType[] | undefined;
  /** Events for HTTP hooks only, when they must differ. */
  hooksHttpEvents: readonly HookEventType[] | undefined;
  /** Module hooks: .ts/.js files run in-process, each getting the events it exports. */
  hooksModules: readonly string[];
  /** Built-in module hooks, run before HOOKS_MODULE. */
  hooksBuiltin: readonly string[];
  /** How long a hook may take on one event, in ms; a command hook is then killed. */
  hooksTimeoutMs: number;
  /** A blocking hook that fails or times out lets the request pass instead of rejecting it. */
  hooksFailOpen: boolean;
  /** Log lines as JSON or readable text (core/logger.ts). */
  logFormat: LogFormat;
  /** Least level logged: fatal, error, warn, info, debug, trace, or silent. */
  logLevel: LogLevel;
  /** Interval of post-receive progress events per upload, in ms (tusd -progress-hooks-interval). */
  progressHooksIntervalMs: number;
  /** HS256 key bearer tokens are verified with (AUTH_JWT_SECRET, or the content of AUTH_JWT_SECRET_FILE). */
  authJwtSecret: string | undefined;
  /** The file AUTH_JWT_SECRET was read from, if it was. */
  authJwtSecretFile: string | undefined;
  /** Public key (PEM file) bearer tokens are verified with: RS256, ES256 or EdDSA by the key's type. */
  authJwtPublicKey: JwtPublicKey | undefined;
  /** Required `iss` claim of bearer tokens. */
  authJwtIssuer: string | undefined;
  /** Required `aud` claim of bearer tokens. */
  authJwtAudience: string | undefined;
  /** Serve without authentication on an address beyond loopback. */
  allowAnonymous: boolean;
  /** Origins whose pages may call tus, /api/uploads and downloads (CORS); ['*'] any; empty: same origin only. */
  corsOrigins: readonly string[];
  /** Signed forms and hook payloads older than this (or dated this far ahead), in ms, are refused. */
  signatureToleranceMs: number;
  /** Files in DATA_DIR and the store group-readable (0640, directories 0750) for a completion service running as
   * another user. */
  sharedGroupRead: boolean;
  /** Duplicate uploads: 'md5' answers the existing record of the same owner, name and md5 instead of recording
   * another. */
  dedupe: 'off' | 'md5';
  /** PEM certificate (chain) served over HTTPS, with TLS_KEY. */
  tlsCert: string | undefined;
  /** PEM private key of TLS_CERT. */
  tlsKey: string | undefined;
  /** Trust X-Forwarded-Proto/-Host and Forwarded for upload URLs (tusd -behind-proxy). */
  behindProxy: boolean;
}

interface Setting {
  key: keyof Config;
  flag: string;
  env: string;
  /** What the setting is, for --help and the README; the default is added from `default` / `defaultDoc`. */
  doc: string;
  /**
   * The default, written once and as an operator would write it: the loader parses it like a given
   * value, --help shows it ('' shows as none). The README's default column is checked against it.
   */
  default?: string;
  /** The default when it follows from other settings (applied after them), e.g. DATA_DIR/uploads. */
  derive?: (config: Readonly<Partial<Config>>) => unknown;
  /** The default in words, when it is no value to write (derived, generated, or none with a meaning). */
  defaultDoc?: string;
  /** Parses the raw text; throws an Error whose message says what is wrong. */
  parse?: (raw: string) => unknown;
  /** A flag that may stand alone (`--hooks-fail-open`), meaning true. */
  boolean?: true;
  /** A flag that may be given several times; the values join as one comma-separated list. */
  repeatable?: true;
}

const integer =
  (min: number, max = Number.MAX_SAFE_INTEGER) =>
  (raw: string): number => {
    if (!/^\d+$/.test(raw.trim())) throw new Error(`must be a whole number, got "${raw}"`);
    const n = Number(raw);
    if (n < min || n > max) throw new Error(`must be between ${min} and ${max}, got ${n}`);
    return n;
  };

const oneOf =
  <T extends string>(allowed: readonly T[]) =>
  (raw: string): T => {
    const v = raw.trim().toLowerCase();
    if (!(allowed as readonly string[]).includes(v))
      throw new Error(`must be one of ${allowed.join(', ')}, got "${raw}"`);
    return v as T;
  };

const digestList = (raw: string): DigestName[] => {
  const names = raw
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  const unknown = names.filter((n) => !(DIGEST_NAMES as readonly string[]).includes(n));
  if (unknown.length) throw new Error(`unknown digest ${unknown.join(', ')}; known: ${DIGEST_NAMES.join(', ')}`);
  return [...new Set(names)] as DigestName[];
};

const regex = (raw: string): RegExp => {
  try {
    return new RegExp(raw);
  } catch (e) {
    throw new Error(`is not a valid regular expression: ${(e as Error).message}`);
  }
};

const url = (raw: string): string => {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new Error(`is not a URL: "${raw}"`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`must be http or https, got ${u.protocol}`);
  return u.toString();
};

/** An S3 bucket name as AWS's rules have it: 3-63 lower-case letters, digits, dots and hyphens. */
const s3BucketName = (raw: string): string => {
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(raw)) throw new Error(`is not an S3 bucket name: "${raw}"`);
  return raw;
};

/** How long a presigned S3 URL is valid, in ms: 0 (none), or what S3 allows (1 s to 7 days). */
const presignedTtl = (raw: string): number => {
  const ms = parseDuration(raw);
  if (ms !== 0 && (ms < 1000 || ms > 7 * 86_400_000))
    throw new Error('must be 0 or between 1s and 7d (what S3 allows)');
  return ms;
};

/** A path setting: resolved against the working directory once, at load. */
const filePath = (raw: string): string => path.resolve(raw);

/** The hooks tuspass ships (server/start/builtin-hooks.ts makes them), by the names HOOKS_BUILTIN takes. */
export const BUILTIN_HOOKS = ['complete-form'] as const;

/** HOOKS_BUILTIN: built-in hook names; `none` turns them all off. */
export function parseBuiltins(raw: string): string[] {
  const names = parseList(raw);
  if (names.length === 1 && names[0] === 'none') return [];
  const unknown = names.filter((n) => !(BUILTIN_HOOKS as readonly string[]).includes(n));
  if (unknown.length)
    throw new Error(`unknown built-in hook ${unknown.join(', ')}; known: ${BUILTIN_HOOKS.join(', ')}, or none`);
  // Each once: a name given twice would load the hook twice (complete-form posting every form twice).
  return [...new Set(names)];
}

export const SETTINGS: readonly Setting[] = [
  { key: 'host', flag: '--host', env: 'HOST', doc: 'address to listen on', default: '127.0.0.1' },
  { key: 'port', flag: '--port', env: 'PORT', doc: 'upload server port', default: '1080', parse: integer(0, 65535) },
  {
    key: 'completionPort',
    flag: '--completion-port',
    env: 'COMPLETION_PORT',
    doc: 'port of `completion-server` on its own',
    default: '1081',
    parse: integer(0, 65535),
  },
  { key: 'dataDir', flag: '--data-dir', env: 'DATA_DIR', doc: 'data directory', default: './data', parse: filePath },
  {
    key: 'storeDir',
    flag: '--store-dir',
    env: 'STORE_DIR',
    doc: 'shared upload store',
    defaultDoc: 'DATA_DIR/uploads',
    derive: (c) => path.join(c.dataDir!, 'uploads'),
    parse: filePath,
  },
  {
    key: 'redisUrl',
    flag: '--redis-url',
    env: 'REDIS_URL',
    doc: 'redis://… : upload locks shared by several upload servers, with handover and fencing',
    defaultDoc: 'none: in-memory locks',
    parse: (raw) => {
      if (!/^rediss?:\/\/./.test(raw)) throw new Error('must be a redis:// or rediss:// URL');
      return raw;
    },
  },
  {
    key: 'redisLockTtlMs',
    flag: '--redis-lock-ttl',
    env: 'REDIS_LOCK_TTL',
    doc: 'lease of an upload lock in Redis, renewed while held; a dead holder blocks its upload this long, e.g. 10s',
    default: '10s',
    parse: parsePositiveDuration,
  },
  {
    key: 'databaseUrl',
    flag: '--database-url',
    env: 'DATABASE_URL',
    doc: 'postgres://… : the catalog, the notice queue and the completion journal shared by several instances',
    defaultDoc: 'none: SQLite catalog, queue and journal in DATA_DIR',
    parse: (raw) => {
      if (!/^postgres(ql)?:\/\/./.test(raw)) throw new Error('must be a postgres:// or postgresql:// URL');
      return raw;
    },
  },
  {
    key: 's3Bucket',
    flag: '--s3-bucket',
    env: 'S3_BUCKET',
    doc: 'store uploads in this S3 bucket (multipart uploads) instead of STORE_DIR',
    defaultDoc: 'none: the file store in STORE_DIR',
    parse: s3BucketName,
  },
  {
    key: 's3Endpoint',
    flag: '--s3-endpoint',
    env: 'S3_ENDPOINT',
    doc: 'URL of an S3-compatible server (MinIO, Ceph radosgw, R2…)',
    defaultDoc: "AWS's endpoint of S3_REGION",
    parse: url,
  },
  {
    key: 's3Region',
    flag: '--s3-region',
    env: 'S3_REGION',
    doc: 'region S3 requests are signed for',
    default: 'us-east-1',
  },
  {
    key: 's3AccessKeyId',
    flag: '--s3-access-key-id',
    env: 'S3_ACCESS_KEY_ID',
    doc: 'S3 access key (with S3_SECRET_ACCESS_KEY)',
    defaultDoc: "the AWS SDK's credential chain (AWS_* variables, profile, instance role)",
  },
  {
    key: 's3SecretAccessKey',
    flag: '--s3-secret-access-key',
    env: 'S3_SECRET_ACCESS_KEY',
    doc: 'S3 secret key (with S3_ACCESS_KEY_ID)',
    defaultDoc: "the AWS SDK's credential chain",
  },
  {
    key: 's3ForcePathStyle',
    flag: '--s3-force-path-style',
    env: 'S3_FORCE_PATH_STYLE',
    doc: 'name the bucket in the path (http://host/bucket/key) rather than the host name, as most S3-compatible \
servers want',
    default: 'false',
    parse: parseBoolean,
    boolean: true,
  },
  {
    key: 's3Prefix',
    flag: '--s3-prefix',
    env: 'S3_PREFIX',
    doc: "prefix of the uploads' object keys in the bucket, e.g. uploads/",
    default: '',
    parse: (raw) => {
      if (raw.startsWith('/') || raw.length > 512)
        throw new Error('must not start with / and must be at most 512 characters');
      return raw;
    },
  },
  {
    key: 's3PartSize',
    flag: '--s3-part-size',
    env: 'S3_PART_SIZE',
    doc: 'smallest multipart part (5MiB-5GiB); larger when Upload-Length needs it to stay within 10,000 parts',
    default: '8MiB',
    parse: (raw) => {
      const n = parseSize(raw);
      if (n < 5 * 2 ** 20 || n > 5 * 2 ** 30) throw new Error('must be between 5MiB and 5GiB');
      return n;
    },
  },
  {
    key: 's3EqualParts',
    flag: '--s3-equal-parts',
    env: 'S3_EQUAL_PARTS',
    doc: 'every part but the last of one size, as some stores (Cloudflare R2) require; an upload of unknown length \
then uses S3_PART_SIZE',
    default: 'false',
    parse: parseBoolean,
    boolean: true,
  },
  {
    key: 's3PartsInFlight',
    flag: '--s3-parts-in-flight',
    env: 'S3_PARTS_IN_FLIGHT',
    doc: 'parts of one upload sent at once while its bytes arrive; memory per upload at most (this + 1) × part size',
    default: '4',
    parse: integer(1, 64),
  },
  {
    key: 's3TimeoutMs',
    flag: '--s3-timeout',
    env: 'S3_TIMEOUT',
    doc: 'a request to S3 that sends and receives nothing this long (1s-1h) fails: the upload answers 503 and keeps \
the parts S3 took',
    default: '60s',
    parse: (raw) => {
      const ms = parseDuration(raw);
      if (ms < 1000 || ms > 3_600_000) throw new Error('must be between 1s and 1h');
      return ms;
    },
  },
  {
    key: 's3DownloadRedirectMs',
    flag: '--s3-download-redirect',
    env: 'S3_DOWNLOAD_REDIRECT',
    doc: 'GET /files/<id> of a finished upload answers 302 to a presigned S3 URL valid this long (1s-7d), e.g. 15m; 0 \
streams the object through tuspass',
    default: '0',
    parse: presignedTtl,
  },
  {
    key: 's3FormUrlTtlMs',
    flag: '--s3-form-url-ttl',
    env: 'S3_FORM_URL_TTL',
    doc: "the completion form carries <field>.url, a presigned GET URL of the finished object valid this long \
(1s-7d) from the upload's finish, e.g. 1h; 0 sends no .url",
    default: '0',
    parse: presignedTtl,
  },
  {
    key: 'startupTimeoutMs',
    flag: '--startup-timeout',
    env: 'STARTUP_TIMEOUT',
    doc:
      'at start, how long Redis and PostgreSQL are waited for while they do not answer (tried again with back-off, ' +
      'each try logged), then exit 69; a wrong setting exits 78 at once, e.g. 60s',
    default: '60s',
    parse: parseDuration,
  },
  {
    key: 'completionSweepMs',
    flag: '--completion-sweep',
    env: 'COMPLETION_SWEEP',
    doc:
      'with REDIS_URL, how often each instance looks for finished uploads nobody announced (their instance died ' +
      'first) and announces them, e.g. 30s',
    default: '30s',
    parse: parsePositiveDuration,
  },
  {
    key: 'completionUrl',
    flag: '--completion-url',
    env: 'COMPLETION_URL',
    doc: 'URL the completion form is posted to',
    defaultDoc: 'the built-in completion service',
    parse: url,
  },
  {
    key: 'completionSecret',
    flag: '--completion-secret',
    env: 'COMPLETION_SECRET',
    doc: 'HMAC key for form signatures',
    defaultDoc: 'generated into DATA_DIR/completion-secret',
    parse: (raw) => {
      if (raw.length < 16) throw new Error('must be at least 16 characters');
      return raw;
    },
  },
  {
    key: 'digests',
    flag: '--digests',
    env: 'DIGESTS',
    doc: 'extra digests for the form: sha1,crc32; md5 and size always',
    default: '',
    parse: digestList,
  },
  {
    key: 'passFields',
    flag: '--pass-fields',
    env: 'PASS_FIELDS',
    doc: 'regular expression of metadata keys passed through',
    default: '^(name|description|terminal|submit)$',
    parse: regex,
  },
  {
    key: 'uploadFormPath',
    flag: '--upload-form-path',
    env: 'UPLOAD_FORM_PATH',
    doc: 'path of the multipart/form-data endpoint of the nginx upload module, also with a trailing slash',
    default: '/upload',
    parse: (raw) => {
      if (
        !/^\/[A-Za-z0-9._~-]+(?:\/[A-Za-z0-9._~-]+)*$/.test(raw) ||
        /^\/(?:files|api|complete|healthz|readyz|metrics|health|table|assets)(?:\/|$)/.test(raw)
      )
        throw new Error("must be a path like /upload, not one of tuspass's own");
      return raw;
    },
  },
  {
    key: 'resumableSessionsMax',
    flag: '--resumable-sessions-max',
    env: 'RESUMABLE_SESSIONS_MAX',
    doc: 'most resumable-mode (Session-ID) uploads open at once; more get 503',
    default: '1000',
    parse: integer(1),
  },
  {
    key: 'multipartFormFields',
    flag: '--multipart-form-fields',
    env: 'MULTIPART_FORM_FIELDS',
    doc: "per-file fields of the multipart form, <name>=<value> comma-separated with the upload module's variables",
    default: DEFAULT_FORM_FIELDS,
    defaultDoc: "django-nginx-upload's .name .content_type .path .md5 .size",
    parse: parseFormTemplates,
  },
  {
    key: 'cleanupStatuses',
    flag: '--cleanup-statuses',
    env: 'CLEANUP_STATUSES',
    doc: 'completion statuses that delete the upload',
    default: '400-501,505-599',
    parse: parseStatusRanges,
  },
  {
    key: 'completionTimeoutMs',
    flag: '--completion-timeout',
    env: 'COMPLETION_TIMEOUT_MS',
    doc: 'completion POST timeout in ms',
    default: '30000',
    parse: integer(1),
  },
  {
    key: 'retryMinMs',
    flag: '--retry-min',
    env: 'RETRY_MIN_MS',
    doc: 'first retry delay of a queued notice in ms',
    default: '1000',
    parse: integer(1),
  },
  {
    key: 'retryMaxMs',
    flag: '--retry-max',
    env: 'RETRY_MAX_MS',
    doc: 'longest retry delay in ms',
    default: '300000',
    parse: integer(1),
  },
  {
    key: 'catalogPath',
    flag: '--catalog',
    env: 'CATALOG_PATH',
    doc: 'SQLite catalog file',
    defaultDoc: 'DATA_DIR/catalog.sqlite',
    derive: (c) => path.join(c.dataDir!, 'catalog.sqlite'),
    parse: filePath,
  },
  {
    key: 'maxSize',
    flag: '--max-size',
    env: 'MAX_SIZE',
    doc: 'largest upload, e.g. 10GiB or bytes, 0 = no limit',
    default: '0',
    parse: parseSize,
  },
  {
    key: 'metrics',
    flag: '--metrics',
    env: 'METRICS',
    doc: 'count and serve Prometheus metrics at /metrics',
    default: 'true',
    parse: parseBoolean,
    boolean: true,
  },
  {
    key: 'metricsPort',
    flag: '--metrics-port',
    env: 'METRICS_PORT',
    doc: 'serve /metrics, /healthz, /readyz on this port of METRICS_HOST instead of PORT',
    defaultDoc: 'none',
    parse: integer(0, 65535),
  },
  {
    key: 'metricsHost',
    flag: '--metrics-host',
    env: 'METRICS_HOST',
    doc: 'address of the METRICS_PORT listener',
    default: '127.0.0.1',
  },
  {
    key: 'shutdownTimeoutMs',
    flag: '--shutdown-timeout',
    env: 'SHUTDOWN_TIMEOUT',
    doc: 'on SIGTERM/SIGINT, time requests in flight get before uploads are cut, bytes kept, e.g. 10s',
    default: '10s',
    parse: parseDuration,
  },
  {
    key: 'keepPartials',
    flag: '--keep-partials',
    env: 'KEEP_PARTIALS',
    doc: 'keep partial uploads once concatenated',
    default: 'false',
    parse: parseBoolean,
    boolean: true,
  },
  {
    key: 'ietfDraft',
    flag: '--ietf-draft',
    env: 'IETF_DRAFT',
    doc: 'serve the IETF Resumable Uploads draft (interop versions 3-8) beside tus on /files/',
    default: 'true',
    parse: parseBoolean,
    boolean: true,
  },
  {
    key: 'expireAfterMs',
    flag: '--expire-after',
    env: 'EXPIRE_AFTER',
    doc: 'unfinished uploads expire this long after their last write, e.g. 7d, 12h, 0 = never',
    default: '7d',
    parse: parseDuration,
  },
  {
    key: 'expireUnstartedAfterMs',
    flag: '--expire-unstarted-after',
    env: 'EXPIRE_UNSTARTED_AFTER',
    doc:
      'uploads that received no byte expire this long after their creation (their space is no longer held), e.g. ' +
      '1h, 0 = only EXPIRE_AFTER',
    default: '1h',
    parse: parseDuration,
  },
  {
    key: 'minFreeSpace',
    flag: '--min-free-space',
    env: 'MIN_FREE_SPACE',
    doc: 'free space kept in the store beyond what unfinished uploads are owed, e.g. 4MiB, 1GiB',
    default: '1GiB',
    parse: parseSize,
  },
  {
    key: 'ownerMaxOpen',
    flag: '--owner-max-open',
    env: 'OWNER_MAX_OPEN',
    doc:
      'most unfinished uploads one owner (token subject; client address without authentication) holds; more get ' +
      '429, 0 = no limit',
    default: '100',
    parse: integer(0),
  },
  {
    key: 'ownerMaxOwed',
    flag: '--owner-max-owed',
    env: 'OWNER_MAX_OWED',
    doc:
      "most bytes one owner's unfinished uploads may declare and not yet have sent: a share of the free space " +
      'above MIN_FREE_SPACE (50%) or a size (10GiB); more get 429, 100% or 0 = no limit; with S3_BUCKET a size only',
    // No disk holds the uploads in S3: a share of its free space means nothing there (load() refuses one).
    defaultDoc: '50%; with S3_BUCKET 0 (no limit)',
    derive: (c) => parseSizeOrShare(c.s3Bucket === undefined ? '50%' : '0'),
    parse: parseSizeOrShare,
  },
  {
    key: 'networkTimeoutMs',
    flag: '--network-timeout',
    env: 'NETWORK_TIMEOUT',
    doc: 'a request body idle this long is cut, bytes so far kept, e.g. 60s',
    default: '60s',
    parse: parsePositiveDuration,
  },
  {
    key: 'maxConcatParts',
    flag: '--max-concat-parts',
    env: 'MAX_CONCAT_PARTS',
    doc: 'most partial uploads one final upload may list',
    default: '100',
    parse: integer(1, 10_000),
  },
  {
    key: 'queueMax',
    flag: '--queue-max',
    env: 'QUEUE_MAX',
    doc: 'most notices the queue holds before new uploads get 503',
    default: '10000',
    parse: integer(1),
  },
  {
    key: 'hooksDir',
    flag: '--hooks-dir',
    env: 'HOOKS_DIR',
    doc: 'command hooks: directory of executables named after events',
    parse: filePath,
  },
  {
    key: 'hooksHttp',
    flag: '--hooks-http',
    env: 'HOOKS_HTTP',
    doc: 'HTTP hooks: URL the hook payloads are POSTed to',
    parse: url,
  },
  {
    key: 'hooksHttpRetry',
    flag: '--hooks-http-retry',
    env: 'HOOKS_HTTP_RETRY',
    doc: 'retries of a failed HTTP hook on blocking events',
    default: '3',
    parse: integer(0, 100),
  },
  {
    key: 'hooksHttpBackoffMs',
    flag: '--hooks-http-backoff',
    env: 'HOOKS_HTTP_BACKOFF',
    doc: 'wait between HTTP hook retries, e.g. 500ms, 2s',
    default: '1s',
    parse: parseDuration,
  },
  {
    key: 'hooksHttpForwardHeaders',
    flag: '--hooks-http-forward-headers',
    env: 'HOOKS_HTTP_FORWARD_HEADERS',
    doc: 'client headers copied onto HTTP hook requests, e.g. Authorization,Cookie',
    default: '',
    parse: parseList,
  },
  // An empty list is no choice of events: tusd's default stands.
  {
    key: 'hooksEnabledEvents',
    flag: '--hooks-enabled-events',
    env: 'HOOKS_ENABLED_EVENTS',
    doc: 'events for command and HTTP hooks',
    default: DEFAULT_ENABLED_EVENTS.join(','),
    parse: (raw) => {
      const events = parseEventList(raw);
      return events.length ? events : DEFAULT_ENABLED_EVENTS;
    },
  },
  {
    key: 'hooksDirEvents',
    flag: '--hooks-dir-events',
    env: 'HOOKS_DIR_EVENTS',
    doc: 'events for command hooks only',
    defaultDoc: 'HOOKS_ENABLED_EVENTS',
    parse: parseEventList,
  },
  {
    key: 'hooksHttpEvents',
    flag: '--hooks-http-events',
    env: 'HOOKS_HTTP_EVENTS',
    doc: 'events for HTTP hooks only',
    defaultDoc: 'HOOKS_ENABLED_EVENTS',
    parse: parseEventList,
  },
  {
    key: 'hooksModules',
    flag: '--hooks-module',
    env: 'HOOKS_MODULE',
    doc: 'module hooks: .ts/.js files, comma-separated or repeated',
    default: '',
    parse: parseList,
    repeatable: true,
  },
  {
    key: 'hooksBuiltin',
    flag: '--hooks-builtin',
    env: 'HOOKS_BUILTIN',
    doc: 'built-in module hooks, or none',
    default: 'complete-form',
    parse: parseBuiltins,
  },
  {
    key: 'hooksTimeoutMs',
    flag: '--hooks-timeout',
    env: 'HOOKS_TIMEOUT',
    doc: 'time a hook may take per event, e.g. 15s',
    default: '15s',
    parse: parsePositiveDuration,
  },
  {
    key: 'hooksFailOpen',
    flag: '--hooks-fail-open',
    env: 'HOOKS_FAIL_OPEN',
    doc: 'a failing blocking hook lets the request pass instead of being rejected',
    default: 'false',
    parse: parseBoolean,
    boolean: true,
  },
  {
    key: 'logFormat',
    flag: '--log-format',
    env: 'LOG_FORMAT',
    doc: 'json or text',
    defaultDoc: 'text on a terminal, json otherwise',
    derive: () => defaultLogFormat(),
    parse: oneOf(LOG_FORMATS),
  },
  {
    key: 'logLevel',
    flag: '--log-level',
    env: 'LOG_LEVEL',
    doc: 'fatal, error, warn, info, debug, trace or silent',
    default: 'info',
    parse: oneOf(LOG_LEVELS),
  },
  {
    key: 'progressHooksIntervalMs',
    flag: '--progress-hooks-interval',
    env: 'PROGRESS_HOOKS_INTERVAL',
    doc: 'interval of post-receive events per upload, e.g. 1s',
    default: '1s',
    parse: parsePositiveDuration,
  },
  {
    key: 'authJwtSecret',
    flag: '--auth-jwt-secret',
    env: 'AUTH_JWT_SECRET',
    doc: 'HS256 key of bearer tokens (at least 32 bytes); turns authentication on',
    parse: parseJwtSecret,
  },
  {
    key: 'authJwtSecretFile',
    flag: '--auth-jwt-secret-file',
    env: 'AUTH_JWT_SECRET_FILE',
    doc: 'file holding the HS256 key (instead of AUTH_JWT_SECRET)',
    parse: readJwtSecretFile,
  },
  {
    key: 'authJwtPublicKey',
    flag: '--auth-jwt-public-key',
    env: 'AUTH_JWT_PUBLIC_KEY',
    doc: 'PEM file of the public key of bearer tokens: RSA (RS256), EC P-256 (ES256) or Ed25519 (EdDSA)',
    parse: readJwtPublicKey,
  },
  {
    key: 'authJwtIssuer',
    flag: '--auth-jwt-issuer',
    env: 'AUTH_JWT_ISSUER',
    doc: 'required iss claim of bearer tokens',
    defaultDoc: 'not checked',
  },
  {
    key: 'authJwtAudience',
    flag: '--auth-jwt-audience',
    env: 'AUTH_JWT_AUDIENCE',
    doc: 'required aud claim of bearer tokens',
    defaultDoc: 'not checked',
  },
  {
    key: 'allowAnonymous',
    flag: '--allow-anonymous',
    env: 'ALLOW_ANONYMOUS',
    doc: 'serve without authentication on a HOST beyond loopback',
    default: 'false',
    parse: parseBoolean,
    boolean: true,
  },
  {
    key: 'corsOrigins',
    flag: '--cors-origins',
    env: 'CORS_ORIGINS',
    doc: 'origins whose pages may use tus and the API, comma-separated, or *',
    default: '',
    defaultDoc: 'none: same origin only',
    parse: parseOrigins,
  },
  // The tolerance receivers apply when not told (core/signature.ts), as a duration an operator writes.
  {
    key: 'signatureToleranceMs',
    flag: '--signature-tolerance',
    env: 'SIGNATURE_TOLERANCE',
    doc: 'signed forms and hook payloads older (or newer) than this are refused, e.g. 5m',
    default: `${DEFAULT_TOLERANCE_MS / 60_000}m`,
    parse: parsePositiveDuration,
  },
  {
    key: 'dedupe',
    flag: '--dedupe',
    env: 'DEDUPE',
    doc:
      'off, or md5: a finished upload with the same owner, name and md5 as a recorded one gets that record as its ' +
      'answer, and no second record',
    default: 'off',
    parse: oneOf(['off', 'md5'] as const),
  },
  {
    key: 'sharedGroupRead',
    flag: '--shared-group-read',
    env: 'SHARED_GROUP_READ',
    doc:
      'files 0640 and directories 0750 instead of 0600/0700, for a completion service running as another user in ' +
      'the group',
    default: 'false',
    parse: parseBoolean,
    boolean: true,
  },
  {
    key: 'tlsCert',
    flag: '--tls-certificate',
    env: 'TLS_CERT',
    doc: 'PEM certificate file: serve HTTPS (with TLS_KEY)',
    parse: filePath,
  },
  { key: 'tlsKey', flag: '--tls-key', env: 'TLS_KEY', doc: 'PEM private key file of TLS_CERT', parse: filePath },
  {
    key: 'behindProxy',
    flag: '--behind-proxy',
    env: 'BEHIND_PROXY',
    doc: 'trust X-Forwarded-Proto/-Host and Forwarded for upload URLs',
    default: 'false',
    parse: parseBoolean,
    boolean: true,
  },
];

/** A setting's default as --help and the README show it: its words, its value ('' is none), or nothing. */
export function defaultText(s: Setting): string | undefined {
  return s.defaultDoc ?? (s.default === '' ? 'none' : s.default);
}

/** A setting's line of --help: what it is, and its default. */
export function settingHelp(s: Setting): string {
  const shown = defaultText(s);
  return shown === undefined ? s.doc : `${s.doc} (default ${shown})`;
}

/** Where the complete-form hook posts: COMPLETION_URL, else the completion service on COMPLETION_PORT of this
 * machine. */
export const completionUrlOf = (config: Pick<Config, 'completionUrl' | 'completionPort'>): string =>
  config.completionUrl ?? `http://127.0.0.1:${config.completionPort}/complete/`;

/** An argument no setting (and not the command) takes, as every command names it. */
export const unknownArgument = (arg: string, help = 'tuspass --help'): string =>
  `unknown option or argument "${arg}" (see ${help})`;

export class ConfigError extends Error {
  /**
   * `logFormat`: the LOG_FORMAT the refused configuration asked for (or the default), so the refusal
   * reads as the command's other output would have.
   */
  constructor(
    readonly problems: string[],
    readonly logFormat?: LogFormat,
  ) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Reads flags (which win) and environment variables. Returns the remaining positional
 * arguments and unknown flags separately so the CLI can complain about them. When the
 * configuration is refused, unknown flags are among the problems named (`help` says where to
 * look them up): a person fixing a setting learns of the misspelt flag in the same run.
 */
export function load(
  env: Record<string, string | undefined>,
  argv: readonly string[] = [],
  help = 'tuspass --help',
): { config: Config; rest: string[] } {
  const problems: string[] = [];
  const raw = new Map<keyof Config, { text: string; source: string }>();
  for (const s of SETTINGS) {
    const v = env[s.env];
    // Empty or blank is unset (HOST= in a compose file): the default, never a parse of nothing.
    if (v !== undefined && v.trim() !== '') raw.set(s.key, { text: v, source: s.env });
  }
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [name, inline] =
      arg.startsWith('--') && arg.includes('=')
        ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
        : [arg, undefined];
    const s = SETTINGS.find((x) => x.flag === name);
    if (!s) {
      rest.push(arg);
      continue;
    }
    // A boolean flag standing alone (end of line, or another flag next) means true.
    const value =
      inline ?? (s.boolean && (argv[i + 1] === undefined || argv[i + 1]!.startsWith('--')) ? 'true' : argv[++i]);
    const earlier = raw.get(s.key);
    if (value === undefined) problems.push(`${s.flag}: needs a value`);
    // An empty or blank value (`--host=`, often a shell variable that was not set) is no choice: refused, as it
    // would otherwise parse to something else than the default (all interfaces, the working directory,
    // every metadata key passed, no built-in hooks). In the environment, '' is unset: the default.
    else if (value.trim() === '') problems.push(`${s.flag}: needs a value (leave the flag out for the default)`);
    else if (s.repeatable && earlier?.source === s.flag)
      raw.set(s.key, { text: `${earlier.text},${value}`, source: s.flag });
    else raw.set(s.key, { text: value, source: s.flag });
  }

  const values: Partial<Record<keyof Config, unknown>> = {};
  for (const s of SETTINGS) {
    const r = raw.get(s.key);
    if (!r) continue;
    try {
      values[s.key] = s.parse ? s.parse(r.text) : r.text;
    } catch (e) {
      problems.push(`${r.source}: ${(e as Error).message}`);
    }
  }
  const v = values as Partial<Config>;
  if (v.retryMinMs !== undefined && v.retryMaxMs !== undefined && v.retryMinMs > v.retryMaxMs) {
    problems.push(`RETRY_MIN_MS (${v.retryMinMs}) is larger than RETRY_MAX_MS (${v.retryMaxMs})`);
  }
  if ((v.s3AccessKeyId === undefined) !== (v.s3SecretAccessKey === undefined))
    problems.push(
      'S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY go together: set both or neither (neither: the AWS SDK finds \
credentials itself)',
    );
  if ((v.s3Endpoint ?? v.s3AccessKeyId ?? v.s3Prefix) !== undefined && v.s3Bucket === undefined)
    problems.push('S3_ENDPOINT, S3_ACCESS_KEY_ID and S3_PREFIX take effect only with S3_BUCKET: set it');
  if ((v.s3FormUrlTtlMs ?? 0) > 0 && v.s3Bucket === undefined)
    problems.push('S3_FORM_URL_TTL: a presigned URL is of an object in S3: set S3_BUCKET');
  if (v.s3Bucket !== undefined && v.ownerMaxOwed !== undefined && 'share' in v.ownerMaxOwed && v.ownerMaxOwed.share < 1)
    problems.push(
      'OWNER_MAX_OWED: a share of the free space means nothing with S3_BUCKET (no disk holds the uploads): give a \
size (e.g. 10GiB), or 0 for no limit',
    );
  if ((v.tlsCert === undefined) !== (v.tlsKey === undefined))
    problems.push('TLS_CERT and TLS_KEY go together: set both or neither');
  // One source of keys: a token must not verify under one key while the operator believes another rules.
  if (v.authJwtSecret !== undefined && v.authJwtSecretFile !== undefined)
    problems.push('AUTH_JWT_SECRET and AUTH_JWT_SECRET_FILE are both set: give one');
  if ((v.authJwtSecret ?? v.authJwtSecretFile) !== undefined && v.authJwtPublicKey !== undefined) {
    problems.push(
      `${raw.has('authJwtSecret') ? 'AUTH_JWT_SECRET' : 'AUTH_JWT_SECRET_FILE'} and AUTH_JWT_PUBLIC_KEY are both ` +
        'set: tokens are verified with a secret (HS256) or a public key, not both',
    );
  }
  if (problems.length) {
    const unknown = rest.filter((a) => a.startsWith('-')).map((a) => unknownArgument(a, help));
    throw new ConfigError([...problems, ...unknown], (values.logFormat as LogFormat | undefined) ?? defaultLogFormat());
  }

  // Defaults, each from its setting: written values first (parsed as given ones), then the derived.
  for (const s of SETTINGS)
    if (values[s.key] === undefined && s.default !== undefined)
      values[s.key] = s.parse ? s.parse(s.default) : s.default;
  for (const s of SETTINGS) if (values[s.key] === undefined && s.derive) values[s.key] = s.derive(v);
  // AUTH_JWT_SECRET_FILE parses to the key it holds: the key is the secret, the setting keeps the file's path.
  if (v.authJwtSecretFile !== undefined) {
    values.authJwtSecret = v.authJwtSecretFile;
    values.authJwtSecretFile = path.resolve(raw.get('authJwtSecretFile')!.text);
  }
  const config = {} as Record<keyof Config, unknown>;
  for (const s of SETTINGS) config[s.key] = values[s.key];
  return { config: Object.freeze(config as Config), rest };
}

/** A config for tests and embedding: defaults, then the given fields. */
export function configFor(overrides: Partial<Config> & { dataDir: string }): Config {
  const { config } = load({ DATA_DIR: overrides.dataDir });
  return Object.freeze({ ...config, ...overrides });
}
