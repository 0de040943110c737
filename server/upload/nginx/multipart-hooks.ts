// The hooks a user configured (HOOKS_DIR, HOOKS_HTTP, HOOKS_MODULE) apply to POST /upload as to tus:
// pre-create for each file before a byte of it is stored, post-create, pre-finish before the
// request's form is posted, post-finish once it is handled, post-terminate for files the request
// made and then removed. Payloads are the tus path's (UploadEvents.hookUpload, httpRequestOf,
// Event.Auth). The built-in complete-form hook is not run on pre-finish: this path hands the
// completion deliverer one form per request (completion.ts), where the hook would make one per file.
import type { IncomingMessage } from 'node:http';
import type { Upload } from '@tus/utils';
import { HookRejection, type HookRunner } from '../../../hooks/runner.ts';
import type { HookHandler, HookHTTPRequest, HookUpload } from '../../../hooks/types.ts';
import { isCompleteFormHook } from '../../complete-form/hook.ts';
import type { UploadStore } from '../../backends/store/upload-store.ts';
import { answerOf, authOfRequest, httpRequestOf, storageOf, type UploadEvents } from '../../pipeline/upload-events.ts';
import type { ReceivedFile } from './completion.ts';
import { HookRefusal } from '../../http/error-answer.ts';

export class MultipartHooks {
  /** The handlers this path replaces with its own form: the built-in complete-form, when loaded. */
  private readonly replaced: ReadonlySet<HookHandler>;

  constructor(
    private readonly events: UploadEvents,
    private readonly hooks: HookRunner,
    private readonly store: UploadStore,
  ) {
    this.replaced = new Set(hooks.list().filter(isCompleteFormHook));
  }

  http(req: IncomingMessage): HookHTTPRequest {
    return httpRequestOf(req);
  }

  /**
   * pre-create: the id and metadata to create the upload with, or a HookRefusal thrown (relayed by the error
   * responder).
   */
  async preCreate(http: HookHTTPRequest, upload: Upload): Promise<{ id: string; metadata: Upload['metadata'] }> {
    try {
      return await this.events.preCreate(http, upload);
    } catch (e) {
      const status = (e as { status_code?: unknown }).status_code;
      if (typeof status !== 'number') throw e;
      const { body, headers } = e as { body?: string; headers?: Record<string, string> };
      throw new HookRefusal(status, body ?? '', headers ?? {});
    }
  }

  /** The upload exists: the tus path's log line and post-create. */
  created(req: IncomingMessage, upload: Upload): void {
    this.events.created(req, upload);
  }

  hookUpload(file: ReceivedFile, withStorage = true): HookUpload {
    return {
      ID: file.id,
      Size: file.digests.size,
      SizeIsDeferred: false,
      Offset: file.digests.size,
      MetaData: { filename: file.name, filetype: file.contentType, fieldname: file.field },
      IsPartial: false,
      IsFinal: false,
      PartialUploads: null,
      Storage: withStorage ? storageOf(this.store.location(file.id)) : null,
      Digests: file.digests,
      Owner: file.owner,
    };
  }

  /**
   * pre-finish of each file, the user's hooks only. A refusal (RejectUpload) answers 400 unless the
   * hook says otherwise; a hook that failed or timed out answers 500/504: either way the caller removes
   * the request's files — a multipart request is answered once, so nothing waits to be handled again.
   */
  async preFinish(http: HookHTTPRequest, files: ReceivedFile[]): Promise<void> {
    if (!this.hooks.wants('pre-finish', this.replaced)) return;
    for (const file of files) {
      try {
        await this.hooks.block(
          {
            Type: 'pre-finish',
            Event: { Upload: this.hookUpload(file), HTTPRequest: http, Auth: authOfRequest(http) },
          },
          { skip: this.replaced },
        );
      } catch (e) {
        if (!(e instanceof HookRejection)) throw e;
        const answer = answerOf(e.response, e.response.RejectUpload ? 400 : 500);
        if (e.response.RejectUpload)
          throw new HookRefusal(answer.status_code!, answer.body || `${e.message}\n`, answer.headers ?? {});
        // A hook that failed or timed out: its code only; the runner's message names the hook (a
        // module's path) and is in the log already.
        const code = /^(ERR_[A-Z_]+)/.exec(answer.body ?? '')?.[1] ?? 'ERR_HOOK_FAILED';
        throw new HookRefusal(answer.status_code!, `${code}: a hook failed on pre-finish; the upload is not kept\n`, {
          'Content-Type': 'text/plain; charset=utf-8',
        });
      }
    }
  }

  /** post-finish of each file: the form was delivered or queued. */
  finished(http: HookHTTPRequest, files: ReceivedFile[]): void {
    for (const file of files) this.events.notify('post-finish', http, this.hookUpload(file));
  }

  /** post-terminate of each file removed (cleanup status, a refusal, a failed request). */
  terminated(http: HookHTTPRequest, files: Array<ReceivedFile | { id: string; upload: Upload }>): void {
    for (const f of files) {
      const upload = 'upload' in f ? this.events.hookUpload(f.upload, undefined, false) : this.hookUpload(f, false);
      this.events.notify('post-terminate', http, upload);
    }
  }
}
