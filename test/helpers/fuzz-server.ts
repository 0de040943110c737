// The one server of the fuzz suite (test/hostile-fuzz.test.ts): a real `tuspass start` child process,
// so a request that makes the process exit is seen as such (with node's report from its stderr) and
// not as the end of the test runner; raw exchanges on sockets; and the checks every entry point's
// properties share: the answer is well framed and never a 5xx but 503/507, the process is up, and
// the catalog holds only what a client finished, its files unchanged.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openRaw, parseResponse, type RawResponse } from './raw-http.ts';

const BIN = path.resolve('bin/tuspass.js');
/** How long one exchange may take before the connection counts as held (the server's NETWORK_TIMEOUT is 300 ms). */
const EXCHANGE_MS = 15_000;
/** What node writes when an exception reaches process level. */
const CRASH = /^Node\.js v\d+\.\d+\.\d+$|\bUncaught\b|Unhandled 'error' event/m;

export interface Exchange {
  /** The first final answer (interim 1xx skipped); undefined when the connection closed without one. */
  first?: RawResponse;
  /** The answer to the request sent after it on the same connection, when one was. */
  second?: RawResponse;
  raw: Buffer;
}

export interface CatalogRecord {
  id: string;
  upload_id: string;
  size: number;
  md5: string;
}

export class FuzzServer {
  url = '';
  readonly dataDir: string;
  readonly storeDir: string;
  private proc: ChildProcess | undefined;
  private stderr = '';
  /** The log of the processes before this one (a restart). */
  private before = '';
  private exited: string | undefined;
  /** Catalog ids of the uploads a client was told were finished (a 2xx answer carrying the record). */
  readonly finished = new Set<string>();
  /**
   * Files clients finished without reading an answer (they sent the whole body, then went): their
   * records may appear, one per file, known by md5.
   */
  private readonly unanswered = new Map<string, number>();
  readonly statuses = new Map<string, number>();

  constructor(readonly root: string) {
    this.dataDir = path.join(root, 'data');
    this.storeDir = path.join(this.dataDir, 'uploads');
  }

  get host(): string {
    return new URL(this.url).host;
  }

  /** Paths and names no error answer may show. */
  get leaks(): string[] {
    return [this.dataDir, this.storeDir, `${os.tmpdir()}/`, process.cwd()];
  }

  filePath(id: string): string {
    return path.join(this.storeDir, id);
  }

  async start(): Promise<void> {
    this.exited = undefined;
    this.before += this.stderr;
    this.stderr = '';
    const proc = spawn(process.execPath, [BIN, 'start', '--port', '0', '--data-dir', this.dataDir], {
      env: {
        ...process.env,
        LOG_FORMAT: 'json',
        COMPLETION_SECRET: 'fuzz-secret-0123456789',
        // A body that stops is cut soon (the exchanges below wait for the connection to close).
        NETWORK_TIMEOUT: '300ms',
        MIN_FREE_SPACE: '0',
        KEEP_PARTIALS: 'true',
        // Every run leaves unfinished uploads behind (all the client's: one address); the owners'
        // limits are met, but not so soon that few creations are left to fuzz.
        OWNER_MAX_OPEN: '5000',
        RESUMABLE_SESSIONS_MAX: '100000',
        RETRY_MIN_MS: '100',
        RETRY_MAX_MS: '1000',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    proc.stderr!.on('data', (c: Buffer) => (this.stderr += c.toString('utf8')));
    proc.once('exit', (code, signal) => (this.exited = `exited (code ${code}, signal ${signal})`));
    let out = '';
    this.url = await new Promise<string>((resolve, reject) => {
      proc.stdout!.on('data', (c: Buffer) => {
        out += c.toString('utf8');
        const m = /tus uploads on (http:\/\/[^ ]+)\/files\//.exec(out);
        if (m) resolve(m[1]!);
      });
      proc.once('exit', () => reject(new Error(`tuspass did not start: ${out}${this.stderr.slice(-4000)}`)));
    });
  }

  /** Stops the process (SIGTERM: the graceful stop) and waits for its exit. */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc || this.exited) return;
    const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGTERM');
    await gone;
    this.assertNoCrash();
  }

  kill(): void {
    if (this.proc && !this.exited) this.proc.kill('SIGKILL');
  }

  private assertNoCrash(): void {
    assert.doesNotMatch(this.stderr, CRASH, `the tuspass process crashed:\n${this.stderr.slice(-4000)}`);
  }

  /** The process is up and nothing reached its process level. */
  assertUp(what = ''): void {
    this.assertNoCrash();
    assert.equal(
      this.exited,
      undefined,
      `the tuspass process ${this.exited}${what ? ` after ${what}` : ''}:\n${this.stderr.slice(-4000)}`,
    );
  }

  /** Its log lines (JSON, one per event); `all`: those of the processes before it too. */
  logLines(all = false): Array<Record<string, unknown>> {
    const out: Array<Record<string, unknown>> = [];
    for (const line of (all ? this.before + this.stderr : this.stderr).split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        out.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // A line being written.
      }
    }
    return out;
  }

  /**
   * Waits for the first log line of this run matching `test` (an event the server says it reached);
   * fails after `timeoutMs` rather than wait for ever (a line that never comes is a finding, and a
   * hung suite tells nothing).
   */
  async logLine(
    test: (line: Record<string, unknown>) => boolean,
    what = 'a log line',
    timeoutMs = 60_000,
  ): Promise<Record<string, unknown>> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const found = this.logLines().find(test);
      if (found) return found;
      this.assertUp(`waiting for ${what}`);
      assert.ok(Date.now() < until, `${what} never came within ${timeoutMs} ms`);
      const proc = this.proc!;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, 1000);
        function done() {
          clearTimeout(timer);
          proc.stderr!.off('data', done);
          proc.off('exit', done);
          resolve();
        }
        proc.stderr!.on('data', done);
        proc.on('exit', done);
      });
    }
  }

  /**
   * Writes a request on its own connection; with `followUp`, a HEAD of `headPath` after it on the
   * same connection. Returns once the server closed the connection (every request here ends with
   * Connection: close, or the follow-up does); `cutAfter`: the client closes after that many bytes.
   */
  async exchange(
    wire: Buffer,
    options: { head?: boolean; followUp?: string; cutAfter?: number } = {},
  ): Promise<Exchange> {
    const conn = await openRaw(this.url);
    if (options.cutAfter !== undefined) {
      conn.socket.write(wire.subarray(0, options.cutAfter));
      await new Promise<void>((resolve) => conn.socket.write('', () => resolve()));
      conn.socket.destroy();
      return { raw: Buffer.alloc(0) };
    }
    conn.socket.write(wire);
    if (options.followUp)
      conn.socket.write(
        `HEAD ${options.followUp} HTTP/1.1\r\nHost: ${this.host}\r\nTus-Resumable: 1.0.0\r\nConnection: close\r\n\r\n`,
      );
    let timer: NodeJS.Timeout | undefined;
    const held = await Promise.race([
      conn.closed.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), EXCHANGE_MS))),
    ]);
    clearTimeout(timer);
    conn.socket.destroy();
    const raw = conn.received();
    if (held)
      throw new Error(
        `connection still open after ${EXCHANGE_MS} ms; received ` +
          `${JSON.stringify(raw.toString('latin1').slice(0, 300))}`,
      );
    if (raw.length === 0) return { raw };
    // Interim answers (100 Continue to an Expect) come first; then the answer.
    let at = 0;
    let first = parseResponse(raw, true, options.head);
    while (first && first.status < 200) {
      at += first.length;
      first = parseResponse(raw.subarray(at), true, options.head);
    }
    if (!first) throw new Error('no complete response');
    this.statuses.set(String(first.status), (this.statuses.get(String(first.status)) ?? 0) + 1);
    const rest = raw.subarray(at + first.length);
    if (!options.followUp) {
      // The request said Connection: close: anything after the answer is a framing error.
      assert.equal(rest.length, 0, `bytes after the answer: ${JSON.stringify(rest.toString('latin1').slice(0, 100))}`);
      return { first, raw };
    }
    if (/close/i.test(first.headers.connection ?? '') && rest.length === 0) return { first, raw };
    const second = parseResponse(rest, true, true);
    return { first, second, raw };
  }

  /**
   * The checks every answer passes: never a 5xx but the refusals by design (503 busy, 507 full),
   * never a stack, and an error answer never an HTML page nor a path of this machine. A 2xx answer
   * carrying catalog records (a completion) says which uploads its client finished.
   */
  checkAnswer(r: RawResponse, what: string): void {
    const text = r.body.toString('latin1');
    assert.ok(r.status < 500 || r.status === 503 || r.status === 507, `${what}: ${r.statusLine} ${text.slice(0, 300)}`);
    assert.doesNotMatch(text, /\n\s+at .+:\d+:\d+/, `${what}: a stack`);
    if (r.status >= 200 && r.status < 300) for (const id of recordIdsOf(text)) this.finished.add(id);
    // Error answers only: the page is HTML, and the catalog's records (/api/uploads) carry the store
    // path by contract.
    if (r.status < 400) return;
    assert.doesNotMatch(text, /<!DOCTYPE|<html/i, `${what}: an HTML page`);
    for (const leak of this.leaks) assert.ok(!text.includes(leak), `${what}: names ${leak}`);
  }

  /** Files a client sent whole and went without reading the answer: they may be recorded. */
  finishedUnanswered(md5s: string[]): void {
    for (const h of md5s) {
      this.unanswered.set(h, (this.unanswered.get(h) ?? 0) + 1);
      this.everUnanswered.add(h);
    }
  }

  private readonly everUnanswered = new Set<string>();

  /** Whether a file with these bytes was sent whole by a client that went unanswered. */
  sentUnanswered(md5: string): boolean {
    return this.everUnanswered.has(md5);
  }

  /** Requests whose client went mid-body: the server ends each with a line naming its request id. */
  readonly cut: string[] = [];

  /** Waits until the server has ended every request whose client went (its cleanup done). */
  async cutRequestsEnded(): Promise<void> {
    for (const id of this.cut) {
      const lines = () =>
        this.logLines(true)
          .filter((l) => l.request_id === id)
          .map((l) => JSON.stringify(l).slice(0, 400))
          .join('\n');
      await this.logLine(
        (l) => l.request_id === id && (l.event === 'request.dropped' || l.event === 'request.refused'),
        `the end of cut request ${id}`,
      ).catch((e: unknown) => {
        throw new Error(`${(e as Error).message}; the server's lines about it:\n${lines()}`);
      });
    }
  }

  async catalog(): Promise<CatalogRecord[]> {
    const all: CatalogRecord[] = [];
    for (let offset = 0; ; offset += 1000) {
      const res = await fetch(`${this.url}/api/uploads?limit=1000&offset=${offset}`);
      assert.equal(res.status, 200);
      const page = (await res.json()) as CatalogRecord[];
      all.push(...page);
      if (page.length < 1000) return all;
    }
  }

  /** Records whose file was read and found as recorded: the file as it was then (inode, size, mtime). */
  private readonly verified = new Map<string, string>();

  /**
   * Nothing announced that no client finished: every record of the catalog was named to a client as
   * finished, and its file holds the bytes the record says (size and md5) — read for new records;
   * with `all`, every record's file is also the very file read then, not written since.
   */
  async checkCatalog(after: string, all = false): Promise<CatalogRecord[]> {
    const records = await this.catalog();
    const stamp = (id: string) => {
      const st = fs.statSync(this.filePath(id), { throwIfNoEntry: false });
      return st ? `${st.ino}:${st.size}:${st.mtimeMs}` : 'gone';
    };
    for (const r of records) {
      const seen = this.verified.get(r.id);
      if (seen !== undefined) {
        if (all)
          assert.equal(
            stamp(r.upload_id),
            seen,
            `upload ${r.upload_id}: its file was replaced or written since it was recorded (after ${after})`,
          );
        continue;
      }
      const left = this.unanswered.get(r.md5) ?? 0;
      if (!this.finished.has(r.id) && left > 0) {
        this.unanswered.set(r.md5, left - 1);
        this.finished.add(r.id);
      }
      assert.ok(
        this.finished.has(r.id),
        `record ${r.id} (upload ${r.upload_id}, ${r.size} bytes, md5 ${r.md5}) announced, but no client was told ` +
          `it finished (after ${after}); the server's lines about it:\n${this.linesAbout(r.upload_id)}`,
      );
      const bytes = fs.readFileSync(this.filePath(r.upload_id));
      assert.equal(
        bytes.length,
        r.size,
        `upload ${r.upload_id}: ${bytes.length} bytes on disk, recorded ${r.size} (after ${after})`,
      );
      assert.equal(
        crypto.createHash('md5').update(bytes).digest('hex'),
        r.md5,
        `upload ${r.upload_id}: its bytes changed since it was recorded (after ${after})`,
      );
      this.verified.set(r.id, stamp(r.upload_id));
    }
    return records;
  }

  /** The log lines naming an upload, or the request that made it. */
  linesAbout(uploadId: string): string {
    const lines = this.logLines(true);
    const requests = new Set(
      lines.filter((l) => JSON.stringify(l).includes(uploadId) && l.request_id).map((l) => l.request_id),
    );
    return lines
      .filter((l) => JSON.stringify(l).includes(uploadId) || requests.has(l.request_id))
      .map((l) => JSON.stringify(l).slice(0, 400))
      .join('\n');
  }

  /** Upload ids in the store (their info files), for "nothing of it kept". */
  storedIds(): Set<string> {
    return new Set(
      fs
        .readdirSync(this.storeDir)
        .filter((n) => n.endsWith('.json'))
        .map((n) => n.slice(0, -5)),
    );
  }

  /** Lines the process logged at error level, and lines reading [object Object], by what they say (ids and numbers
   * aside), counted. */
  oddLogLines(): string[] {
    const kinds = new Map<string, number>();
    for (const l of this.logLines()) {
      if (l.level !== 'error' && l.level !== 'fatal' && !JSON.stringify(l).includes('[object Object]')) continue;
      const said = `${String(l.level)}: ${String(l.msg)
        .replace(/[0-9a-f]{32}|\d+/g, '#')
        .slice(0, 300)}`;
      kinds.set(said, (kinds.get(said) ?? 0) + 1);
    }
    return [...kinds].map(([said, n]) => `${n} × ${said}`);
  }
}

/** The catalog ids a completion answer carries (`id`, and `files[].id` for several). */
export function recordIdsOf(body: string): string[] {
  if (!body.startsWith('{')) return [];
  try {
    const json = JSON.parse(body) as { id?: unknown; message?: unknown; files?: Array<{ id?: unknown }> };
    if (typeof json.message !== 'string' || typeof json.id !== 'string') return [];
    return [json.id, ...(json.files ?? []).map((f) => f.id).filter((id): id is string => typeof id === 'string')];
  } catch {
    return [];
  }
}

/** The same completion answer's md5s, file by file. */
export function md5sOf(body: string): string[] {
  const json = JSON.parse(body) as { md5: string; files?: Array<{ md5: string }> };
  return json.files ? json.files.map((f) => f.md5) : [json.md5];
}
