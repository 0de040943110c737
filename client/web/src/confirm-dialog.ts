// Asks before a step that deletes bytes from the server (Cancel once bytes were sent, Cancel all,
// Discard a waiting upload): a modal <dialog> in the page, not window.confirm, so it is styled like
// the page, names both choices in words, and leaves the page running. The safe choice has the focus;
// Escape is the safe choice; on closing, the browser gives the focus back to what opened it.
import { byId } from './dom.ts';

export interface Question {
  title: string;
  text: string;
  /** The destructive choice, e.g. "Cancel upload". */
  confirm: string;
  /** The safe choice, e.g. "Keep uploading". */
  keep: string;
}

/** Resolves true only when the destructive choice was pressed. */
export function confirmAction(question: Question): Promise<boolean> {
  const dialog = byId<HTMLDialogElement>('confirm');
  if (dialog.open) return Promise.resolve(false);
  byId('confirm-title').textContent = question.title;
  byId('confirm-text').textContent = question.text;
  const keep = byId<HTMLButtonElement>('confirm-keep');
  const yes = byId<HTMLButtonElement>('confirm-yes');
  keep.textContent = question.keep;
  yes.textContent = question.confirm;
  return new Promise((resolve) => {
    const answer = (confirmed: boolean) => () => dialog.close(confirmed ? 'confirm' : 'keep');
    const onKeep = answer(false);
    const onYes = answer(true);
    keep.addEventListener('click', onKeep);
    yes.addEventListener('click', onYes);
    dialog.addEventListener(
      'close',
      () => {
        keep.removeEventListener('click', onKeep);
        yes.removeEventListener('click', onYes);
        resolve(dialog.returnValue === 'confirm');
      },
      { once: true },
    );
    dialog.returnValue = '';
    dialog.showModal();
    keep.focus();
  });
}
