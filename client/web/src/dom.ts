// Builds elements with text set through textContent only: upload names and fields come from
// other people's files and forms, and must never be parsed as HTML.

type Child = Node | string | null | undefined | false;

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: { class?: string; text?: string; attrs?: Record<string, string> } = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (props.class) node.className = props.class;
  if (props.text !== undefined) node.textContent = props.text;
  for (const [name, value] of Object.entries(props.attrs ?? {})) node.setAttribute(name, value);
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child);
  }
  return node;
}

export function byId<T extends HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`page is missing #${id}`);
  return node as T;
}

/**
 * A link only for http(s) URLs, resolved against the page: an answer from the app could
 * carry `javascript:` and must not become a clickable script.
 */
export function safeHref(url: string): string | undefined {
  try {
    const u = new URL(url, document.baseURI);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.toString() : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A download link named by its file ("Download report.pdf" to a screen reader, a column of
 * "Download" links otherwise being indistinguishable), showing only "Download" to the eye.
 */
export function downloadLink(href: string, fileName: string): HTMLAnchorElement {
  return el(
    'a',
    { class: 'download', attrs: { href, download: '' } },
    'Download',
    el('span', { class: 'visually-hidden', text: ` ${fileName}` }),
  );
}
