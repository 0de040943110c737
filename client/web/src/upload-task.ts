// One file's upload on the page: a small state machine around a tus-js-client Upload with
// pause (abort without deleting), resume, cancel (abort and delete on the server), retry,
// and resume from an earlier visit through tus-js-client's fingerprints in localStorage.
import { Upload, type DetailedError, type HttpRequest, type HttpResponse } from 'tus-js-client';
import { readCompletionAnswer, type CompletionAnswer } from '../../shared/completion-answer.ts';
import { SpeedMeter } from '../../shared/speed-meter.ts';
import { formatBytes } from '../../shared/units.ts';
import { describeFailure, type UploadFailure } from '../../shared/upload-failure.ts';

export type TaskState = 'starting' | 'uploading' | 'retrying' | 'finishing' | 'paused' | 'done' | 'error' | 'cancelled';

/** Waits before each automatic retry of a network error or 5xx; after the last, the page shows Retry. */
const RETRY_DELAYS = [0, 1000, 3000, 5000, 10_000, 20_000, 30_000];

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

  private readonly upload: Upload;
  private lastMethod = '';
  private resumingEarlier = false;

  constructor(
    readonly file: File,
    metadata: Record<string, string>,
    readonly endpoint: string,
    private readonly changed: (task: UploadTask) => void,
    private readonly finished: (task: UploadTask) => void,
  ) {
    this.bytesTotal = file.size;
    this.upload = new Upload(file, {
      endpoint,
      metadata: { filename: file.name, filetype: file.type || 'application/octet-stream', ...metadata },
      retryDelays: RETRY_DELAYS,
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      onShouldRetry: (err, attempt) => this.shouldRetry(err, attempt),
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
    try {
      const previous = await this.upload.findPreviousUploads();
      if (previous.length > 0) {
        previous.sort((a, b) => Date.parse(b.creationTime) - Date.parse(a.creationTime));
        this.upload.resumeFromPreviousUpload(previous[0]!);
        this.resumingEarlier = true;
      }
    } catch {
      // No localStorage (private mode, disabled): the upload still works, it just cannot resume later.
    }
    this.set('uploading', 'Connecting…');
    this.upload.start();
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
    this.set('uploading', 'Resuming…');
    this.upload.start();
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

  private shouldRetry(err: DetailedError, attempt: number): boolean {
    const failure = describeFailure(err, this.endpoint);
    const retryable =
      failure.kind === 'unreachable' || failure.kind === 'server-error' || failure.status === 409 || failure.status === 423;
    if (!retryable || navigator.onLine === false) return false;
    const delay = RETRY_DELAYS[attempt] ?? 0;
    this.set('retrying', `${capitalize(failure.message)} — trying again${delay >= 1000 ? ` in ${Math.round(delay / 1000)} s` : ''}…`);
    return true;
  }

  private afterResponse(req: HttpRequest, res: HttpResponse): void {
    this.lastMethod = req.getMethod();
    if (this.lastMethod === 'HEAD' && res.getStatus() < 300) {
      const offset = Number(res.getHeader('Upload-Offset')) || 0;
      this.bytesDone = offset;
      if (this.resumingEarlier && offset < this.bytesTotal) {
        this.note = `Resumed at ${formatBytes(offset)} of ${formatBytes(this.bytesTotal)} — this file was partly uploaded before.`;
      }
      this.resumingEarlier = false;
      this.changed(this);
    }
  }

  private progress(done: number): void {
    if (!this.active) return;
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
    const offline = navigator.onLine === false ? ' The browser says it is offline; the upload continues when you press Retry.' : '';
    this.set('error', `${capitalize(this.failure.message)}.${offline}`);
  }

  private set(state: TaskState, message: string): void {
    this.state = state;
    this.message = message;
    this.changed(this);
  }
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
