// The upload page: wires the drop zone, the optional fields, one UploadTask + UploadRow per
// file, and the completed uploads table. Every URL is relative to the page, so nothing is
// fetched from another origin (the server's Content-Security-Policy enforces it too).
import { CompletedTable } from './completed-table.ts';
import { byId } from './dom.ts';
import { attachDropZone } from './drop-zone.ts';
import { attachParallelSetting } from './parallel-setting.ts';
import { attachTokenSetting, authHeaders } from './token-setting.ts';
import { UploadRow } from './upload-row.ts';
import { UploadTask } from './upload-task.ts';

const endpoint = new URL('files/', document.baseURI).toString();
const tasks: UploadTask[] = [];
const rows = new Map<UploadTask, UploadRow>();
const list = byId<HTMLUListElement>('uploads');
const pageMessage = byId<HTMLParagraphElement>('page-message');
const nameField = byId<HTMLInputElement>('field-name');
const descriptionField = byId<HTMLTextAreaElement>('field-description');
const parallelUploads = attachParallelSetting(byId<HTMLInputElement>('setting-parallel'));
// First, before anything is fetched: a #token= fragment is taken out of the address bar at once.
const token = attachTokenSetting(byId<HTMLInputElement>('setting-token'));
const headers = () => authHeaders(token());
const completed = new CompletedTable(
  byId<HTMLTableElement>('completed').tBodies[0]!,
  byId('completed-status'),
  new URL('api/uploads', document.baseURI).toString(),
  headers,
);

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

function addFiles(files: File[]): void {
  showPageMessage('');
  const busy: string[] = [];
  for (const file of files) {
    // Two uploads of one file would fight over the same server upload (it is locked per request).
    if (tasks.some((t) => t.sameFileAs(file) && (t.active || t.state === 'paused'))) {
      busy.push(file.name);
      continue;
    }
    const task = new UploadTask(file, { metadata: fieldMetadata(), endpoint, parallelUploads: parallelUploads(), headers }, (t) => rows.get(t)?.update(), () => void completed.refresh());
    const row = new UploadRow(task);
    tasks.push(task);
    rows.set(task, row);
    list.prepend(row.element);
    void task.start();
  }
  byId('current-title').hidden = tasks.length === 0;
  if (busy.length) showPageMessage(`Already uploading on this page: ${busy.join(', ')}. Use its Pause and Resume buttons.`);
}

attachDropZone(byId('drop-zone'), byId<HTMLInputElement>('file-input'), addFiles);

// Back online after a dropped network: retry what failed because the server was out of reach.
window.addEventListener('online', () => {
  for (const task of tasks) if (task.state === 'error' && task.failure?.kind === 'unreachable') task.retry();
});
window.addEventListener('offline', () => showPageMessage('The browser is offline. Uploads will stop; they resume when you are back online.'));

completed.start();
