// The list item of one upload: name, size, progress bar, bytes done of total, speed, time
// left, status in plain words, Pause/Resume/Cancel/Retry, and the completion service's record.
// Built once and updated in place, so a button is never replaced under the pointer mid-click.
// An outage shows as a warning (amber, a warning sign, "Retry now"); a failure as an error.
import { formatBytes, formatDuration, formatSpeed } from '../../shared/units.ts';
import { confirmCancel } from './cancel-question.ts';
import { downloadLink, el, safeHref } from './dom.ts';
import { fileThumbnail } from './file-icon.ts';
import type { UploadTask } from './upload-task.ts';

export class UploadRow {
  readonly element: HTMLLIElement;
  private readonly bar: HTMLProgressElement;
  private readonly stats: HTMLElement;
  private readonly status: HTMLElement;
  private readonly note: HTMLElement;
  private readonly record: HTMLElement;
  private readonly details: HTMLElement;
  /** The warning sign beside the status of an outage or an error (the words say it; the sign is for the eye). */
  private readonly sign: HTMLElement;
  private readonly buttons: Record<'pause' | 'resume' | 'cancel' | 'retry', HTMLButtonElement>;

  constructor(private readonly task: UploadTask) {
    const button = (label: string, action: () => void) => {
      const b = el('button', { text: label, attrs: { type: 'button', 'aria-label': `${label} ${task.file.name}` } });
      b.addEventListener('click', action);
      return b;
    };
    this.buttons = {
      pause: button('Pause', () => task.pause()),
      resume: button('Resume', () => task.resume()),
      retry: button('Retry', () => (task.waitingToRetry ? task.retryNow() : task.retry())),
      cancel: button('Cancel', () => void confirmCancel([task]).then((yes) => yes && task.cancel())),
    };
    this.bar = el('progress', {
      attrs: { max: String(Math.max(task.bytesTotal, 1)), value: '0', 'aria-label': `Progress of ${task.file.name}` },
    });
    this.stats = el('div', { class: 'upload-stats' });
    this.status = el('p', { class: 'upload-status', attrs: { role: 'status' } });
    this.sign = el('span', { class: 'warning-icon', text: '!', attrs: { 'aria-hidden': 'true' } });
    this.note = el('p', { class: 'upload-note' });
    this.record = el('p', { class: 'upload-record' });
    this.details = el('p', { class: 'upload-details' });
    this.element = el(
      'li',
      { class: 'upload', attrs: { tabindex: '-1' } },
      el(
        'div',
        { class: 'upload-head' },
        fileThumbnail(task.file),
        el('span', { class: 'upload-name ellipsis', text: task.file.name, attrs: { title: task.file.name } }),
        el('span', { class: 'upload-size', text: formatBytes(task.bytesTotal) }),
      ),
      this.details,
      this.bar,
      this.stats,
      el('div', { class: 'upload-state' }, this.sign, this.status),
      this.note,
      this.record,
      el(
        'div',
        { class: 'upload-actions' },
        this.buttons.pause,
        this.buttons.resume,
        this.buttons.retry,
        this.buttons.cancel,
      ),
    );
    this.update();
  }

  update(): void {
    const t = this.task;
    // 'warning': an outage the page waits out; 'error': stopped until the person acts.
    this.element.className = `upload ${t.state}${t.state === 'retrying' ? ' warning' : ''}`;
    this.element.dataset.state = t.state;
    this.bar.value = t.bytesDone;
    const speed = t.meter.bytesPerSecond();
    const moving = t.state === 'uploading' && speed > 0;
    const average = t.averageBytesPerSecond();
    // Finished: what it took, kept on the row (time spent sending in this visit, paused time not counted).
    this.stats.textContent =
      t.state === 'done'
        ? [
            `${formatBytes(t.bytesTotal)} of ${formatBytes(t.bytesTotal)}`,
            `in ${formatDuration(t.elapsedMs() / 1000)}`,
            t.sentBytes > 0 && average > 0 ? `average ${formatSpeed(average)}` : '',
          ]
            .filter(Boolean)
            .join(' · ')
        : [
            `${formatBytes(t.bytesDone)} of ${formatBytes(t.bytesTotal)}`,
            moving ? formatSpeed(speed) : '',
            moving ? `${formatDuration(t.meter.secondsLeft(t.bytesDone, t.bytesTotal))} left` : '',
          ]
            .filter(Boolean)
            .join(' · ');
    const details = describeDetails(t.details);
    this.details.textContent = details;
    this.details.title = details;
    this.details.hidden = !details;
    this.status.textContent = t.message;
    this.note.textContent = t.note;
    this.note.hidden = !t.note;
    this.renderRecord();

    const focused = Object.values(this.buttons).find((b) => b === document.activeElement);
    this.buttons.pause.hidden = !t.pausable;
    this.buttons.resume.hidden = t.state !== 'paused';
    this.buttons.retry.hidden = !(t.canRetry || t.waitingToRetry);
    const retryLabel = t.waitingToRetry ? 'Retry now' : 'Retry';
    this.buttons.retry.textContent = retryLabel;
    this.buttons.retry.setAttribute('aria-label', `${retryLabel} ${t.file.name}`);
    this.buttons.cancel.hidden = !t.cancellable;
    // Keyboard users: Pause turns into Resume (and back) under the focus instead of dropping it to the page.
    if (focused?.hidden) (Object.values(this.buttons).find((b) => !b.hidden) ?? this.element).focus();
  }

  get finished(): boolean {
    return this.task.state === 'done' || this.task.state === 'cancelled';
  }

  private renderRecord(): void {
    const answer = this.task.answer;
    if (answer?.kind !== 'delivered' || !answer.record) {
      this.record.replaceChildren();
      return;
    }
    const r = answer.record;
    const href = safeHref(r.url);
    this.record.replaceChildren(
      `Record ${r.id} · md5 `,
      el('code', { text: r.md5 }),
      ' · ',
      href ? downloadLink(href, r.name || this.task.file.name) : 'no download link',
    );
  }
}

/** Where the optional details went, as the row shows them: the completion form's fields. */
export function describeDetails(details: Record<string, string>): string {
  return Object.entries(details)
    .filter(([, v]) => v)
    .map(([k, v]) => `${k}: ${v}`)
    .join(' · ');
}
