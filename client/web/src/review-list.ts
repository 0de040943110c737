// The review list: chosen files wait here (see review-setting.ts for when) so the person can remove
// some, add more (the list's button, the drop zone, or dropping on the list), and then upload them
// together with "Upload n files". Nothing is sent before that.
import { formatBytes } from '../../shared/units.ts';
import { byId, el } from './dom.ts';
import { fileThumbnail } from './file-icon.ts';

const sameFile = (a: File, b: File) => a.name === b.name && a.size === b.size && a.lastModified === b.lastModified;
const files = (n: number) => `${n} file${n === 1 ? '' : 's'}`;

export class ReviewList {
  private files: File[] = [];
  private readonly section = byId<HTMLElement>('review');
  private readonly title = byId<HTMLHeadingElement>('review-title');
  private readonly list = byId<HTMLUListElement>('review-list');
  private readonly upload = byId<HTMLButtonElement>('review-upload');

  constructor(
    private readonly start: (files: File[]) => void,
    private readonly openPicker: () => void,
    /** Where the focus goes when the list empties without uploading. */
    private readonly home: HTMLElement,
    /** How the list describes when files wait in it (the review setting in words). */
    private readonly hint: () => string,
  ) {
    this.upload.addEventListener('click', () => this.uploadAll());
    byId('review-add').addEventListener('click', this.openPicker);
    byId('review-clear').addEventListener('click', () => this.clear());
  }

  get waiting(): boolean {
    return this.files.length > 0;
  }

  /** Adds files (a file already listed is not listed twice) and moves the focus to the list's title. */
  add(added: File[]): void {
    for (const file of added) if (!this.files.some((f) => sameFile(f, file))) this.files.push(file);
    this.render();
    this.title.focus();
  }

  private uploadAll(): void {
    const chosen = this.files;
    this.files = [];
    this.render();
    this.start(chosen);
  }

  private clear(): void {
    this.files = [];
    this.render();
    this.home.focus();
  }

  private remove(file: File): void {
    const at = this.files.indexOf(file);
    this.files.splice(at, 1);
    this.render();
    // The focus stays in the list: on the file that took this one's place, else the one before, else home.
    const buttons = this.list.querySelectorAll('button');
    (buttons[Math.min(at, buttons.length - 1)] ?? this.home).focus();
  }

  private render(): void {
    const n = this.files.length;
    this.section.hidden = n === 0;
    const size = this.files.reduce((sum, f) => sum + f.size, 0);
    this.title.textContent = `Ready to upload: ${files(n)}, ${formatBytes(size)}`;
    byId('review-hint').textContent = this.hint();
    this.upload.textContent = `Upload ${files(n)}`;
    this.list.replaceChildren(...this.files.map((file) => this.renderItem(file)));
  }

  private renderItem(file: File): HTMLLIElement {
    const remove = el('button', {
      text: 'Remove',
      class: 'plain',
      attrs: { type: 'button', 'aria-label': `Remove ${file.name}` },
    });
    remove.addEventListener('click', () => this.remove(file));
    return el(
      'li',
      { class: 'review-item' },
      fileThumbnail(file),
      el('span', { class: 'review-name ellipsis', text: file.name, attrs: { title: file.name } }),
      el('span', { class: 'review-size', text: formatBytes(file.size) }),
      remove,
    );
  }
}
