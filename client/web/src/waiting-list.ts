// "Waiting to resume": uploads of an earlier visit that did not finish, read from what tus-js-client
// keeps in localStorage (`tus::<fingerprint>::<n>` → size, metadata, upload URL(s)). A browser cannot
// reopen a file by itself, so the list names each one with the bytes the server holds (a HEAD per
// upload URL, parts summed) and the details typed for it, and offers the file picker: choosing the
// same file resumes it (UploadTask), with the details it started with. An entry can be discarded:
// once the person confirms, its stored URLs are forgotten and the server deletes what it holds
// (tus termination), so neither this page nor the server keeps a partial upload nobody will finish.
import { formatBytes } from '../../shared/units.ts';
import { confirmAction } from './confirm-dialog.ts';
import { el } from './dom.ts';
import { fileIcon } from './file-icon.ts';

export interface WaitingUpload {
  key: string;
  /** Every stored entry of this file (tus-js-client may have kept more than one), forgotten together. */
  keys: string[];
  /** The upload URLs of all those entries, deleted together. */
  allUrls: string[];
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
  const entries = new Map<string, { keys: string[]; urls: string[] }>();
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
    const all = entries.get(id) ?? { keys: [], urls: [] };
    all.keys.push(key);
    all.urls.push(...urls);
    entries.set(id, all);
    const existing = found.get(id);
    if (existing && existing.created >= created) continue;
    found.set(id, {
      key,
      keys: all.keys,
      allUrls: all.urls,
      name,
      size: value.size,
      metadata: value.metadata ?? {},
      urls,
      created,
    });
  }
  return [...found.values()].sort((a, b) => b.created - a.created).map(({ created: _created, ...w }) => w);
}

/** Bytes the server holds for the upload (sum of its parts); undefined when gone or unreachable. */
async function serverOffset(urls: string[], headers: Record<string, string>): Promise<number | undefined> {
  let total = 0;
  for (const url of urls) {
    try {
      const res = await fetch(url, {
        method: 'HEAD',
        headers: { ...headers, 'Tus-Resumable': '1.0.0' },
        cache: 'no-store',
      });
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
    /** Where the focus goes when the last entry is discarded. */
    private readonly home: HTMLElement,
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
    await Promise.all(
      items.map(async (item) => {
        item.offset = await serverOffset(item.urls, this.headers());
      }),
    );
    this.render();
  }

  /** A file chosen again leaves the list (its row takes over). */
  remove(file: File): void {
    const before = this.items.length;
    this.items = this.items.filter((w) => !(w.name === file.name && w.size === file.size));
    if (this.items.length !== before) this.render();
  }

  /** After the person confirms: forget the entry here and delete its bytes on the server. */
  private async discard(w: WaitingUpload): Promise<void> {
    const held =
      w.offset === undefined ? 'The bytes the server holds' : `The ${formatBytes(w.offset)} the server holds`;
    const yes = await confirmAction({
      title: `Discard the partly uploaded ${w.name}?`,
      text:
        `${held} are deleted, and this browser forgets the upload: choosing the file again starts it from the ` +
        'beginning.',
      keep: 'Keep it',
      confirm: 'Discard',
    });
    if (!yes) return;
    const at = this.items.indexOf(w);
    try {
      for (const key of w.keys) localStorage.removeItem(key);
    } catch {
      // No localStorage: nothing was remembered to forget.
    }
    this.items = this.items.filter((x) => x !== w);
    this.render();
    const buttons = this.list.querySelectorAll<HTMLButtonElement>('button.discard');
    (buttons[Math.min(at, buttons.length - 1)] ?? this.home).focus();
    // tus termination: the server "SHOULD free associated resources" on DELETE; when it cannot be
    // reached or refuses, the partial upload expires there on its own.
    await Promise.all(
      w.allUrls.map((url) =>
        fetch(url, { method: 'DELETE', headers: { ...this.headers(), 'Tus-Resumable': '1.0.0' } }).catch(
          () => undefined,
        ),
      ),
    );
  }

  private render(): void {
    this.section.hidden = this.items.length === 0;
    this.list.replaceChildren(...this.items.map((w) => this.renderItem(w)));
  }

  private renderItem(w: WaitingUpload): HTMLLIElement {
    const held = w.offset === undefined ? 'partly uploaded' : `${formatBytes(w.offset)} of ${formatBytes(w.size)}`;
    const details = [
      w.metadata.name && `name “${w.metadata.name}”`,
      w.metadata.description && `description “${w.metadata.description}”`,
    ]
      .filter(Boolean)
      .join(', ');
    const button = el('button', {
      text: 'Choose it again',
      attrs: { type: 'button', 'aria-label': `Choose it again: ${w.name}` },
    });
    button.addEventListener('click', this.openPicker);
    const discard = el('button', {
      text: 'Discard',
      class: 'plain discard',
      attrs: { type: 'button', 'aria-label': `Discard ${w.name}` },
    });
    discard.addEventListener('click', () => void this.discard(w));
    return el(
      'li',
      { class: 'waiting-item', attrs: { 'data-name': w.name } },
      fileIcon(w.name, w.metadata.filetype),
      el(
        'span',
        { class: 'waiting-text' },
        el('span', { class: 'ellipsis waiting-name', text: w.name, attrs: { title: w.name } }),
        el('span', { class: 'waiting-held', text: `${held} — choose it again` }),
        details ? el('span', { class: 'waiting-details ellipsis', text: details, attrs: { title: details } }) : null,
      ),
      el('span', { class: 'waiting-actions' }, button, discard),
    );
  }
}
