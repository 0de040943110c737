// "Waiting to resume": uploads of an earlier visit that did not finish, read from what tus-js-client
// keeps in localStorage (`tus::<fingerprint>::<n>` → size, metadata, upload URL(s)). A browser cannot
// reopen a file by itself, so the list names each one with the bytes the server holds (a HEAD per
// upload URL, parts summed) and the details typed for it, and offers the file picker: choosing the
// same file resumes it (UploadTask), with the details it started with.
import { formatBytes } from '../../shared/units.ts';
import { el } from './dom.ts';
import { fileIcon } from './file-icon.ts';

export interface WaitingUpload {
  key: string;
  name: string;
  size: number;
  metadata: Record<string, string>;
  urls: string[];
  /** Bytes on the server, when it could tell. */
  offset?: number;
}

interface StoredUpload {
  size?: number;
  metadata?: Record<string, string>;
  uploadUrl?: string | null;
  parallelUploadUrls?: string[] | null;
  creationTime?: string;
}

/** The newest entry per file (name and size), as tus-js-client would resume it. */
export function readWaitingUploads(storage: Storage = localStorage): WaitingUpload[] {
  const found = new Map<string, WaitingUpload & { created: number }>();
  for (let i = 0; i < storage.length; i++) {
    const key = storage.key(i);
    if (!key?.startsWith('tus::')) continue;
    let value: StoredUpload;
    try {
      value = JSON.parse(storage.getItem(key) ?? '') as StoredUpload;
    } catch {
      continue;
    }
    const urls = value.parallelUploadUrls?.length ? value.parallelUploadUrls : value.uploadUrl ? [value.uploadUrl] : [];
    const name = value.metadata?.filename;
    if (!name || typeof value.size !== 'number' || urls.length === 0) continue;
    const created = Date.parse(value.creationTime ?? '') || 0;
    const id = `${name}\u0000${value.size}`;
    const existing = found.get(id);
    if (existing && existing.created >= created) continue;
    found.set(id, { key, name, size: value.size, metadata: value.metadata ?? {}, urls, created });
  }
  return [...found.values()].sort((a, b) => b.created - a.created).map(({ created: _created, ...w }) => w);
}

/** Bytes the server holds for the upload (sum of its parts); undefined when gone or unreachable. */
async function serverOffset(urls: string[], headers: Record<string, string>): Promise<number | undefined> {
  let total = 0;
  for (const url of urls) {
    try {
      const res = await fetch(url, { method: 'HEAD', headers: { ...headers, 'Tus-Resumable': '1.0.0' }, cache: 'no-store' });
      if (!res.ok) return undefined;
      total += Number(res.headers.get('Upload-Offset')) || 0;
    } catch {
      return undefined;
    }
  }
  return total;
}

export class WaitingList {
  private items: WaitingUpload[] = [];

  constructor(
    private readonly section: HTMLElement,
    private readonly list: HTMLUListElement,
    private readonly openPicker: () => void,
    private readonly headers: () => Record<string, string>,
  ) {}

  async load(): Promise<void> {
    let items: WaitingUpload[];
    try {
      items = readWaitingUploads();
    } catch {
      return; // no localStorage: nothing was remembered
    }
    this.items = items;
    this.render();
    await Promise.all(items.map(async (item) => {
      item.offset = await serverOffset(item.urls, this.headers());
    }));
    this.render();
  }

  /** A file chosen again leaves the list (its row takes over). */
  remove(file: File): void {
    const before = this.items.length;
    this.items = this.items.filter((w) => !(w.name === file.name && w.size === file.size));
    if (this.items.length !== before) this.render();
  }

  private render(): void {
    this.section.hidden = this.items.length === 0;
    this.list.replaceChildren(...this.items.map((w) => this.renderItem(w)));
  }

  private renderItem(w: WaitingUpload): HTMLLIElement {
    const held = w.offset === undefined ? 'partly uploaded' : `${formatBytes(w.offset)} of ${formatBytes(w.size)}`;
    const details = [w.metadata.name && `name “${w.metadata.name}”`, w.metadata.description && `description “${w.metadata.description}”`].filter(Boolean).join(', ');
    const button = el('button', { text: 'Choose it again', attrs: { type: 'button', 'aria-label': `Choose it again: ${w.name}` } });
    button.addEventListener('click', this.openPicker);
    return el(
      'li',
      { class: 'waiting-item', attrs: { 'data-name': w.name } },
      fileIcon(w.name, w.metadata.filetype),
      el('span', { class: 'waiting-text' },
        el('span', { class: 'ellipsis waiting-name', text: w.name, attrs: { title: w.name } }),
        el('span', { class: 'waiting-held', text: `${held} — choose it again` }),
        details ? el('span', { class: 'waiting-details ellipsis', text: details, attrs: { title: details } }) : null),
      button,
    );
  }
}
