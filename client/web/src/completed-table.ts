// The table of completed uploads from the completion service's catalog (GET api/uploads),
// polled so that uploads finished in other tabs or by `tuspass push` appear without a reload.
import { formatBytes } from '../../shared/units.ts';
import { el } from './dom.ts';

const POLL_MS = 3000;

interface CatalogRow {
  id: string;
  name: string;
  size: number;
  md5: string;
  content_type?: string;
  fields?: Record<string, string>;
  created_at: string;
}

export class CompletedTable {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private lastJson = '';

  constructor(
    private readonly body: HTMLTableSectionElement,
    private readonly status: HTMLElement,
    private readonly listUrl: string,
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
      res = await fetch(this.listUrl, { headers: { Accept: 'application/json' }, cache: 'no-store' });
    } catch {
      this.status.textContent = 'Cannot reach the server to list completed uploads; trying again.';
      return;
    }
    if (!res.ok) {
      this.status.textContent = `The server could not list completed uploads (status ${res.status}); trying again.`;
      return;
    }
    const text = await res.text();
    if (text === this.lastJson) return;
    let rows: CatalogRow[];
    try {
      rows = JSON.parse(text) as CatalogRow[];
      if (!Array.isArray(rows)) throw new Error('not a list');
    } catch {
      this.status.textContent = 'The server answered the list of completed uploads with something unreadable.';
      return;
    }
    this.lastJson = text;
    rows.sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at));
    this.body.replaceChildren(...rows.map((row) => this.renderRow(row)));
    this.status.textContent = rows.length ? `${rows.length} completed upload${rows.length === 1 ? '' : 's'}.` : 'No completed uploads yet.';
  }

  private renderRow(row: CatalogRow): HTMLTableRowElement {
    const when = new Date(row.created_at);
    const download = new URL(`${encodeURIComponent(row.id)}/file`, new URL(this.listUrl.replace(/\/?$/, '/'), document.baseURI));
    return el(
      'tr',
      { attrs: { 'data-id': row.id } },
      el('td', { text: row.name }),
      el('td', { text: formatBytes(Number(row.size)) }),
      el('td', {}, el('code', { text: row.md5 })),
      el('td', { text: row.fields?.description ?? '' }),
      el('td', {}, el('time', { text: Number.isNaN(when.getTime()) ? row.created_at : when.toLocaleString(), attrs: { datetime: row.created_at } })),
      el('td', {}, el('a', { text: 'Download', attrs: { href: download.toString(), download: '' } })),
    );
  }
}
