// Uploads one file with tus-js-client and reports the completion service's answer.
// The file goes in as an fs.ReadStream that has a path: tus-js-client's Node FileReader then
// opens a fresh read stream per PATCH from the offset (its FileSource), so nothing is
// buffered whatever the file size, and its fingerprint (path, size, mtime, endpoint) lets a
// later run find the upload URL again. With --parallel N, tus-js-client slices that stream
// into N ranged read streams, each sent as a partial upload and concatenated by the server.
import fs from 'node:fs';
import path from 'node:path';
import type { DetailedError, UrlStorage, HttpRequest, HttpResponse, UploadOptions } from 'tus-js-client';
import { readCompletionAnswer, type CompletionAnswer } from '../shared/completion-answer.ts';
import { isPartFailureSeenByParent } from '../shared/parallel-retry.ts';
import { describeFailure } from '../shared/upload-failure.ts';
import { formatBytes, formatDuration, formatSpeed } from '../shared/units.ts';
import { contentTypeFor } from './content-type.ts';
import { tusClient } from './tus-client.ts';
import { EXIT, exitCodeFor, type ExitCode } from './exit-codes.ts';
import type { LocalFile } from './local-files.ts';
import { createProgressDisplay } from './progress-display.ts';
import type { PushOptions } from './push-args.ts';
import { prepareResume, type ResumeStart } from './resume-previous.ts';
import { backoffDelays, RetryPolicy } from './retry-policy.ts';

export interface PushContext {
  options: PushOptions;
  storage: UrlStorage;
  progressMode: 'tty' | 'lines' | 'quiet';
  out: NodeJS.WritableStream & { columns?: number };
  err: NodeJS.WritableStream;
  /** Aborted on Ctrl-C: the upload stops without being deleted, so the next run resumes. */
  signal: AbortSignal;
}

type Ended =
  | { how: 'success'; response: HttpResponse; viaHead: boolean }
  | { how: 'error'; error: Error }
  | { how: 'interrupted' };

export async function pushFile(file: LocalFile, ctx: PushContext): Promise<ExitCode> {
  const { options } = ctx;
  const name = path.basename(file.path);
  const say = (line: string) => {
    if (ctx.progressMode !== 'quiet') ctx.out.write(`${line}\n`);
  };
  const progress = createProgressDisplay(ctx.progressMode, name, ctx.out);
  const retry = new RetryPolicy(options.retryForSeconds * 1000);
  const started = Date.now();
  let resumed: ResumeStart = { offset: 0, announced: false };
  let lastMethod = '';

  say(`uploading ${name} (${formatBytes(file.size)}) to ${options.endpoint}`);
  const ended = await new Promise<Ended>((resolve) => {
    // Fallback for what the check before the start could not see (no answer then, or the
    // upload expired in between): tus-js-client's own HEAD of a resume. A part's HEAD only
    // knows that part's offset, so only its expiry is worth a line.
    const onHead = (req: HttpRequest, res: HttpResponse) => {
      const status = res.getStatus();
      const isPart = req.getHeader('Upload-Concat') === 'partial';
      if (status === 404 || status === 410) {
        say(
          isPart
            ? `${name}: a part of the earlier upload expired on the server; sending that part again`
            : `the earlier upload of ${name} expired on the server; starting over`,
        );
        resumed = { offset: 0, announced: true };
      } else if (status < 300 && !isPart && !resumed.announced) {
        // The HEAD of a resume carries the server's offset (tus 1.0.0, "HEAD": MUST include Upload-Offset).
        const offset = Number(res.getHeader('Upload-Offset')) || 0;
        if (offset < file.size) say(`resuming ${name} at ${formatBytes(offset)} of ${formatBytes(file.size)}`);
        resumed = { offset, announced: true };
      }
    };
    const upload = new (tusClient().Upload)(fs.createReadStream(file.path), {
      endpoint: options.endpoint,
      metadata: { filename: name, filetype: contentTypeFor(file.path), ...options.fields },
      chunkSize: options.chunkSize,
      // Every request of the upload (creation, PATCH, HEAD of a resume, final concatenation).
      headers: options.token ? { Authorization: `Bearer ${options.token}` } : {},
      retryDelays: backoffDelays(),
      urlStorage: ctx.storage,
      storeFingerprintForResuming: true,
      // A finished upload is not resumable: the next push of the same file is a new upload.
      removeFingerprintOnSuccess: true,
      parallelUploads: options.parallel,
      // tus-js-client's option (missing from its type declarations): its ietf-draft-05 is interop version 6.
      ...({ protocol: options.protocol === 'ietf' ? 'ietf-draft-05' : 'tus-v1' } as Partial<UploadOptions>),
      onShouldRetry: (error, attempt, opts) =>
        !isPartFailureSeenByParent(error, opts) && retry.shouldRetry(error, opts.retryDelays?.[attempt] ?? 0),
      onAfterResponse: (req: HttpRequest, res: HttpResponse) => {
        retry.answered(res.getStatus());
        lastMethod = req.getMethod();
        if (req.getMethod() === 'HEAD') onHead(req, res);
      },
      onProgress: (done, total) => progress.update(done, total),
      onSuccess: ({ lastResponse }) =>
        resolve({ how: 'success', response: lastResponse, viaHead: lastMethod === 'HEAD' }),
      onError: (error) => {
        // When one part of a parallel upload gives up, the others would keep sending: stop them.
        void upload.abort(false);
        resolve({ how: 'error', error });
      },
    });
    ctx.signal.addEventListener(
      'abort',
      () => {
        void upload.abort(false);
        resolve({ how: 'interrupted' });
      },
      { once: true },
    );
    prepareResume(upload, { name, size: file.size }, options, say)
      .then((start) => {
        resumed = start;
        upload.start();
      })
      .catch((error: Error) => resolve({ how: 'error', error }));
  });
  progress.end();

  if (ended.how === 'interrupted') {
    ctx.err.write(`tuspass push: ${name}: interrupted; run the same command again to resume\n`);
    return EXIT.INTERRUPTED;
  }
  if (ended.how === 'error') {
    const failure = describeFailure(ended.error as DetailedError, options.endpoint);
    const hint =
      failure.kind === 'unreachable' || failure.kind === 'server-error'
        ? ` (gave up after retrying for ${options.retryForSeconds}s)`
        : authHint(failure.status, options.token !== undefined);
    ctx.err.write(`tuspass push: ${name}: ${failure.message}${hint}\n`);
    return exitCodeFor(failure.kind);
  }
  if (ended.viaHead) {
    say(`${name}: already complete on the server (finished by an earlier run)`);
    return EXIT.OK;
  }
  const seconds = (Date.now() - started) / 1000;
  const sent = file.size - resumed.offset;
  say(
    `${name}: sent ${formatBytes(sent)} in ${seconds < 10 ? `${seconds.toFixed(1)}s` : formatDuration(seconds)} ` +
      `(${formatSpeed(sent / Math.max(seconds, 0.001))})`,
  );
  return reportAnswer(name, readCompletionAnswer(ended.response), ctx);
}

/** What to do about a 401 (RFC 6750: no token, or one the server does not accept). */
function authHint(status: number | undefined, withToken: boolean): string {
  if (status !== 401) return '';
  return withToken
    ? "; the token was refused (expired, or not signed with the server's key): give a valid one with --token or " +
        'TUSPASS_TOKEN'
    : '; this server wants a bearer token: give one with --token TOKEN or TUSPASS_TOKEN=TOKEN';
}

function reportAnswer(name: string, answer: CompletionAnswer, ctx: PushContext): ExitCode {
  const { out, err, options } = ctx;
  switch (answer.kind) {
    case 'delivered': {
      out.write(`${name}: completion service answered ${answer.status}: ${answer.body.trim()}\n`);
      const r = answer.record;
      if (r && ctx.progressMode !== 'quiet') {
        const download = r.url ? new URL(r.url, options.endpoint).toString() : '(no url)';
        out.write(`${name}: record ${r.id}, md5 ${r.md5}, download ${download}\n`);
      }
      return EXIT.OK;
    }
    case 'pending':
      err.write(
        `tuspass push: ${name}: uploaded, but the completion service did not answer yet; the server keeps ` +
          'retrying the notice\n',
      );
      return EXIT.COMPLETION_PENDING;
    case 'rejected':
      // Normally a rejection arrives as a non-2xx PATCH (an error); a 2xx one is still a rejection.
      err.write(`tuspass push: ${name}: rejected by the app (status ${answer.status}): ${answer.message}\n`);
      return EXIT.REJECTED_BY_APP;
    case 'unknown':
      out.write(`${name}: uploaded (status ${answer.status}; the server sent no completion answer)\n`);
      return EXIT.OK;
  }
}
