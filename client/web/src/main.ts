// The upload page: wires the drop zone, the review list, the access token, the optional details,
// one UploadTask per file in "This visit", the uploads waiting from an earlier visit, the server's
// limits, and the completed uploads table. Every URL is relative to the page, so nothing is fetched
// from another origin (the server's Content-Security-Policy enforces it too).
import { formatBytes, UNIT_CONVENTION } from '../../shared/units.ts';
import { CompletedTable } from './completed-table.ts';
import { CurrentUploads } from './current-uploads.ts';
import { byId } from './dom.ts';
import { acceptDrops, attachDropZone } from './drop-zone.ts';
import { attachParallelSetting } from './parallel-setting.ts';
import { ReviewList } from './review-list.ts';
import { attachReviewSetting, shouldReview } from './review-setting.ts';
import { fetchServerLimits } from './server-limits.ts';
import { authHeaders, TokenPanel } from './token-panel.ts';
import { UploadTask, type TaskState } from './upload-task.ts';
import { WaitingList } from './waiting-list.ts';

const endpoint = new URL('files/', document.baseURI).toString();
const pageMessage = byId<HTMLParagraphElement>('page-message');
const nameField = byId<HTMLInputElement>('field-name');
const descriptionField = byId<HTMLTextAreaElement>('field-description');
const fileInput = byId<HTMLInputElement>('file-input');
const dropZone = byId('drop-zone');
const openPicker = () => fileInput.click();
const current = new CurrentUploads();
const parallelUploads = attachParallelSetting(byId<HTMLInputElement>('setting-parallel'));
const reviewMode = attachReviewSetting(byId<HTMLSelectElement>('setting-review'));
// First, before anything is fetched: a #token= fragment is taken out of the address bar at once.
const token = new TokenPanel(() => {
  for (const task of current.tasks) if (task.state === 'error' && task.tokenProblem) task.retry();
  void completed.refresh();
  refreshLimits();
});
const headers = () => authHeaders(token.token);
const completed = new CompletedTable(
  byId<HTMLTableElement>('completed').tBodies[0]!,
  byId('completed-status'),
  new URL('api/uploads', document.baseURI).toString(),
  { headers, needsToken: () => token.needed(), listed: () => token.listed() },
);
const waiting = new WaitingList(byId('waiting'), byId<HTMLUListElement>('waiting-list'), openPicker, headers, dropZone);
const review = new ReviewList(
  (files) => {
    startUploads(files);
    current.focusTitle();
  },
  openPicker,
  dropZone,
  () =>
    ({
      several:
        'Several files chosen at once wait here, and a single file starts at once; Settings, “Review before ' +
        'uploading”, changes that.',
      always: 'Every chosen file waits here until you upload it; Settings, “Review before uploading”, changes that.',
      never: 'These files wait here until you upload them.',
    })[reviewMode()],
);
let maxSize: number | undefined;
/** Each task's state when last seen, to tell a new token refusal from one already shown. */
const lastState = new Map<UploadTask, TaskState>();

byId('units').textContent = `Sizes and speeds use decimal units: ${UNIT_CONVENTION}.`;

function showPageMessage(text: string): void {
  pageMessage.textContent = text;
  pageMessage.hidden = !text;
}

/** Pass-through fields of the completion form (PASS_FIELDS), sent only when filled in. */
function fieldMetadata(): Record<string, string> {
  const metadata: Record<string, string> = {};
  if (nameField.value.trim()) metadata.name = nameField.value.trim();
  if (descriptionField.value.trim()) metadata.description = descriptionField.value.trim();
  return metadata;
}

function changed(task: UploadTask): void {
  current.changed(task);
  // Refused for its token just now: the token field says so and takes the focus (once per refusal).
  if (task.state === 'error' && task.tokenProblem && lastState.get(task) !== 'error')
    token.refused(task.tokenProblem, task.file.name);
  lastState.set(task, task.state);
  token.retries = current.tasks.some((t) => t.state === 'error' && t.tokenProblem);
}

function startUploads(files: File[]): void {
  for (const file of files) {
    waiting.remove(file);
    const task = new UploadTask(
      file,
      { metadata: fieldMetadata(), endpoint, parallelUploads: parallelUploads(), headers },
      { changed, finished: () => void completed.refresh() },
    );
    current.add(task);
    void task.start();
  }
}

/** Files chosen or dropped: refused here when they cannot go, else reviewed or started as the setting says. */
function addFiles(files: File[]): void {
  showPageMessage('');
  const problems: string[] = [];
  const accepted: File[] = [];
  for (const file of files) {
    // Refused here, before any request: the server would answer 413 to the creation anyway.
    if (maxSize !== undefined && file.size > maxSize) {
      problems.push(
        `${file.name} is ${formatBytes(file.size)}, larger than the ${formatBytes(maxSize)} this server accepts, ` +
          'so it was not uploaded.',
      );
      continue;
    }
    // Two uploads of one file would fight over the same server upload (it is locked per request).
    if (current.tasks.some((t) => t.sameFileAs(file) && (t.active || t.state === 'paused'))) {
      problems.push(`${file.name} is already uploading on this page. Use its Pause and Resume buttons.`);
      continue;
    }
    accepted.push(file);
  }
  if (accepted.length && shouldReview(reviewMode(), accepted.length, review.waiting)) review.add(accepted);
  else startUploads(accepted);
  if (problems.length) showPageMessage(problems.join(' '));
}

attachDropZone(dropZone, fileInput, addFiles);
acceptDrops(byId('review'), addFiles);

// Back online after a dropped network: try at once what waits for the server.
window.addEventListener('online', () => {
  for (const task of current.tasks) if (task.waitingToRetry) task.retryNow();
});
window.addEventListener('offline', () =>
  showPageMessage('The browser is offline. Uploads wait, and go on by themselves when you are back online.'),
);

/** The largest file, asked again when the token changes (a token may carry a smaller max_size). */
function refreshLimits(): void {
  void fetchServerLimits(endpoint, headers()).then((limits) => {
    maxSize = limits.maxSize;
    byId('limits').textContent =
      maxSize === undefined
        ? 'This server announces no size limit.'
        : `Largest file this server accepts: ${formatBytes(maxSize)}.`;
  });
}

refreshLimits();
void waiting.load();
completed.start();
