// The server's log: pino, one line per event, JSON (for machines) or text (for a terminal).
// Every module takes a `Log`: `log(message, fields?)`. A plain `(line: string) => void` (console.error,
// a test's collector) is still one, and existing free-text lines stay as they were: an info line whose
// `msg` is the text. Events add fields: `event`, `upload_id`, `request_id` and what they measured.
// Why a synchronous destination and no pino transport: a transport runs in a worker thread with its
// own V8 heap, the memory the server bundle exists to save (docs/architecture.md, "How it runs").
// Text is formatted on this thread from pino's own JSON line, so both formats see the same record
// (levels, redaction) — and the text formatter costs a JSON.parse per line, per event, not per byte.
import pino from 'pino';

import type { LogFormat, LogLevel } from './log-settings.ts';

export interface LogFields {
  /** What happened, dotted: upload.created, upload.finished, completion.queued, request.refused… */
  event?: string;
  upload_id?: string;
  request_id?: string;
  /** Default info. */
  level?: Exclude<LogLevel, 'silent'>;
  [field: string]: unknown;
}

export type Log = (message: string, fields?: LogFields) => void;

export interface LoggerOptions {
  format: LogFormat;
  level: LogLevel;
  /**
   * Where lines go instead of stderr (tests, embedding): each event as one readable text line that
   * starts with its message, whatever `format` says.
   */
  sink?: (line: string) => void;
}

const REDACTED = '[redacted]';

/** Secrets that may sit in a free-text line (a URL's query, a header quoted in an error). */
const SECRET_PATTERNS: [RegExp, string][] = [
  // token=…, access_token=…, signature=… in a query or a fragment.
  [/([?&#;](?:[\w.-]*token|jwt|signature|sig|secret|password|key)=)[^&#\s"']*/gi, `$1${REDACTED}`],
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/g, `$1 ${REDACTED}`],
  [/\b(authorization|cookie|set-cookie|tuspass-signature|proxy-authorization)(["']?\s*[:=]\s*["']?)[^"'\n}]+/gi, `$1$2${REDACTED}`],
];

/** A text with anything that looks like a credential replaced. */
export function scrub(text: string): string {
  // Most lines have none of these words: one cheap test before the replacements.
  if (!/[?&#;=]|bearer|basic|authorization|cookie|signature/i.test(text)) return text;
  for (const [pattern, replacement] of SECRET_PATTERNS) text = text.replace(pattern, replacement);
  return text;
}

/** A request path for the log: the path only (queries carry tokens), scrubbed. */
export function pathForLog(url: string | undefined): string {
  const raw = url ?? '';
  const end = raw.search(/[?#]/);
  return scrub(end === -1 ? raw : raw.slice(0, end));
}

/** Fields whose values are never logged, wherever they appear in a record. */
const REDACT_PATHS = [
  'authorization', 'cookie', 'token', 'secret', 'signature',
  '*.authorization', '*.cookie', '*.token', '*.secret', '*.signature',
  'headers.authorization', 'headers.cookie', 'headers["tuspass-signature"]', 'headers["proxy-authorization"]',
  'Header.Authorization', 'Header.Cookie', 'Header.authorization', 'Header.cookie',
];

const TEXT_SKIP = new Set(['time', 'level', 'msg', 'pid', 'hostname']);

function textValue(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return /^[^\s"=]*$/.test(s) && s !== '' ? s : JSON.stringify(s);
}

/** One pino record as a readable line: `[time LEVEL] message key=value …`. */
export function formatText(record: Record<string, unknown>, withTime: boolean): string {
  const level = String(record.level ?? 'info');
  let line = String(record.msg ?? '');
  for (const [k, v] of Object.entries(record)) if (!TEXT_SKIP.has(k) && v !== undefined) line += ` ${k}=${textValue(v)}`;
  if (withTime) {
    const time = typeof record.time === 'string' ? record.time.slice(11, 23) : '';
    return `${time} ${level.toUpperCase().padEnd(5)} ${line}`;
  }
  return level === 'info' ? line : `${line} level=${level}`;
}

/** A destination pino writes whole JSON lines to, turned into text lines. */
function textDestination(write: (line: string) => void, withTime: boolean): pino.DestinationStream {
  return {
    write(json: string) {
      let record: Record<string, unknown>;
      try {
        record = JSON.parse(json) as Record<string, unknown>;
      } catch {
        return write(json.trimEnd());
      }
      write(formatText(record, withTime));
    },
  };
}

/** A Log on pino: to stderr (synchronously, no worker thread), or to the given sink as text lines. */
export function createLog(options: LoggerOptions): Log & { logger: pino.Logger } {
  const destination = options.sink
    ? textDestination(options.sink, false)
    : options.format === 'json'
      ? pino.destination({ fd: 2, sync: true })
      : textDestination((line) => process.stderr.write(`${line}\n`), true);
  const logger = pino(
    {
      level: options.level,
      base: options.sink ? undefined : { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: REDACTED },
    },
    destination,
  );
  const log = ((message: string, fields?: LogFields) => {
    const level = fields?.level ?? 'info';
    if (!logger.isLevelEnabled(level)) return;
    const text = scrub(message);
    if (!fields) return logger[level](text);
    const { level: _level, ...rest } = fields;
    for (const [k, v] of Object.entries(rest)) if (typeof v === 'string') rest[k] = scrub(v);
    logger[level](rest, text);
  }) as Log & { logger: pino.Logger };
  log.logger = logger;
  return log;
}
