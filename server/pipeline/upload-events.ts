// Where the upload server meets the hooks: one function per moment of an upload, used by every
// route's handlers, so every path runs the same events.
import fsp from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import type { Upload } from '@tus/utils';
import { HookRejection, type HookRunner } from '../../hooks/runner.ts';
import type { HookAuth, HookEventType, HookHTTPRequest, HookResponse, HookUpload } from '../../hooks/types.ts';
import { finishSeconds } from '../ops/metrics.ts';
import type { ConcatInfo, UploadStore } from '../backends/store/upload-store.ts';
import type { Log } from '../../core/logger.ts';
import { requestIdOf } from '../http/request-id.ts';
import { OBJECT_LOCATION, requestIdOfHeaders, UPLOAD_ID } from '../../core/wire.ts';
import { principalOf } from '../auth/principal.ts';
import { ERRORS, TuspassError } from '../../core/errors.ts';
import { errorText } from '../../core/logger.ts';
import { HookRefusal } from '../http/error-answer.ts';

/** An answer to the client: status, body, headers (tusd's hook answer, as our handlers apply it). */
export interface TusAnswer {
  status_code?: number;
  body?: string;
  headers?: Record<string, string>;
}

export function answerOf(response: HookResponse, fallbackStatus?: number): TusAnswer {
  const http = response.HTTPResponse ?? {};
  return { status_code: http.StatusCode ?? fallbackStatus, body: http.Body ?? '', headers: http.Header ?? {} };
}

/** A hook's rejection as the error every tus route answers with the hook's own status, body and headers. */
export function rejectionError(rejection: HookRejection, fallbackStatus: number): HookRefusal {
  const answer = answerOf(rejection.response, fallbackStatus);
  return new HookRefusal(answer.status_code ?? fallbackStatus, answer.body || `${rejection.message}\n`, answer.headers);
}

/** The verified caller of the request a hook payload was made from (httpRequestOf), for Event.Auth. */
const CALLERS = new WeakMap<HookHTTPRequest, HookAuth>();

/** Event.Auth of a payload made from this request: the verified subject and scopes, or null. */
export const authOfRequest = (http: HookHTTPRequest): HookAuth | null => CALLERS.get(http) ?? null;

export function httpRequestOf(req: IncomingMessage): HookHTTPRequest {
  const http = httpRequestFields(req);
  const caller = principalOf(req);
  if (caller)
    CALLERS.set(http, {
      Subject: caller.sub,
      Scopes: [...caller.scopes],
      ...(caller.maxSize !== undefined && { MaxSize: caller.maxSize }),
    });
  return http;
}

function httpRequestFields(req: IncomingMessage): HookHTTPRequest {
  const header: Record<string, string[]> = {};
  for (const [key, value] of Object.entries(req.headers)) {
    if (value !== undefined) header[key] = Array.isArray(value) ? value : [value];
  }
  const socket = req.socket;
  return {
    Method: req.method ?? '',
    URI: req.url ?? '',
    RemoteAddr: socket?.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort ?? 0}` : '',
    Header: header,
  };
}

export type StopListener = (response: HookResponse) => void;

export interface UploadEventsOptions {
  /** Back-off of a completion handled again after a failure, in ms (RETRY_MIN_MS, RETRY_MAX_MS). */
  retryMinMs?: number;
  retryMaxMs?: number;
  log?: Log;
}

/** A completion to handle again: its whole handling, or only its journal line. */
interface Redo {
  what: 'finish' | 'journal';
  attempts: number;
  timer: NodeJS.Timeout;
}

const present = (file: string) =>
  fsp.stat(file).then(
    () => true,
    () => false,
  );

/** Where a hook reads the bytes: the file, or (S3 store) the object, as tusd's filestore and s3store say it. */
export function storageOf(path: string): HookUpload['Storage'] {
  const s3 = OBJECT_LOCATION.exec(path);
  return s3
    ? { Type: 's3store', Bucket: s3[1]!, Key: s3[2]!, Path: path }
    : { Type: 'filestore', Path: path, InfoPath: `${path}.json` };
}

export class UploadEvents {
  /** PATCHes in progress that a post-receive hook may stop (StopUpload), by upload id. */
  private readonly stoppable = new Map<string, StopListener>();
  /** Finished uploads whose completion failed here (a hook failed, the disk was full), by upload id. */
  private readonly redo = new Map<string, Redo>();
  private closed = false;
  private readonly log: Log;

  constructor(
    private readonly store: UploadStore,
    private readonly hooks: HookRunner,
    private readonly options: UploadEventsOptions = {},
  ) {
    hooks.onStopUpload((id, response) => this.stoppable.get(id)?.(response));
    this.log = options.log ?? console.error;
  }

  /** Stops the retries of failed completions (the journal lacks them: the next start handles them). */
  close(): void {
    this.closed = true;
    for (const r of this.redo.values()) clearTimeout(r.timer);
    this.redo.clear();
  }

  /** Whether this upload's completion failed and waits to be handled again (for status answers and tests). */
  completionPending(id: string): boolean {
    return this.redo.has(id);
  }

  /** Registers the PATCH writing this upload as the one a StopUpload answer stops; returns the unregister. */
  whileWriting(id: string, onStop: StopListener): () => void {
    this.stoppable.set(id, onStop);
    return () => {
      if (this.stoppable.get(id) === onStop) this.stoppable.delete(id);
    };
  }

  hookUpload(upload: Upload, concat?: ConcatInfo, withStorage = true): HookUpload {
    const meta: Record<string, string> = {};
    for (const [k, v] of Object.entries(upload.metadata ?? {})) if (v !== null && v !== undefined) meta[k] = v;
    const path = withStorage ? this.store.location(upload.id) : undefined;
    return {
      ID: upload.id,
      Size: upload.size ?? 0,
      SizeIsDeferred: upload.size === undefined,
      Offset: upload.offset,
      MetaData: meta,
      IsPartial: concat?.kind === 'partial',
      IsFinal: concat?.kind === 'final',
      PartialUploads: concat?.kind === 'final' ? concat.parts : null,
      Storage: path ? storageOf(path) : null,
    };
  }

  /**
   * pre-create: may reject (thrown as an error carrying the hook's status and body), change the
   * metadata, or choose the id. Returns the id and metadata to create the upload with.
   */
  async preCreate(
    http: HookHTTPRequest,
    upload: Upload,
    concat?: ConcatInfo,
  ): Promise<{ id: string; metadata: Upload['metadata'] }> {
    if (!this.hooks.wants('pre-create')) return { id: upload.id, metadata: upload.metadata };
    let answer: HookResponse;
    try {
      answer = await this.hooks.block({
        Type: 'pre-create',
        Event: { Upload: this.hookUpload(upload, concat, false), HTTPRequest: http, Auth: authOfRequest(http) },
      });
    } catch (e) {
      if (e instanceof HookRejection) throw rejectionError(e, 400);
      throw e;
    }
    const wanted = answer.ChangeFileInfo?.ID;
    if (wanted !== undefined && !UPLOAD_ID.test(wanted)) {
      throw new TuspassError(
        ERRORS.ERR_HOOK_FAILED,
        'the pre-create hook chose an invalid upload id',
        `ChangeFileInfo.ID ${JSON.stringify(wanted)}`,
      );
    }
    // Creating opens the file for writing and writes a new info file: under an existing upload's id
    // it would empty that upload (someone else's, with a hook that derives ids from metadata). The
    // store says whether its bytes are there (the file, or the S3 store's record: its location is no
    // path to stat, and a final chosen under one of its partials' ids then waited on that partial's
    // lock, held by its own request); a file store's info file alone is half a creation, taken too.
    if (wanted !== undefined && (await this.idInUse(wanted))) {
      throw new TuspassError(
        ERRORS.ERR_HOOK_FAILED,
        'the pre-create hook chose the id of an existing upload',
        `ChangeFileInfo.ID ${JSON.stringify(wanted)}`,
      );
    }
    return { id: wanted ?? upload.id, metadata: answer.ChangeFileInfo?.MetaData ?? upload.metadata };
  }

  /** Whether an upload has this id in the store. */
  private async idInUse(id: string): Promise<boolean> {
    if ((await this.store.written(id)) !== undefined) return true;
    const path = this.store.location(id);
    return !OBJECT_LOCATION.test(path) && (await present(`${path}.json`));
  }

  /**
   * The upload is complete: pre-finish (the complete-form hook among them) decides the client's
   * answer; a rejection removes the upload. Then post-finish is queued and the journal noted.
   * "A finished upload is announced exactly once, the moment it can be": a handling that fails (a
   * hook failed or timed out, the form could neither be posted nor queued because the disk is full)
   * is tried again here with back-off until it succeeds or the upload is gone, without a restart;
   * a journal line that cannot be written after a successful handling is kept in memory and written
   * later, and the client's answer is the handling's, not a 500 (a restart meanwhile only repeats
   * the announcement, which the completion service drops by upload id).
   */
  async finish(http: HookHTTPRequest, upload: Upload, concat?: ConcatInfo): Promise<TusAnswer & { handled: boolean }> {
    const started = performance.now();
    let outcome: TusAnswer & { handled: boolean };
    try {
      outcome = await this.handleCompletion(http, upload, concat);
    } catch (e) {
      this.later(upload.id, 'finish', http);
      throw e;
    }
    if (!outcome.handled) {
      this.later(upload.id, 'finish', http);
      return outcome;
    }
    this.settle(upload.id);
    finishSeconds.observe((performance.now() - started) / 1000);
    await this.noteHandled(upload.id, http);
    return outcome;
  }

  private async handleCompletion(
    http: HookHTTPRequest,
    upload: Upload,
    concat?: ConcatInfo,
  ): Promise<TusAnswer & { handled: boolean }> {
    const hookUpload = {
      ...this.hookUpload(upload, concat),
      Digests: await this.store.digests(upload.id, upload.offset),
      Owner: (await this.store.ownerOf(upload.id)) ?? '',
    };
    // Once per upload: not again when a failed completion is handled again.
    if (!this.redo.has(upload.id)) this.logFinished(http, upload, hookUpload.Digests.md5);
    const request = {
      Type: 'pre-finish' as const,
      Event: { Upload: hookUpload, HTTPRequest: http, Auth: authOfRequest(http) },
    };
    let answer: TusAnswer = {};
    try {
      if (this.hooks.wants('pre-finish')) answer = answerOf(await this.hooks.block(request), 204);
    } catch (e) {
      if (!(e instanceof HookRejection)) throw e;
      // A refusal (RejectUpload) removes the upload: handled. A hook that failed or timed out
      // answered nothing: the upload stays unannounced, off the journal, and is handled again.
      if (!e.response.RejectUpload) return { ...answerOf(e.response, 500), handled: false };
      await this.store.remove(upload.id);
      return { ...answerOf(e.response, 400), handled: true };
    }
    this.hooks.notify({ ...request, Type: 'post-finish' });
    return { ...answer, handled: true };
  }

  private logFinished(http: HookHTTPRequest, upload: Upload, md5: string): void {
    const size = upload.offset;
    const created = upload.creation_date ? Date.parse(upload.creation_date) : NaN;
    const seconds = Number.isFinite(created) ? Math.max(0, (Date.now() - created) / 1000) : undefined;
    // Since creation: pauses and resumes count, as a person waiting for the file sees it.
    const mbps = seconds ? Math.round((size / 1e6 / seconds) * 100) / 100 : undefined;
    this.log(
      `upload ${upload.id} finished: ${size} ` +
        `bytes${seconds === undefined ? '' : ` in ${seconds.toFixed(1)} s (${mbps ?? '-'} MB/s)`}, md5 ${md5}`,
      {
        event: 'upload.finished',
        upload_id: upload.id,
        request_id: requestIdOfHeaders(http.Header),
        size,
        duration_s: seconds === undefined ? undefined : Math.round(seconds * 1000) / 1000,
        mb_per_s: mbps,
        md5,
      },
    );
  }

  /** Notes the handled completion in the journal; a failed write is retried, never answered as a failure. */
  private async noteHandled(id: string, http: HookHTTPRequest): Promise<void> {
    try {
      await this.store.completionHandled(id);
      this.settle(id);
    } catch (e) {
      this.log(
        `completion: upload ${id} was handled but the completion journal could not be written (${errorText(e)}); ` +
          'trying again',
      );
      this.later(id, 'journal', http);
    }
  }

  private settle(id: string): void {
    clearTimeout(this.redo.get(id)?.timer);
    this.redo.delete(id);
  }

  /** Schedules the upload's completion (or only its journal line) again, backing off from RETRY_MIN_MS to
   * RETRY_MAX_MS. */
  private later(id: string, what: Redo['what'], http: HookHTTPRequest): void {
    if (this.closed) return;
    const prev = this.redo.get(id);
    clearTimeout(prev?.timer);
    const attempts = prev?.what === what ? prev.attempts + 1 : 1;
    const min = this.options.retryMinMs ?? 1000;
    const delay = Math.min(this.options.retryMaxMs ?? 300_000, min * 2 ** Math.min(attempts - 1, 30));
    const timer = setTimeout(() => void this.again(id, what, http), delay);
    timer.unref();
    this.redo.set(id, { what, attempts, timer });
  }

  private async again(id: string, what: Redo['what'], http: HookHTTPRequest): Promise<void> {
    if (this.closed) return;
    if (what === 'journal') return this.noteHandled(id, http);
    let upload: Upload;
    let concat: ConcatInfo | undefined;
    try {
      upload = await this.store.getUpload(id);
      concat = await this.store.concatOf(id);
    } catch (e) {
      if ((e as { status_code?: number }).status_code === 404) {
        this.log(`completion: upload ${id} is gone; no longer handling its completion`);
        this.settle(id);
        // Removed by another instance (an expiry, a DELETE of its record): its claim goes here.
        await this.store.settled(id);
      } else {
        this.log(`completion: upload ${id}: ${errorText(e)}`);
        this.later(id, what, http);
      }
      return;
    }
    this.log(`completion: handling upload ${id}'s completion again`);
    try {
      const { handled } = await this.finish(http, upload, concat);
      if (handled) this.log(`completion: upload ${id} handled`);
    } catch (e) {
      this.log(`completion: upload ${id}: ${errorText(e)}`);
    }
  }

  /** Whether a hook takes this event (asked once by the steps that skip the event otherwise: upload-access.ts). */
  wants(type: HookEventType): boolean {
    return this.hooks.wants(type);
  }

  /**
   * pre-access: may refuse the request (RejectAccess). A refusal with an HTTPResponse is relayed as the
   * hook wrote it (403 and the table's text where it left them out); one without is 403
   * ERR_ACCESS_DENIED in the route's own error form. A hook that failed or timed out refuses as on
   * every blocking event (ERR_HOOK_FAILED, ERR_HOOK_TIMEOUT). Called by the access step only.
   */
  async preAccess(http: HookHTTPRequest, upload: HookUpload, mode: 'read' | 'write'): Promise<void> {
    try {
      await this.hooks.block({
        Type: 'pre-access',
        Event: { Upload: upload, HTTPRequest: http, Auth: authOfRequest(http), Access: { Mode: mode } },
      });
    } catch (e) {
      if (!(e instanceof HookRejection)) throw e;
      if (!e.response.RejectAccess) throw rejectionError(e, 500);
      const written = e.response.HTTPResponse;
      if (!written) throw new TuspassError(ERRORS.ERR_ACCESS_DENIED);
      const { code, message } = ERRORS.ERR_ACCESS_DENIED;
      throw new HookRefusal(written.StatusCode ?? 403, written.Body || `${code}: ${message}\n`, written.Header ?? {});
    }
  }

  /** pre-terminate: may refuse the DELETE (403 unless the hook says otherwise). */
  async preTerminate(http: HookHTTPRequest, upload: Upload): Promise<void> {
    if (!this.hooks.wants('pre-terminate')) return;
    try {
      await this.hooks.block({
        Type: 'pre-terminate',
        Event: { Upload: this.hookUpload(upload), HTTPRequest: http, Auth: authOfRequest(http) },
      });
    } catch (e) {
      if (e instanceof HookRejection) throw rejectionError(e, 403);
      throw e;
    }
  }

  /** A new upload: one log line (its id, size, owner, the request), then post-create. */
  created(req: IncomingMessage, upload: Upload, concat?: ConcatInfo): void {
    const owner = principalOf(req)?.sub;
    const size = upload.size === undefined ? 'deferred' : `${upload.size} bytes`;
    this.log(
      `upload ${upload.id} created (${size}${concat ? `, ${concat.kind}` : ''}${owner ? `, owner ${owner}` : ''})`,
      {
        event: 'upload.created',
        upload_id: upload.id,
        request_id: requestIdOf(req),
        size: upload.size,
        concat: concat?.kind,
        owner,
      },
    );
    // The payload is made only for a hook that takes it: every creation passes here.
    if (this.hooks.wants('post-create'))
      this.notify('post-create', httpRequestOf(req), this.hookUpload(upload, concat));
  }

  notify(type: Exclude<HookEventType, `pre-${string}`>, http: HookHTTPRequest, upload: HookUpload): void {
    if (this.hooks.wants(type))
      this.hooks.notify({ Type: type, Event: { Upload: upload, HTTPRequest: http, Auth: authOfRequest(http) } });
  }
}
