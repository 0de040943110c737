// The upload page: wires the drop zone, the optional details, one UploadTask + UploadRow per file,
// the total across files, the uploads waiting from an earlier visit, the server's limits, and the
// completed uploads table. Every URL is relative to the page, so nothing is fetched from another
// origin (the server's Content-Security-Policy enforces it too).
import { formatBytes, UNIT_CONVENTION } from '../../shared/units.ts';
import { CompletedTable } from './completed-table.ts';
import { byId } from './dom.ts';
import { attachDropZone } from './drop-zone.ts';
import { attachParallelSetting } from './parallel-setting.ts';
import { fetchServerLimits } from './server-limits.ts';
import { attachTokenSetting, authHeaders } from './token-setting.ts';
import { UploadRow } from './upload-row.ts';
import { UploadTask } from './upload-task.ts';
import { WaitingList } from './waiting-list.ts';

const endpoint = new URL('files/', document.baseURI).toString();
const tasks: UploadTask[] = [];
const rows = new Map<UploadTask, UploadRow>();
const list = byId<HTMLUListElement>('uploads');
const pageMessage = byId<HTMLParagraphElement>('page-message');
const nameField = byId<HTMLInputElement>('field-name');
const descriptionField = byId<HTMLTextAreaElement>('field-description');
const fileInput = byId<HTMLInputElement>('file-input');
const totalBar = byId<HTMLProgressElement>('total-progress');
const totalStats = byId<HTMLParagraphElement>('total-stats');
const current = byId<HTMLElement>('current');
const clearFinished = byId<HTMLButtonElement>('clear-finished');
const parallelUploads = attachParallelSetting(byId<HTMLInputElement>('setting-parallel'));
// First, before anything is fetched: a #token= fragment is taken out of the address bar at once.
const token = attachTokenSetting(byId<HTMLInputElement>('setting-token'));
const headers = () => authHeaders(token());
const completed = new CompletedTable(
  byId<HTMLTableElement>('completed').tBodies[0]!,
  byId('completed-status'),
  new URL('api/uploads', document.baseURI).toString(),
  headers,
  () => {
    byId<HTMLDetailsElement>('settings-fold').open = true;
  },
);
const waiting = new WaitingList(byId('waiting'), byId<HTMLUListElement>('waiting-list'), () => fileInput.click(), headers);
let maxSize: number | undefined;

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

/** The bar and line across all files of this visit (cancelled ones left out). */
function updateTotal(): void {
  const counted = tasks.filter((t) => t.state !== 'cancelled');
  const total = counted.reduce((n, t) => n + t.bytesTotal, 0);
  const done = counted.reduce((n, t) => n + t.bytesDone, 0);
  const finished = counted.filter((t) => t.state === 'done').length;
  totalBar.max = Math.max(total, 1);
  totalBar.value = done;
  totalStats.textContent = `Total: ${formatBytes(done)} of ${formatBytes(total)} · ${finished} of ${counted.length} file${counted.length === 1 ? '' : 's'} finished`;
  clearFinished.disabled = ![...rows.values()].some((r) => r.finished);
  current.hidden = tasks.length === 0;
}

function changed(task: UploadTask): void {
  rows.get(task)?.update();
  updateTotal();
}

function addFiles(files: File[]): void {
  showPageMessage('');
  const problems: string[] = [];
  for (const file of files) {
    // Refused here, before any request: the server would answer 413 to the creation anyway.
    if (maxSize !== undefined && file.size > maxSize) {
      problems.push(`${file.name} is ${formatBytes(file.size)}, larger than the ${formatBytes(maxSize)} this server accepts, so it was not uploaded.`);
      continue;
    }
    // Two uploads of one file would fight over the same server upload (it is locked per request).
    if (tasks.some((t) => t.sameFileAs(file) && (t.active || t.state === 'paused'))) {
      problems.push(`${file.name} is already uploading on this page. Use its Pause and Resume buttons.`);
      continue;
    }
    waiting.remove(file);
    const task = new UploadTask(file, { metadata: fieldMetadata(), endpoint, parallelUploads: parallelUploads(), headers }, changed, () => void completed.refresh());
    const row = new UploadRow(task);
    tasks.push(task);
    rows.set(task, row);
    list.prepend(row.element);
    void task.start();
  }
  updateTotal();
  if (problems.length) showPageMessage(problems.join(' '));
}

clearFinished.addEventListener('click', () => {
  for (const [task, row] of rows) {
    if (!row.finished) continue;
    row.element.remove();
    rows.delete(task);
    tasks.splice(tasks.indexOf(task), 1);
  }
  updateTotal();
  // The button may have just become disabled: keep the keyboard focus in the list's section.
  if (clearFinished.disabled) byId('current-title').setAttribute('tabindex', '-1');
  if (clearFinished.disabled && !current.hidden) byId('current-title').focus();
});

attachDropZone(byId('drop-zone'), fileInput, addFiles);

// Back online after a dropped network: retry what failed because the server was out of reach.
window.addEventListener('online', () => {
  for (const task of tasks) if (task.state === 'error' && task.failure?.kind === 'unreachable') task.retry();
});
window.addEventListener('offline', () => showPageMessage('The browser is offline. Uploads will stop; they resume when you are back online.'));

void fetchServerLimits(endpoint, headers()).then((limits) => {
  maxSize = limits.maxSize;
  byId('limits').textContent = maxSize === undefined ? 'This server announces no size limit.' : `Largest file this server accepts: ${formatBytes(maxSize)}.`;
});
void waiting.load();
completed.start();
