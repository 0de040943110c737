// "This visit": one row per upload (upload-row.ts), the total across them — bytes, speed, time
// left, how many finished, paused or waiting — and Pause all, Resume all, Cancel all (asking first
// once bytes were sent) and Clear finished. The buttons show only when they would do something; one
// that disappears under the keyboard focus hands the focus to the one that took its place.
import { formatBytes, formatDuration, formatSpeed } from '../../shared/units.ts';
import { confirmCancel } from './cancel-question.ts';
import { byId } from './dom.ts';
import { UploadRow } from './upload-row.ts';
import type { UploadTask } from './upload-task.ts';

const count = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

export class CurrentUploads {
  readonly tasks: UploadTask[] = [];
  private readonly rows = new Map<UploadTask, UploadRow>();
  private readonly section = byId<HTMLElement>('current');
  private readonly title = byId<HTMLHeadingElement>('current-title');
  private readonly list = byId<HTMLUListElement>('uploads');
  private readonly bar = byId<HTMLProgressElement>('total-progress');
  private readonly stats = byId<HTMLParagraphElement>('total-stats');
  private readonly pauseAll = byId<HTMLButtonElement>('pause-all');
  private readonly resumeAll = byId<HTMLButtonElement>('resume-all');
  private readonly cancelAll = byId<HTMLButtonElement>('cancel-all');
  private readonly clearFinished = byId<HTMLButtonElement>('clear-finished');

  constructor() {
    this.pauseAll.addEventListener('click', () => this.tasks.filter((t) => t.pausable).forEach((t) => t.pause()));
    this.resumeAll.addEventListener('click', () =>
      this.tasks.filter((t) => t.state === 'paused').forEach((t) => t.resume()),
    );
    this.cancelAll.addEventListener('click', () => {
      const targets = this.tasks.filter((t) => t.cancellable);
      void confirmCancel(targets).then((yes) => yes && targets.forEach((t) => t.cancel()));
    });
    this.clearFinished.addEventListener('click', () => this.clear());
  }

  add(task: UploadTask): void {
    const row = new UploadRow(task);
    this.tasks.push(task);
    this.rows.set(task, row);
    this.list.prepend(row.element);
    this.update();
  }

  changed(task: UploadTask): void {
    this.rows.get(task)?.update();
    this.update();
  }

  focusTitle(): void {
    this.title.focus();
  }

  private clear(): void {
    for (const [task, row] of this.rows) {
      if (!row.finished) continue;
      row.element.remove();
      this.rows.delete(task);
      this.tasks.splice(this.tasks.indexOf(task), 1);
    }
    this.update();
  }

  /** The bar and line across all files of this visit (cancelled ones left out), and which buttons apply. */
  private update(): void {
    const counted = this.tasks.filter((t) => t.state !== 'cancelled');
    const total = counted.reduce((n, t) => n + t.bytesTotal, 0);
    const done = counted.reduce((n, t) => n + t.bytesDone, 0);
    // Speed: what the files moving now send together; time left: what those still on their way have to go.
    const speed = counted
      .filter((t) => t.state === 'uploading')
      .reduce((n, t) => n + (t.meter.bytesPerSecond() || 0), 0);
    const toGo = counted
      .filter((t) => t.active && !t.waitingToRetry)
      .reduce((n, t) => n + t.bytesTotal - t.bytesDone, 0);
    const stateCount = (state: UploadTask['state']) => counted.filter((t) => t.state === state).length;
    const paused = stateCount('paused');
    const waiting = stateCount('retrying');
    const failed = stateCount('error');
    this.bar.max = Math.max(total, 1);
    this.bar.value = done;
    this.stats.textContent = [
      `Total: ${formatBytes(done)} of ${formatBytes(total)}`,
      speed > 0 ? formatSpeed(speed) : '',
      speed > 0 ? `${formatDuration(toGo / speed)} left` : '',
      `${stateCount('done')} of ${count(counted.length, 'file')} finished`,
      paused ? `${paused} paused` : '',
      waiting ? `${waiting} waiting for the server` : '',
      failed ? `${failed} failed` : '',
    ]
      .filter(Boolean)
      .join(' · ');

    const focused = [this.pauseAll, this.resumeAll, this.cancelAll, this.clearFinished].find(
      (b) => b === document.activeElement,
    );
    this.pauseAll.hidden = !this.tasks.some((t) => t.pausable);
    this.resumeAll.hidden = !this.tasks.some((t) => t.state === 'paused');
    this.cancelAll.hidden = !this.tasks.some((t) => t.cancellable);
    this.clearFinished.hidden = ![...this.rows.values()].some((r) => r.finished);
    this.section.hidden = this.tasks.length === 0;
    // Pause all turns into Resume all (and back) under the focus; a last resort is the section's title.
    if (focused?.hidden) {
      const next = [this.resumeAll, this.pauseAll, this.cancelAll, this.clearFinished].find((b) => !b.hidden);
      if (next) next.focus();
      else if (!this.section.hidden) this.title.focus();
    }
  }
}
