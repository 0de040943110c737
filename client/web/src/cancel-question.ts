// Cancel deletes what was sent from the server, which Pause would have kept: once bytes were
// sent, the page asks first (confirm-dialog.ts) and says how much would go. Before any byte
// was sent there is nothing to lose, and nothing is asked.
import { formatBytes } from '../../shared/units.ts';
import { confirmAction } from './confirm-dialog.ts';
import type { UploadTask } from './upload-task.ts';

/** Resolves true when the uploads may be cancelled: nothing sent yet, or the person said so. */
export async function confirmCancel(tasks: UploadTask[]): Promise<boolean> {
  const sent = tasks.reduce((n, t) => n + t.bytesDone, 0);
  if (sent === 0) return true;
  const total = tasks.reduce((n, t) => n + t.bytesTotal, 0);
  const one = tasks.length === 1 ? tasks[0] : undefined;
  return confirmAction({
    title: one ? `Cancel the upload of ${one.file.name}?` : `Cancel ${tasks.length} uploads?`,
    text:
      `${formatBytes(sent)} of ${formatBytes(total)} were sent. Cancelling stops ${one ? 'the upload' : 'them'} and ` +
      'what was sent is deleted from the server. To stop for now and go on later, press ' +
      `${one ? 'Pause' : 'Pause all'} instead.`,
    keep: 'Keep uploading',
    confirm: one ? 'Cancel upload' : `Cancel ${tasks.length} uploads`,
  });
}
