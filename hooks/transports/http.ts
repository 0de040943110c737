// HTTP hooks, as tusd's: POST the JSON payload to one URL; a 2xx answer's body (JSON, may be empty)
// is the hook's answer, anything else a failure. Network errors and 5xx are retried `retry` times,
// `backoffMs` apart, on blocking events; a notice gets one try per delivery because the durable queue
// retries it. Every request is signed (Tuspass-Signature, timestamped, with the hook-payload key
// derived from the secret: core/signature.ts), and a notice carries Hook-Notice-Id, the same on every retry, for the
// receiver to drop duplicates.
import { failureOf, requestText, type ClientResponse } from '../../core/http-client.ts';
import { SIGNATURE_HEADER, sign } from '../../core/signature.ts';
import { HOOK_NOTICE_ID_HEADER as NOTICE_ID_HEADER } from '../../core/wire.ts';
import { hookFailure, hookFailureIn, parseHookAnswer } from '../answer.ts';
import type { HookEventType, HookHandler, HookRequest, HookResponse, InvokeContext } from '../types.ts';

/** The notice id's header (core/wire.ts), exported under this name for hook authors (hooks/index.ts). */
export { NOTICE_ID_HEADER };

export interface HttpHookOptions {
  url: string;
  events: readonly HookEventType[];
  secret: string;
  retry: number;
  backoffMs: number;
  /** Client request headers copied onto the hook request (tusd's -hooks-http-forward-headers). */
  forwardHeaders: readonly string[];
}

/** A failure worth another try (tusd/pester: network errors and 500s). */
class Retryable extends Error {}

export function createHttpHook(options: HttpHookOptions): HookHandler {
  return {
    name: 'http',
    events: options.events,
    async invokeHook(request, context) {
      const retries = context?.noticeId ? 0 : options.retry;
      for (let attempt = 0; ; attempt++) {
        try {
          return await post(options, request, context);
        } catch (e) {
          if (!(e instanceof Retryable) || attempt >= retries || context?.signal.aborted) throw e;
        }
        await sleep(options.backoffMs, context?.signal);
      }
    },
  };
}

async function post(
  options: HttpHookOptions,
  request: HookRequest,
  context: InvokeContext | undefined,
): Promise<HookResponse> {
  const body = JSON.stringify(request);
  const headers: Record<string, string> = {
    'Content-Type': 'application/json',
    // The hook key, not the form key: a signed payload can never pass as a completion form. Signed per attempt.
    [SIGNATURE_HEADER]: sign(options.secret, 'hook-payload', body),
  };
  if (context?.noticeId) headers[NOTICE_ID_HEADER] = context.noticeId;
  const clientHeaders = request.Event.HTTPRequest.Header;
  for (const name of options.forwardHeaders) {
    const values = clientHeaders[name] ?? clientHeaders[name.toLowerCase()];
    if (values?.length) headers[name] = values.join(', ');
  }
  // Errors become the client's answer (runner.ts): the receiver is named by its setting, not its address.
  let response: ClientResponse;
  try {
    response = await requestText(options.url, { method: 'POST', body, headers, signal: context?.signal });
  } catch (e) {
    throw new Retryable(`HOOKS_HTTP unreachable: ${failureOf(e)}`);
  }
  const text = response.body;
  if (response.status >= 500) throw new Retryable(`HOOKS_HTTP answered ${response.status}`);
  if (response.status < 200 || response.status >= 300)
    throw hookFailure(`HOOKS_HTTP answered ${response.status}`, text.slice(0, 200));
  try {
    return parseHookAnswer(text);
  } catch (e) {
    throw hookFailureIn('HOOKS_HTTP', e);
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
