// The server's log: pino, one line per event, JSON (for machines) or text (for a terminal).
// Every module takes a `Log`: `log(message, fields?)`. A plain `(line: string) => void` (console.error,
// a test's collector) is still one, and existing free-text lines stay as they were: an info line whose
// `msg` is the text. Events add fields: `event`, `upload_id`, `request_id` and what they measured.
// Why a synchronous destination and no pino transport: a transport runs in a worker thread with its
// own V8 heap, the memory the server bundle exists to save (docs/architecture.md, "How it runs").
// Text is formatted on this thread from pino's own JSON line, so both formats see the same record
// (levels, redaction) — and the text formatter costs a JSON.parse per line, per event, not per byte.
import fs from 'node:fs';
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
  /** The stream written (default stderr); stdout for what a command says it did (cli/main.ts). */
  fd?: 1 | 2;
}

const REDACTED = '[redacted]';

/** Secrets that may sit in a free-text line (a URL's query, a header quoted in an error). */
const SECRET_PATTERNS: [RegExp, string][] = [
  // token=…, access_token=…, signature=… in a query or a fragment.
  [/([?&#;](?:[\w.-]*token|jwt|signature|sig|secret|password|key)=)[^&#\s"']*/gi, `$1${REDACTED}`],
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/g, `$1 ${REDACTED}`],
  [
    /\b(authorization|cookie|set-cookie|tuspass-signature|proxy-authorization)(["']?\s*[:=]\s*["']?)[^"'\n}]+/gi,
    `$1$2${REDACTED}`,
  ],
];

/** A text with anything that looks like a credential replaced. */
export function scrub(text: string): string {
  // Every pattern needs a '=', a ':' or a space: ids, digests and event names have none.
  if (!/[=:\s]/.test(text)) return text;
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

/**
 * Any thrown value as text for a log line: an Error's message with its code (and its stack when
 * asked), a library's error object (@tus/server throws plain `{ status_code, body }` objects) by its
 * fields, and the cause of either. Every log line that names an error writes it through here, so
 * none reads `[object Object]` or `undefined`.
 */
export function errorText(e: unknown, options: { stack?: boolean } = {}, depth = 0): string {
  let text: string;
  let cause: unknown;
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    text = (options.stack && e.stack) || e.message || e.name;
    if ((typeof code === 'string' || typeof code === 'number') && !text.includes(String(code))) text += ` (${code})`;
    const detail = (e as { logDetail?: unknown }).logDetail;
    if (typeof detail === 'string' && detail) text += `; ${detail}`;
    cause = e.cause;
  } else if (typeof e === 'object' && e !== null) {
    const { status_code: status, body, message, cause: inner } = e as Record<string, unknown>;
    const words = typeof body === 'string' ? body.trim() : typeof message === 'string' ? message : undefined;
    if (words !== undefined) text = typeof status === 'number' ? `${status} ${words}` : words;
    else {
      try {
        text = JSON.stringify(e)?.slice(0, 500) ?? 'an object';
      } catch {
        text = `a ${(e as object).constructor?.name ?? 'null-prototype'} object`;
      }
    }
    cause = inner;
  } else text = String(e);
  // Causes nest (an error wrapping one wrapping another); a few levels say enough.
  if (cause !== undefined && cause !== null && depth < 3) text += `: ${errorText(cause, options, depth + 1)}`;
  return text;
}

/**
 * Fields whose values are never logged, wherever they appear in a record: at the top level, and one
 * level down under any field (a `headers` or `Header` object carries its own few more). Checked here
 * (redactFields) rather than by pino's `redact`: a wildcard path there (`*.token`) runs its redactor
 * on every field of every line, which cost more than the rest of a line's logging put together.
 */
const SECRET_FIELDS: readonly string[] = ['authorization', 'cookie', 'token', 'secret', 'signature'];
const SECRET_FIELD_SET = new Set(SECRET_FIELDS);
const SECRET_NESTED: Record<string, readonly string[]> = Object.assign(
  Object.create(null) as Record<string, readonly string[]>,
  {
    headers: [...SECRET_FIELDS, 'tuspass-signature', 'proxy-authorization'],
    Header: [...SECRET_FIELDS, 'Authorization', 'Cookie'],
  },
);

const has = (o: object, key: string) => Object.hasOwn(o, key);

/** The object with its secret fields censored: a copy when there is one, else the object itself. */
function redactObject(value: object, names: readonly string[]): object {
  let copy: Record<string, unknown> | undefined;
  for (const name of names) {
    if (!has(value, name)) continue;
    copy ??= Object.defineProperties(
      Object.create(Object.getPrototypeOf(value) as object | null),
      Object.getOwnPropertyDescriptors(value),
    ) as Record<string, unknown>;
    Object.defineProperty(copy, name, { value: REDACTED, enumerable: true, writable: true, configurable: true });
  }
  return copy ?? value;
}

/**
 * A line's own fields (already a copy), made safe to log in place: secret names censored, one level
 * down too (copies, never the caller's objects), and free-text strings scrubbed.
 */
function redactFields(fields: Record<string, unknown>): void {
  for (const key in fields) {
    const value = fields[key];
    if (SECRET_FIELD_SET.has(key)) fields[key] = REDACTED;
    else if (typeof value === 'string') fields[key] = scrub(value);
    else if (typeof value === 'object' && value !== null && !Array.isArray(value))
      fields[key] = redactObject(value, SECRET_NESTED[key] ?? SECRET_FIELDS);
  }
}

/** `,"time":"<ISO-8601>"` for pino, the date part kept for the second it stands for. */
let isoSecond = NaN;
let isoPrefix = '';
function isoTime(): string {
  const now = Date.now();
  const ms = now % 1000;
  const second = now - ms;
  if (second !== isoSecond) {
    isoSecond = second;
    isoPrefix = `,"time":"${new Date(second).toISOString().slice(0, 20)}`;
  }
  return `${isoPrefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z"`;
}

const TEXT_SKIP = new Set(['time', 'level', 'msg', 'pid', 'hostname']);

function textValue(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return /^[^\s"=]*$/.test(s) && s !== '' ? s : JSON.stringify(s);
}

/** One pino record as a readable line: `[time LEVEL] message key=value …`. */
export function formatText(record: Record<string, unknown>, withTime: boolean): string {
  const level = String(record.level ?? 'info');
  let line = String(record.msg ?? '');
  for (const [k, v] of Object.entries(record))
    if (!TEXT_SKIP.has(k) && v !== undefined) line += ` ${k}=${textValue(v)}`;
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

/** For waiting on a full pipe without spinning (Atomics.wait on a value that never changes). */
const NAP = new Int32Array(new SharedArrayBuffer(4));

/**
 * Writes all of `text` to `fd` now. A full non-blocking pipe (EAGAIN) is waited out, as sonic-boom
 * does; a closed one (EPIPE) ends logging, as pino's own destination does; anything else is thrown.
 */
function writeAllSync(fd: number, text: string, broken: () => void): void {
  let bytes: Buffer | undefined;
  let offset = 0;
  for (;;) {
    try {
      // Mostly one call with the string itself; a partial write goes on from the bytes.
      if (bytes) offset += fs.writeSync(fd, bytes, offset);
      else {
        offset = fs.writeSync(fd, text);
        if (offset === text.length && offset === Buffer.byteLength(text)) return;
        bytes = Buffer.from(text, 'utf8');
      }
      if (offset >= bytes.length) return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EPIPE') return broken();
      if (code !== 'EAGAIN') throw e;
      Atomics.wait(NAP, 0, 0, 10);
    }
  }
}

/**
 * stderr (or stdout) for JSON lines, shared by every logger of the process: the lines of one event-loop turn
 * are written together at the end of that turn (setImmediate), one write(2) instead of one per line
 * (the system call, and sonic-boom's bookkeeping around it, cost more than making the line). Still
 * synchronous and on this thread; what is waiting when the process exits (process.exit, an uncaught
 * exception) is written by the 'exit' handler, so only a kill -9 or an abort could lose one turn's lines.
 * Not pino's asynchronous destination, which batches as well (measured the same): at exit it flushes
 * with sonic-boom's flushSync, which retries every failed write — on a closed pipe (EPIPE: a log
 * collector gone, `tuspass start | head`) for ever, so the process never exits.
 */
const jsonDestinations = new Map<1 | 2, pino.DestinationStream>();
function jsonLines(fd: 1 | 2): pino.DestinationStream {
  const existing = jsonDestinations.get(fd);
  if (existing) return existing;
  let pending = '';
  let open = true;
  const flush = () => {
    if (pending === '') return;
    const text = pending;
    pending = '';
    if (open) writeAllSync(fd, text, () => (open = false));
  };
  process.on('exit', flush);
  const destination = {
    write(line: string) {
      if (pending === '') setImmediate(flush);
      pending += line;
    },
  };
  jsonDestinations.set(fd, destination);
  return destination;
}

/** A Log on pino: to stderr (synchronously, no worker thread), or to the given sink as text lines. */
export function createLog(options: LoggerOptions): Log & { logger: pino.Logger } {
  const stream = options.fd === 1 ? process.stdout : process.stderr;
  const destination = options.sink
    ? textDestination(options.sink, false)
    : options.format === 'json'
      ? jsonLines(options.fd ?? 2)
      : textDestination((line) => stream.write(`${line}\n`), true);
  const logger = pino(
    {
      level: options.level,
      base: options.sink ? undefined : { pid: process.pid },
      timestamp: isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
  const log = ((message: string, fields?: LogFields) => {
    const level = fields?.level ?? 'info';
    if (!logger.isLevelEnabled(level)) return;
    const text = scrub(message);
    if (!fields) return logger[level](text);
    const { level: _level, ...rest } = fields;
    redactFields(rest);
    logger[level](rest, text);
  }) as Log & { logger: pino.Logger };
  log.logger = logger;
  return log;
}
