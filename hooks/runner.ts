// Dispatches hook events to the configured handlers. Whether an event blocks is decided here, once,
// by its name (tusd: `pre-*` block and may reject, `post-*` are notices that never slow an upload).
// Notices go through the durable NoticeQueue: stored before anything is tried, retried with backoff
// until the handler takes them, delivered at least once with an id that stays the same on retries.
import crypto from 'node:crypto';
import { ERRORS, TuspassError, type ErrorEntry } from '../core/errors.ts';
import { hookErrorsTotal, hookInvocationsTotal } from './metrics.ts';
import type { Notices } from './notices.ts';
import type { Log } from '../core/logger.ts';
import { requestIdOfHeaders } from '../core/wire.ts';
import { isBlocking, type HookEventType, type HookHandler, type HookRequest, type HookResponse } from './types.ts';
import { errorText } from '../core/logger.ts';

export class HookRejection extends Error {
  constructor(
    readonly hook: string,
    readonly response: HookResponse,
  ) {
    super(`rejected by hook ${hook}`);
  }
}

class HookTimeout extends Error {}

export interface HookRunnerOptions {
  log?: Log;
  /** Where notices wait until delivered. Without one (embedding, unit tests) they are tried once, directly. */
  queue?: Notices;
  /** How long one handler may take on one event, in ms, unless the handler sets its own. Default 15000. */
  timeoutMs?: number;
  /** A blocking hook that fails or times out lets the request pass instead of rejecting it. Default false. */
  failOpen?: boolean;
  /**
   * The client request headers a notice keeps when it is stored in the queue (HOOKS_HTTP_FORWARD_HEADERS);
   * the others are left out of the stored payload, and credentials always (NEVER_STORED_HEADERS). Default none.
   */
  storedHeaders?: readonly string[];
}

/**
 * Never written to disk, even when named in HOOKS_HTTP_FORWARD_HEADERS: a queue file is read by
 * whoever can read DATA_DIR and outlives the request. Blocking hooks (never stored) still get them,
 * as tusd's do; notices carry the verified caller (Event.Auth) instead.
 */
export const NEVER_STORED_HEADERS: ReadonlySet<string> = new Set(['authorization', 'cookie', 'proxy-authorization']);

/** The payload as a queue file keeps it: only the headers named to keep, never credentials. */
export function storedPayload(request: HookRequest, keep: ReadonlySet<string>): HookRequest {
  const Header: Record<string, string[]> = {};
  for (const [name, values] of Object.entries(request.Event.HTTPRequest.Header)) {
    const lower = name.toLowerCase();
    if (keep.has(lower) && !NEVER_STORED_HEADERS.has(lower)) Header[name] = values;
  }
  return { ...request, Event: { ...request.Event, HTTPRequest: { ...request.Event.HTTPRequest, Header } } };
}

/** A notice as the queue stores it: which handler it is for, and the payload. */
interface HookNotice {
  handler: string;
  request: HookRequest;
}

export type StopUploadListener = (uploadId: string, response: HookResponse) => void;

const KIND_PREFIX = 'hook:';

export class HookRunner {
  private readonly log: Log;
  private readonly stopListeners: StopUploadListener[] = [];
  private readonly storedHeaders: ReadonlySet<string>;
  /** post-receive notices left out because the queue was at its cap (counted for the log). */
  private droppedProgress = 0;

  constructor(
    private readonly handlers: readonly HookHandler[],
    private readonly options: HookRunnerOptions = {},
  ) {
    this.log = options.log ?? console.error;
    this.storedHeaders = new Set((options.storedHeaders ?? []).map((h) => h.toLowerCase()));
    const queue = options.queue;
    if (!queue) return;
    for (const handler of handlers) {
      queue.handle(KIND_PREFIX + handler.name, (notice) =>
        this.deliver(handler, (notice.payload as HookNotice).request, notice.id),
      );
    }
    // Notices left from a run whose configuration had a handler this one lacks: nobody to give them to.
    queue.handle(`${KIND_PREFIX}*`, async (notice) => {
      this.log(
        `hooks: dropping ${(notice.payload as HookNotice).request.Type} notice ${notice.id}: \
hook ${(notice.payload as HookNotice).handler} is no longer configured`,
      );
      return { done: true };
    });
  }

  /** The handlers, in the order they run (for `tuspass hooks test` and the start-up log). */
  list(): readonly HookHandler[] {
    return this.handlers;
  }

  async setup(): Promise<void> {
    for (const h of this.handlers) await h.setup?.();
  }

  async close(): Promise<void> {
    for (const h of this.handlers) await h.close?.();
  }

  wants(type: HookEventType, skip?: ReadonlySet<HookHandler>): boolean {
    return this.handlers.some((h) => h.events.includes(type) && !skip?.has(h));
  }

  /**
   * Called when a post-receive hook answers StopUpload, with the upload id and the hook's answer
   * (HTTPResponse for the client): the upload server ends that upload's PATCH.
   */
  onStopUpload(listener: StopUploadListener): void {
    this.stopListeners.push(listener);
  }

  /**
   * A blocking event: every subscribed handler in order; their answers merge (later ones win field by
   * field). The first rejection stops the chain and is thrown as a HookRejection. A handler that fails
   * or times out rejects too (fail closed: 500 ERR_HOOK_FAILED or 504 ERR_HOOK_TIMEOUT, naming the
   * hook) unless failOpen is set; such a rejection never asks for the upload to be removed.
   */
  async block(request: HookRequest, options: { skip?: ReadonlySet<HookHandler> } = {}): Promise<HookResponse> {
    if (!isBlocking(request.Type)) throw new Error(`${request.Type} is not a blocking event`);
    const merged: HookResponse = {};
    // skip: handlers a path replaces with its own work, by identity (the multipart paths deliver one
    // completion form per request themselves, where the complete-form hook would post one per file).
    for (const handler of this.subscribed(request.Type).filter((h) => !options.skip?.has(h))) {
      let answer: HookResponse;
      try {
        answer = honoured(request.Type, await this.invoke(handler, request));
      } catch (e) {
        // The server's own failure inside a hook (a full disk when the built-in complete-form queues its
        // form) keeps its code, and is never let through by failOpen: passing would lose the announcement.
        const own = e instanceof TuspassError ? (ERRORS as Record<string, ErrorEntry>)[e.code] : undefined;
        const entry: ErrorEntry = own ?? (e instanceof HookTimeout ? ERRORS.ERR_HOOK_TIMEOUT : ERRORS.ERR_HOOK_FAILED);
        // A module may throw anything (null, a string): its words, never a TypeError of ours instead.
        const why = e instanceof Error ? e.message : errorText(e);
        const message = `${entry.code}: hook ${handler.name} failed on ${request.Type} for \
upload ${request.Event.Upload.ID}: ${why}`;
        // What the hook printed or answered (logDetail: answer.ts hookFailure) goes to the log only.
        const detail = (e as { logDetail?: unknown } | null | undefined)?.logDetail;
        const logged = typeof detail === 'string' && detail ? `${message} (${detail})` : message;
        const failOpen = this.options.failOpen && !own;
        this.log(failOpen ? `${logged}; letting the request pass (HOOKS_FAIL_OPEN)` : logged, {
          event: 'hook.failed',
          level: 'warn',
          hook: handler.name,
          hook_type: request.Type,
          code: entry.code,
          upload_id: request.Event.Upload.ID || undefined,
          request_id: requestIdOfHeaders(request.Event.HTTPRequest.Header),
        });
        if (failOpen) continue;
        // The answer names a module hook by its file name only: HOOKS_MODULE may be a path on this machine.
        const shown = message.replace(`hook ${handler.name} `, `hook ${publicName(handler.name)} `);
        throw new HookRejection(handler.name, {
          HTTPResponse: {
            StatusCode: entry.status,
            Body: `${shown}\n`,
            Header: { 'Content-Type': 'text/plain; charset=utf-8' },
          },
        });
      }
      mergeInto(merged, answer);
      if (answer.RejectUpload || answer.RejectTermination || answer.RejectAccess)
        throw new HookRejection(handler.name, merged);
    }
    return merged;
  }

  /** A notice: stored durably for each subscribed handler and delivered on the side; never throws. */
  notify(request: HookRequest): void {
    for (const handler of this.subscribed(request.Type)) {
      const queue = this.options.queue;
      // Progress notices are superseded by the next one and by post-finish: at the queue's cap they
      // are the ones left out, so the cap holds while uploads keep sending bytes.
      if (queue?.isFull() && request.Type === 'post-receive') {
        this.droppedProgress++;
        if (this.droppedProgress === 1 || this.droppedProgress % 1000 === 0)
          this.log(`hooks: the queue is full (QUEUE_MAX); ${this.droppedProgress} post-receive notice(s) not queued`);
        continue;
      }
      if (queue) {
        const stored = storedPayload(request, this.storedHeaders);
        queue
          .enqueue<HookNotice>(KIND_PREFIX + handler.name, { handler: handler.name, request: stored })
          .catch((e: Error) => {
            this.log(
              `hooks: could not queue ${request.Type} notice for upload ${request.Event.Upload.ID} \
(hook ${handler.name}): ${e.message}`,
            );
          });
      } else {
        this.deliver(handler, request, crypto.randomUUID()).then((r) => {
          if (!r.done)
            this.log(
              `hook ${handler.name} failed on ${request.Type} for upload ${request.Event.Upload.ID}: ${r.error}`,
            );
        });
      }
    }
  }

  private async deliver(
    handler: HookHandler,
    request: HookRequest,
    noticeId: string,
  ): Promise<{ done: true } | { done: false; error: string }> {
    let answer: HookResponse;
    try {
      answer = honoured(request.Type, await this.invoke(handler, request, noticeId));
    } catch (e) {
      return {
        done: false,
        error: `hook ${handler.name} on ${request.Type} for upload ${request.Event.Upload.ID}: ${errorText(e)}`,
      };
    }
    if (answer.StopUpload) for (const listener of this.stopListeners) listener(request.Event.Upload.ID, answer);
    return { done: true };
  }

  private invoke(handler: HookHandler, request: HookRequest, noticeId?: string): Promise<HookResponse> {
    // tusd's hook metrics: every invocation, and those that failed or timed out (a rejection is an answer).
    hookInvocationsTotal.labels(request.Type).inc();
    const answer = invokeWithTimeout(handler, request, handler.timeoutMs ?? this.options.timeoutMs ?? 15_000, noticeId);
    answer.catch(() => hookErrorsTotal.labels(request.Type).inc());
    return answer;
  }

  private subscribed(type: HookEventType): HookHandler[] {
    return this.handlers.filter((h) => h.events.includes(type));
  }
}

/**
 * One handler, one event, bounded by the timeout: the transport is told through the signal (a command
 * hook is killed), and the caller does not wait for it beyond the timeout either way.
 */
export async function invokeWithTimeout(
  handler: HookHandler,
  request: HookRequest,
  ms: number,
  noticeId?: string,
): Promise<HookResponse> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new HookTimeout(`timed out after ${ms} ms`));
      controller.abort();
    }, ms);
  });
  try {
    return await Promise.race([handler.invokeHook(request, { signal: controller.signal, noticeId }), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** `module:/srv/hooks/check.ts` → `module:check.ts`; other names (command, http, built-ins) as they are. */
const publicName = (name: string): string =>
  name.startsWith('module:') ? `module:${name.slice('module:'.length).split(/[\\/]/).pop()}` : name;

/** Keeps only the answer fields tusd respects for the event, so a stray flag cannot act elsewhere. */
function honoured(type: HookEventType, answer: HookResponse): HookResponse {
  const out: HookResponse = {};
  if (answer.HTTPResponse && (isBlocking(type) || type === 'post-receive')) out.HTTPResponse = answer.HTTPResponse;
  if (answer.RejectUpload && (type === 'pre-create' || type === 'pre-finish')) out.RejectUpload = true;
  if (answer.RejectTermination && type === 'pre-terminate') out.RejectTermination = true;
  if (answer.RejectAccess && type === 'pre-access') out.RejectAccess = true;
  if (answer.ChangeFileInfo && type === 'pre-create') out.ChangeFileInfo = answer.ChangeFileInfo;
  if (answer.StopUpload && type === 'post-receive') out.StopUpload = true;
  return out;
}

function mergeInto(target: HookResponse, answer: HookResponse): void {
  if (answer.HTTPResponse) {
    const prev = target.HTTPResponse ?? {};
    target.HTTPResponse = {
      ...prev,
      ...answer.HTTPResponse,
      Header: { ...prev.Header, ...answer.HTTPResponse.Header },
    };
  }
  if (answer.ChangeFileInfo) {
    const prev = target.ChangeFileInfo ?? {};
    target.ChangeFileInfo = {
      ...prev,
      ...answer.ChangeFileInfo,
      MetaData: answer.ChangeFileInfo.MetaData ?? prev.MetaData,
    };
    if (!target.ChangeFileInfo.MetaData) delete target.ChangeFileInfo.MetaData;
  }
  for (const flag of ['RejectUpload', 'RejectTermination', 'RejectAccess', 'StopUpload'] as const)
    if (answer[flag]) target[flag] = true;
}
