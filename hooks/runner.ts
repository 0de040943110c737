// Dispatches hook events to the configured handlers. Whether an event blocks is decided here, once,
// by its name (tusd: `pre-*` block and may reject, `post-*` are notices that never slow an upload).
import { isBlocking, type HookHandler, type HookRequest, type HookResponse } from './types.ts';

export class HookRejection extends Error {
  constructor(
    readonly hook: string,
    readonly response: HookResponse,
  ) {
    super(`rejected by hook ${hook}`);
  }
}

export interface HookRunnerOptions {
  log?: (message: string) => void;
}

export class HookRunner {
  private readonly log: (message: string) => void;

  constructor(
    private readonly handlers: readonly HookHandler[],
    options: HookRunnerOptions = {},
  ) {
    this.log = options.log ?? console.error;
  }

  async setup(): Promise<void> {
    for (const h of this.handlers) await h.setup?.();
  }

  async close(): Promise<void> {
    for (const h of this.handlers) await h.close?.();
  }

  wants(type: HookRequest['Type']): boolean {
    return this.handlers.some((h) => h.events.includes(type));
  }

  /**
   * A blocking event: every subscribed handler in order; their answers merge (later ones win field by
   * field). The first rejection stops the chain and is thrown as a HookRejection. A handler that
   * throws rejects too (fail closed) with a 500 naming the hook.
   */
  async block(request: HookRequest): Promise<HookResponse> {
    if (!isBlocking(request.Type)) throw new Error(`${request.Type} is not a blocking event`);
    const merged: HookResponse = {};
    for (const handler of this.subscribed(request)) {
      let answer: HookResponse;
      try {
        answer = await handler.invokeHook(request);
      } catch (e) {
        const message = `hook ${handler.name} failed on ${request.Type} for upload ${request.Event.Upload.ID}: ${(e as Error).message}`;
        this.log(message);
        throw new HookRejection(handler.name, { RejectUpload: true, HTTPResponse: { StatusCode: 500, Body: `${message}\n` } });
      }
      mergeInto(merged, answer);
      if (answer.RejectUpload || answer.RejectTermination) throw new HookRejection(handler.name, merged);
    }
    return merged;
  }

  /** A notice: handlers run on the side; failures are logged with the event and upload id. */
  notify(request: HookRequest): void {
    for (const handler of this.subscribed(request)) {
      handler.invokeHook(request).catch((e) => this.log(`hook ${handler.name} failed on ${request.Type} for upload ${request.Event.Upload.ID}: ${(e as Error).message}`));
    }
  }

  private subscribed(request: HookRequest): HookHandler[] {
    return this.handlers.filter((h) => h.events.includes(request.Type));
  }
}

function mergeInto(target: HookResponse, answer: HookResponse): void {
  if (answer.HTTPResponse) {
    const prev = target.HTTPResponse ?? {};
    target.HTTPResponse = { ...prev, ...answer.HTTPResponse, Header: { ...prev.Header, ...answer.HTTPResponse.Header } };
  }
  if (answer.ChangeFileInfo) {
    const prev = target.ChangeFileInfo ?? {};
    target.ChangeFileInfo = { ...prev, ...answer.ChangeFileInfo };
  }
  for (const flag of ['RejectUpload', 'RejectTermination', 'StopUpload'] as const) if (answer[flag]) target[flag] = true;
}
