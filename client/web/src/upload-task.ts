// One file's upload on the page: a small state machine around a tus-js-client Upload with
// pause (abort without deleting), resume, cancel (abort and delete on the server), retry,
// and resume from an earlier visit through tus-js-client's fingerprints in localStorage —
// checked first, so an earlier upload that expired on the server starts over with a message.
import { Upload, type DetailedError, type HttpRequest, type HttpResponse, type UploadOptions } from 'tus-js-client';
import { readCompletionAnswer, type CompletionAnswer } from '../../shared/completion-answer.ts';
import { isPartFailureSeenByParent } from '../../shared/parallel-retry.ts';
import { checkPreviousUpload, newestPreviousUpload } from '../../shared/previous-upload-check.ts';
import { SpeedMeter } from '../../shared/speed-meter.ts';
import { formatBytes } from '../../shared/units.ts';
import { describeFailure, type UploadFailure } from '../../shared/upload-failure.ts';

export type TaskState = 'starting' | 'uploading' | 'retrying' | 'finishing' | 'paused' | 'done' | 'error' | 'cancelled';

/** Waits before each automatic retry of a network error or 5xx; after the last, the page shows Retry. */
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
  /** Resuming an earlier visit's upload whose offset the check before the start could not get. */
  private resumingEarlier = false;
  readonly endpoint: string;

  constructor(
    readonly file: File,
    settings: TaskSettings,
    private readonly changed: (task: UploadTask) => void,
    private readonly finished: (task: UploadTask) => void,
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
      retryDelays: RETRY_DELAYS,
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      parallelUploads: settings.parallelUploads,
      onShouldRetry: (err, attempt, options) => this.shouldRetry(err, attempt, options),
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
    return this.state === 'starting' || this.state === 'uploading' || this.state === 'retrying' || this.state === 'finishing';
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
    this.note = `Resumed at ${formatBytes(offset)} of ${formatBytes(this.bytesTotal)}${how} — this file was partly uploaded before.`;
  }

  private noteStartOver(expired: boolean, status: number): void {
    this.bytesDone = 0;
    this.progressBase = 0;
    this.note = expired
      ? 'The earlier upload of this file expired on the server, so it started over from the beginning.'
      : `The server no longer has the earlier upload of this file (status ${status}), so it started over from the beginning.`;
  }

  pause(): void {
    if (!this.active) return;
    void this.upload.abort(false);
    this.meter.reset();
    this.set('paused', `Paused at ${formatBytes(this.bytesDone)} of ${formatBytes(this.bytesTotal)}`);
  }

  resume(): void {
    if (this.state !== 'paused' && this.state !== 'error') return;
    this.failure = undefined;
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
    this.set('cancelled', 'Cancelled');
    this.upload.abort(true).catch(() => {
      // The server may be gone; the partial upload then expires there on its own.
    });
  }

  /** Retry is pointless when the app refused the file or it is too large. */
  get canRetry(): boolean {
    return this.state === 'error' && this.failure?.kind !== 'rejected-by-app' && this.failure?.status !== 413;
  }

  private shouldRetry(err: DetailedError, attempt: number, options: UploadOptions): boolean {
    if (isPartFailureSeenByParent(err, options)) return false;
    const failure = describeFailure(err, this.endpoint);
    const retryable =
      failure.kind === 'unreachable' || failure.kind === 'server-error' || failure.status === 409 || failure.status === 423;
    if (!retryable || navigator.onLine === false) return false;
    const delay = RETRY_DELAYS[attempt] ?? 0;
    this.set('retrying', `${capitalize(failure.message)} — trying again${delay >= 1000 ? ` in ${Math.round(delay / 1000)} s` : ''}…`);
    return true;
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
    this.changed(this);
  }

  private progress(done: number): void {
    if (!this.active) return;
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
      this.set('done', 'Already uploaded completely in an earlier visit.');
      this.finished(this);
      return;
    }
    const answer = readCompletionAnswer(res);
    this.answer = answer;
    if (answer.kind === 'rejected') {
      this.failure = { kind: 'rejected-by-app', status: answer.status, message: `rejected by the app: ${answer.message}` };
      this.set('error', capitalize(this.failure.message));
    } else if (answer.kind === 'pending') {
      this.set('done', 'Uploaded. The app has not confirmed yet; it will be told as soon as it is back.');
    } else {
      this.set('done', 'Uploaded and accepted.');
    }
    this.finished(this);
  }

  private fail(err: Error): void {
    if (this.state === 'cancelled' || this.state === 'paused') return;
    this.failure = describeFailure(err, this.endpoint);
    // When one part of a parallel upload gives up, the others would keep sending: stop them
    // (Retry starts them all again from the server's offsets). Only after reading the error:
    // aborting clears the XHR whose status and body the error's response reads.
    void this.upload.abort(false);
    const offline = navigator.onLine === false ? ' The browser says it is offline; the upload continues when you press Retry.' : '';
    this.set('error', `${capitalize(this.failure.message)}.${offline}`);
  }

  /** Average speed over the time spent sending; NaN before any time passed. */
  averageBytesPerSecond(): number {
    const ms = this.elapsedMs();
    return ms > 0 ? (this.sentBytes * 1000) / ms : Number.NaN;
  }

  elapsedMs(): number {
    return this.activeMs + (this.activeSince === undefined ? 0 : Date.now() - this.activeSince);
  }

  private set(state: TaskState, message: string): void {
    const wasActive = this.active;
    this.state = state;
    if (this.active && !wasActive) this.activeSince = Date.now();
    if (!this.active && wasActive && this.activeSince !== undefined) {
      this.activeMs += Date.now() - this.activeSince;
      this.activeSince = undefined;
    }
    this.message = message;
    this.changed(this);
  }
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
