// One file's upload on the page: a small state machine around a tus-js-client Upload with
// pause (abort without deleting), resume, cancel (abort and delete on the server), retry,
// and resume from an earlier visit through tus-js-client's fingerprints in localStorage —
// checked first, so an earlier upload that expired on the server starts over with a message.
// An outage (server unreachable, failing, or asking to wait) is waited out here rather than in
// tus-js-client, so the page can show when it tries again, honour Retry-After, and try at once
// on "Retry now"; every try starts afresh from the stored upload URLs, as a reload would.
import { Upload, type DetailedError, type HttpRequest, type HttpResponse } from 'tus-js-client';
import { readCompletionAnswer, type CompletionAnswer } from '../../shared/completion-answer.ts';
import { checkPreviousUpload, newestPreviousUpload } from '../../shared/previous-upload-check.ts';
import { SpeedMeter } from '../../shared/speed-meter.ts';
import { formatBytes } from '../../shared/units.ts';
import { describeFailure, type UploadFailure } from '../../shared/upload-failure.ts';
import {
  isOutage,
  outageText,
  retryAfterMs,
  serverError,
  TOKEN_ADVICE,
  tokenProblem,
  type TokenProblem,
} from './failure-advice.ts';

/** 'retrying': an outage, waited out (then tried again) by the task itself. */
export type TaskState = 'starting' | 'uploading' | 'retrying' | 'finishing' | 'paused' | 'done' | 'error' | 'cancelled';

/**
 * Waits before each try after an outage (longer when the server's Retry-After says so); the last
 * repeats for as long as the page is open: a resumable upload outlives a server restart.
 */
const RETRY_DELAYS = [0, 1000, 3000, 5000, 10_000, 20_000, 30_000];

export interface TaskSettings {
  /** Pass-through fields of the completion form, sent as upload metadata. */
  metadata: Record<string, string>;
  /** tus creation endpoint. */
  endpoint: string;
  /** Parts sent at once (the page's "Parallel connections"); 1 is a single stream. */
  parallelUploads: number;
  /** Headers of every request (the bearer token), read at each start so a changed token applies to a retry. */
  headers?: () => Record<string, string>;
}

export class UploadTask {
  state: TaskState = 'starting';
  bytesDone = 0;
  readonly bytesTotal: number;
  /** What is happening, in plain words, for the status line. */
  message = 'Starting…';
  /** Said once, e.g. "Resumed at 12 MB of 30 MB". */
  note = '';
  answer: CompletionAnswer | undefined;
  failure: UploadFailure | undefined;
  /** Why the server refused the token, when that is why the upload stopped. */
  tokenProblem: TokenProblem | undefined;
  /** In an outage, between tries: the page may try at once ("Retry now"). */
  waitingToRetry = false;
  readonly meter = new SpeedMeter();
  /** The details this upload carries: the ones typed now, or an earlier visit's when it resumes that upload. */
  details: Record<string, string>;
  /** Time spent sending (paused and failed time not counted), for "in 12s · average 26 MB/s". */
  activeMs = 0;
  /** Bytes sent in this visit (a resumed upload's earlier bytes not counted). */
  sentBytes = 0;
  private activeSince: number | undefined = Date.now();
  private progressBase = 0;

  private upload: Upload;
  private readonly settings: TaskSettings;
  /** The first start may resume an earlier visit's upload; later ones continue this visit's. */
  private firstStart = true;
  private lastMethod = '';
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Tries since the last byte moved, picking the wait before the next. */
  private outageTries = 0;
  /** The server's own words of the last failure (`ERR_CODE: message` → message). */
  private serverMessage: string | undefined;
  /** Tried again after a failure in this visit (a HEAD that finds all bytes then means the answer was lost). */
  private triedAgain = false;
  /** Resuming an earlier visit's upload whose offset the check before the start could not get. */
  private resumingEarlier = false;
  readonly endpoint: string;

  constructor(
    readonly file: File,
    settings: TaskSettings,
    private readonly events: { changed(task: UploadTask): void; finished(task: UploadTask): void },
  ) {
    this.bytesTotal = file.size;
    this.endpoint = settings.endpoint;
    this.settings = settings;
    this.details = { ...settings.metadata };
    this.upload = this.newUpload();
  }

  /**
   * A fresh tus-js-client Upload for every start, resume and retry, resumed from the URLs it
   * stored: an aborted Upload keeps internal state (a parallel one stays "aborted" after a
   * restart and would then swallow its errors), and starting afresh from storage is the same
   * path as a reload, which is tested.
   */
  private newUpload(): Upload {
    const { file, settings } = this;
    return new Upload(file, {
      endpoint: settings.endpoint,
      headers: settings.headers?.() ?? {},
      metadata: { filename: file.name, filetype: file.type || 'application/octet-stream', ...settings.metadata },
      // No retries inside tus-js-client: outages are waited out by this task (waitOutOutage).
      retryDelays: [],
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      parallelUploads: settings.parallelUploads,
      onAfterResponse: (req, res) => this.afterResponse(req, res),
      onProgress: (done) => this.progress(done),
      onSuccess: ({ lastResponse }) => this.succeed(lastResponse),
      onError: (err) => this.fail(err),
    });
  }

  /** Same file as far as the browser can tell (tus-js-client's fingerprint uses the same facts). */
  sameFileAs(file: File): boolean {
    return file.name === this.file.name && file.size === this.file.size && file.lastModified === this.file.lastModified;
  }

  get active(): boolean {
    return (
      this.state === 'starting' || this.state === 'uploading' || this.state === 'retrying' || this.state === 'finishing'
    );
  }

  /** Pause applies: sending, connecting or waiting out an outage (not once all bytes are sent). */
  get pausable(): boolean {
    return this.active && this.state !== 'finishing';
  }

  /** Cancel applies: not finished, and not past the last byte (the app is deciding then). */
  get cancellable(): boolean {
    return (this.active || this.state === 'paused' || this.state === 'error') && this.state !== 'finishing';
  }

  async start(): Promise<void> {
    this.set('uploading', 'Connecting…');
    await this.startFresh();
  }

  private async startFresh(): Promise<void> {
    const upload = this.newUpload();
    this.upload = upload;
    try {
      await this.resumeEarlierUpload();
    } catch {
      // No localStorage (private mode, disabled): the upload still works, it just cannot resume later.
    }
    this.firstStart = false;
    // Paused or cancelled while the check ran: this upload must not start.
    if (this.upload === upload && this.active) upload.start();
  }

  /**
   * Resumes the newest earlier upload of this file if the server still has it; otherwise
   * forgets it and says that this upload starts over. An earlier single-stream upload is
   * resumed as one stream whatever the setting says now: tus-js-client would otherwise start
   * a new parallel upload that it never stores, so a reload could not resume it.
   */
  private async resumeEarlierUpload(): Promise<void> {
    const previous = await this.upload.findPreviousUploads();
    const newest = newestPreviousUpload(previous);
    if (!newest) return;
    const state = await checkPreviousUpload(newest, fetch, this.upload.options.headers);
    if (state.kind === 'gone') {
      for (const p of previous) await this.upload.options.urlStorage?.removeUpload(p.urlStorageKey);
      this.noteStartOver(state.expired, state.status);
      return;
    }
    this.upload.resumeFromPreviousUpload(newest);
    // The server keeps the metadata the upload was created with: show those details, not the fields' current text.
    const { filename: _f, filetype: _t, ...details } = newest.metadata ?? {};
    this.details = details;
    const parts = newest.parallelUploadUrls?.length ?? 0;
    if (parts === 0) this.upload.options.parallelUploads = 1;
    if (state.kind === 'resumable') this.noteResumed(state.offset, parts, this.firstStart);
    else this.resumingEarlier = parts === 0 && this.firstStart;
  }

  /** `fromEarlierVisit` false: resuming after Pause or Retry, which the status line says already. */
  private noteResumed(offset: number, parts: number, fromEarlierVisit: boolean): void {
    this.bytesDone = offset;
    this.progressBase = offset;
    if (!fromEarlierVisit) return;
    if (offset >= this.bytesTotal && parts === 0) return;
    const how = parts > 0 ? ` in ${parts} parallel parts` : '';
    this.note =
      `Resumed at ${formatBytes(offset)} of ${formatBytes(this.bytesTotal)}${how} — this file was partly uploaded ` +
      'before.';
  }

  private noteStartOver(expired: boolean, status: number): void {
    this.bytesDone = 0;
    this.progressBase = 0;
    this.note = expired
      ? 'The earlier upload of this file expired on the server, so it started over from the beginning.'
      : `The server no longer has the earlier upload of this file (status ${status}), so it started over from the ` +
        'beginning.';
  }

  pause(): void {
    if (!this.active) return;
    this.stopWaiting();
    void this.upload.abort(false);
    this.meter.reset();
    this.set('paused', `Paused at ${formatBytes(this.bytesDone)} of ${formatBytes(this.bytesTotal)}`);
  }

  resume(): void {
    if (this.state !== 'paused' && this.state !== 'error') return;
    this.failure = undefined;
    this.tokenProblem = undefined;
    this.outageTries = 0;
    this.triedAgain = true;
    this.meter.reset();
    this.progressBase = this.bytesDone;
    this.set('uploading', 'Resuming…');
    void this.startFresh();
  }

  retry(): void {
    this.resume();
  }

  /** Stops and deletes the partial upload on the server (tus termination extension). */
  cancel(): void {
    if (this.state === 'done' || this.state === 'cancelled') return;
    this.stopWaiting();
    this.set('cancelled', 'Cancelled');
    this.upload.abort(true).catch(() => {
      // The server may be gone; the partial upload then expires there on its own.
    });
  }

  /** Retry is pointless when the app refused the file or it is too large. */
  get canRetry(): boolean {
    return this.state === 'error' && this.failure?.kind !== 'rejected-by-app' && this.failure?.status !== 413;
  }

  /** In an outage, between tries: tries now instead of waiting ("Retry now", or the browser back online). */
  retryNow(): void {
    if (this.state !== 'retrying' || !this.waitingToRetry) return;
    this.stopWaiting();
    this.triedAgain = true;
    this.set('retrying', `${this.outageSentence()} Trying again now…`);
    void this.startFresh();
  }

  private stopWaiting(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.waitingToRetry = false;
  }

  private outageSentence(): string {
    const failure = this.failure ?? { kind: 'unreachable' as const, status: undefined, message: '' };
    return outageText(failure, this.endpoint, this.serverMessage, navigator.onLine === false);
  }

  /**
   * Waits before trying again: the next of RETRY_DELAYS, or the server's Retry-After when longer.
   * Offline, the browser's 'online' event tries again (main.ts); there is nothing to wait for before.
   */
  private waitOutOutage(retryAfter: number | undefined): void {
    this.meter.reset();
    this.waitingToRetry = true;
    if (navigator.onLine === false) {
      this.set('retrying', this.outageSentence());
      return;
    }
    const delay = Math.max(RETRY_DELAYS[Math.min(this.outageTries, RETRY_DELAYS.length - 1)]!, retryAfter ?? 0);
    this.outageTries++;
    this.retryTimer = setTimeout(() => this.retryNow(), delay);
    const when =
      delay < 1000 ? 'Trying again now…' : `The upload waits and tries again in ${Math.round(delay / 1000)} s.`;
    this.set('retrying', `${this.outageSentence()} ${when}`);
  }

  /**
   * tus-js-client's own HEAD of a resume: after Pause/Retry it gives the offset to continue
   * from; a 404/410 means the upload expired meanwhile (e.g. paused too long) and tus-js-client
   * starts it over, which the page says. A part's HEAD (parallel upload) knows only that
   * part's offset, so only its expiry is shown.
   */
  private afterResponse(req: HttpRequest, res: HttpResponse): void {
    this.lastMethod = req.getMethod();
    if (this.lastMethod !== 'HEAD') return;
    const status = res.getStatus();
    const expired = status === 404 || status === 410;
    if (req.getHeader('Upload-Concat') === 'partial') {
      if (expired) this.note = 'A part of this upload expired on the server; that part is being sent again.';
    } else if (expired) {
      this.noteStartOver(true, status);
    } else if (status < 300) {
      const offset = Number(res.getHeader('Upload-Offset')) || 0;
      this.noteResumed(offset, 0, this.resumingEarlier);
    }
    this.resumingEarlier = false;
    this.events.changed(this);
  }

  private progress(done: number): void {
    if (!this.active) return;
    this.outageTries = 0;
    // Counted from the last known offset: a parallel upload's first report after a resume may start lower.
    if (done > this.progressBase) this.sentBytes += done - this.progressBase;
    this.progressBase = done;
    this.bytesDone = done;
    this.meter.record(done);
    if (done >= this.bytesTotal) this.set('finishing', 'All bytes sent — waiting for the app to confirm…');
    else this.set('uploading', 'Uploading');
  }

  private succeed(res: HttpResponse): void {
    this.bytesDone = this.bytesTotal;
    if (this.lastMethod === 'HEAD') {
      // All bytes were on the server already: sent in an earlier visit, or in this one when the answer to the last
      // write was lost.
      this.set(
        'done',
        this.triedAgain
          ? 'Uploaded. The server’s answer was lost on the way; the table below lists the file once the app ' +
              'accepted it.'
          : 'Already uploaded completely in an earlier visit.',
      );
      this.events.finished(this);
      return;
    }
    const answer = readCompletionAnswer(res);
    this.answer = answer;
    if (answer.kind === 'rejected') {
      this.failure = {
        kind: 'rejected-by-app',
        status: answer.status,
        message: `rejected by the app: ${answer.message}`,
      };
      this.set('error', capitalize(this.failure.message));
    } else if (answer.kind === 'pending') {
      this.set('done', 'Uploaded. The app has not confirmed yet; it will be told as soon as it is back.');
    } else {
      this.set('done', 'Uploaded and accepted.');
    }
    this.events.finished(this);
  }

  private fail(err: Error): void {
    if (this.state === 'cancelled' || this.state === 'paused') return;
    this.failure = describeFailure(err, this.endpoint);
    const res = (err as DetailedError).originalResponse ?? null;
    const said = serverError(res?.getBody() ?? '');
    const retryAfter = retryAfterMs(res?.getHeader('Retry-After'));
    const tokenSent = Boolean(this.upload.options.headers?.Authorization);
    // When one part of a parallel upload gives up, the others would keep sending: stop them
    // (a new try starts them all again from the server's offsets). Only after reading the error:
    // aborting clears the XHR whose status and body the error's response reads.
    void this.upload.abort(false);
    this.serverMessage = said.message;
    if (isOutage(this.failure)) {
      this.waitOutOutage(retryAfter);
      return;
    }
    this.tokenProblem = tokenProblem(this.failure.status, said.code, tokenSent);
    this.set('error', this.tokenProblem ? TOKEN_ADVICE[this.tokenProblem] : `${capitalize(this.failure.message)}.`);
  }

  /** Average speed over the time spent sending; NaN before any time passed. */
  averageBytesPerSecond(): number {
    const ms = this.elapsedMs();
    return ms > 0 ? (this.sentBytes * 1000) / ms : Number.NaN;
  }

  elapsedMs(): number {
    return this.activeMs + (this.activeSince === undefined ? 0 : Date.now() - this.activeSince);
  }

  /** Sending, for the time taken: active and not waiting out an outage. */
  private get sending(): boolean {
    return this.active && !this.waitingToRetry;
  }

  private set(state: TaskState, message: string): void {
    const wasSending = this.activeSince !== undefined;
    this.state = state;
    if (this.sending && !wasSending) this.activeSince = Date.now();
    if (!this.sending && wasSending) {
      this.activeMs += Date.now() - this.activeSince!;
      this.activeSince = undefined;
    }
    this.message = message;
    this.events.changed(this);
  }
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
