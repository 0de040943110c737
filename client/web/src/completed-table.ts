// The table of completed uploads from the completion service's catalog (GET api/uploads),
// polled so that uploads finished in other tabs or by `tuspass push` appear without a reload.
import type { RecordJson } from '../../../core/record.ts';
import { formatBytes } from '../../shared/units.ts';
import { downloadLink, el } from './dom.ts';
import { fileIcon } from './file-icon.ts';
import { describeDetails } from './upload-row.ts';

const POLL_MS = 3000;

export class CompletedTable {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private lastJson = '';

  constructor(
    private readonly body: HTMLTableSectionElement,
    private readonly status: HTMLElement,
    private readonly listUrl: string,
    private readonly auth: {
      /** The bearer token's header, for the list and downloads. */
      headers(): Record<string, string>;
      /** The server wants a token (another one): the page shows its token field. */
      needsToken(): void;
      /** The list loaded: whatever token was sent, it was good for this. */
      listed(): void;
    },
  ) {}

  start(): void {
    void this.refresh();
  }

  /** Fetches now (e.g. right after an upload finished) and schedules the next poll. */
  async refresh(): Promise<void> {
    clearTimeout(this.timer);
    try {
      if (document.visibilityState !== 'hidden') await this.load();
    } finally {
      this.timer = setTimeout(() => void this.refresh(), POLL_MS);
    }
  }

  private async load(): Promise<void> {
    let res: Response;
    try {
      res = await fetch(this.listUrl, {
        headers: { ...this.auth.headers(), Accept: 'application/json' },
        cache: 'no-store',
      });
    } catch {
      this.status.textContent = 'Cannot reach the server to list completed uploads; trying again.';
      return;
    }
    if (res.status === 401 || res.status === 403) {
      this.status.textContent = 'This server needs an access token (the field above) to list your completed uploads.';
      this.auth.needsToken();
      this.lastJson = '';
      this.body.replaceChildren();
      return;
    }
    if (!res.ok) {
      this.status.textContent = `The server could not list completed uploads (status ${res.status}); trying again.`;
      return;
    }
    this.auth.listed();
    const text = await res.text();
    if (text === this.lastJson) return;
    let rows: RecordJson[];
    try {
      rows = JSON.parse(text) as RecordJson[];
      if (!Array.isArray(rows)) throw new Error('not a list');
    } catch {
      this.status.textContent = 'The server answered the list of completed uploads with something unreadable.';
      return;
    }
    this.lastJson = text;
    rows.sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at));
    this.body.replaceChildren(...rows.map((row) => this.renderRow(row)));
    this.status.textContent = rows.length
      ? `${rows.length} completed upload${rows.length === 1 ? '' : 's'}.`
      : 'No completed uploads yet.';
  }

  private renderRow(row: RecordJson): HTMLTableRowElement {
    const when = new Date(row.created_at);
    const download = new URL(
      `${encodeURIComponent(row.id)}/file`,
      new URL(this.listUrl.replace(/\/?$/, '/'), document.baseURI),
    );
    const details = describeDetails(row.fields ?? {});
    // The name: one line with an ellipsis, the full name on hover (title) and in the download link's name.
    // The md5 whole at any width, in two halves of 16 when the column is narrow; the details wrap, never cut.
    return el(
      'tr',
      { attrs: { 'data-id': row.id } },
      el(
        'td',
        { class: 'cell-name', attrs: { 'data-label': 'File' } },
        el(
          'div',
          { class: 'cell-flex' },
          fileIcon(row.name, row.content_type),
          el('span', { class: 'ellipsis', text: row.name, attrs: { title: row.name } }),
        ),
      ),
      el('td', { text: formatBytes(Number(row.size)), attrs: { 'data-label': 'Size' } }),
      el(
        'td',
        { class: 'cell-md5', attrs: { 'data-label': 'MD5' } },
        el(
          'div',
          { class: 'cell-flex' },
          el('code', { class: 'md5' }, row.md5.slice(0, 16), el('wbr'), row.md5.slice(16)),
          this.copyButton(row.md5, row.name),
        ),
      ),
      el(
        'td',
        { class: 'cell-details', attrs: { 'data-label': 'Details' } },
        el('span', { class: 'details-text', text: details }),
      ),
      el(
        'td',
        { attrs: { 'data-label': 'When' } },
        el('time', {
          text: Number.isNaN(when.getTime())
            ? row.created_at
            : when.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'short' }),
          attrs: { datetime: row.created_at, title: when.toString() },
        }),
      ),
      el('td', {}, this.downloadLink(download.toString(), row.name)),
    );
  }

  private copyButton(md5: string, name: string): HTMLButtonElement {
    const button = el('button', {
      class: 'copy',
      text: 'Copy',
      attrs: { type: 'button', 'aria-label': `Copy the md5 of ${name}` },
    });
    button.addEventListener('click', () => {
      void navigator.clipboard.writeText(md5).then(
        () => {
          this.status.textContent = `Copied the md5 of ${name}.`;
        },
        () => {
          this.status.textContent = `The browser did not allow copying; the md5 of ${name} is ${md5}.`;
        },
      );
    });
    return button;
  }

  /**
   * A plain link cannot carry the bearer token: with a token, the click fetches the file with it
   * and saves what came (held in memory until saved).
   */
  private downloadLink(url: string, name: string): HTMLAnchorElement {
    const link = downloadLink(url, name);
    link.addEventListener('click', (event) => {
      const headers = this.auth.headers();
      if (!headers.Authorization) return;
      event.preventDefault();
      void (async () => {
        const res = await fetch(url, { headers, cache: 'no-store' });
        if (!res.ok) {
          this.status.textContent = `The download of ${name} failed (status ${res.status}).`;
          return;
        }
        const blob = URL.createObjectURL(await res.blob());
        const save = el('a', { attrs: { href: blob, download: name || 'download' } });
        document.body.append(save);
        save.click();
        save.remove();
        setTimeout(() => URL.revokeObjectURL(blob), 60_000);
      })();
    });
    return link;
  }
}
