// File-type icons and image thumbnails for the upload rows, the waiting list and the table: a
// drawn page with the file's extension and a colour per kind (no icon font or image fetched),
// and for an image picked in this visit a thumbnail from a blob: URL of the file itself (the
// page's CSP allows img-src blob: for exactly this; nothing leaves the browser).
import { el } from './dom.ts';

export type FileKind = 'image' | 'video' | 'audio' | 'archive' | 'document' | 'text' | 'other';

const BY_EXTENSION: Record<string, FileKind> = {
  jpg: 'image',
  jpeg: 'image',
  png: 'image',
  gif: 'image',
  webp: 'image',
  svg: 'image',
  heic: 'image',
  avif: 'image',
  bmp: 'image',
  tif: 'image',
  tiff: 'image',
  mp4: 'video',
  mov: 'video',
  mkv: 'video',
  webm: 'video',
  avi: 'video',
  mp3: 'audio',
  wav: 'audio',
  flac: 'audio',
  ogg: 'audio',
  m4a: 'audio',
  zip: 'archive',
  gz: 'archive',
  tgz: 'archive',
  bz2: 'archive',
  xz: 'archive',
  '7z': 'archive',
  rar: 'archive',
  tar: 'archive',
  iso: 'archive',
  pdf: 'document',
  doc: 'document',
  docx: 'document',
  odt: 'document',
  xls: 'document',
  xlsx: 'document',
  ppt: 'document',
  pptx: 'document',
  txt: 'text',
  csv: 'text',
  json: 'text',
  md: 'text',
  log: 'text',
  xml: 'text',
  html: 'text',
};

export function extensionOf(name: string): string {
  const m = /\.([A-Za-z0-9]{1,5})$/.exec(name);
  return m ? m[1]!.toLowerCase() : '';
}

export function fileKind(name: string, type = ''): FileKind {
  const major = type.split('/')[0];
  if (major === 'image' || major === 'video' || major === 'audio') return major;
  if (type === 'application/pdf') return 'document';
  return BY_EXTENSION[extensionOf(name)] ?? (major === 'text' ? 'text' : 'other');
}

/** Images the browser can show as a thumbnail, and small enough to decode without a stall. */
const THUMBNAIL_TYPES = /^image\/(png|jpeg|gif|webp|avif|bmp)$/;
const THUMBNAIL_MAX_BYTES = 50 * 1000 * 1000;

/** The icon of a file by name and type: decorative (the name is always written beside it). */
export function fileIcon(name: string, type = ''): HTMLElement {
  const kind = fileKind(name, type);
  const ext = extensionOf(name).slice(0, 4).toUpperCase();
  return el('span', {
    class: `file-icon kind-${kind}`,
    text: ext || kind.slice(0, 3).toUpperCase(),
    attrs: { 'aria-hidden': 'true', 'data-kind': kind },
  });
}

/** A thumbnail for an image file picked in this visit, else its icon. Revokes its blob: URL once shown. */
export function fileThumbnail(file: File): HTMLElement {
  if (!THUMBNAIL_TYPES.test(file.type) || file.size > THUMBNAIL_MAX_BYTES) return fileIcon(file.name, file.type);
  const url = URL.createObjectURL(file);
  const img = el('img', {
    class: 'file-thumb',
    attrs: { src: url, alt: '', width: '40', height: '40', decoding: 'async' },
  });
  const done = () => URL.revokeObjectURL(url);
  img.addEventListener('load', done, { once: true });
  img.addEventListener(
    'error',
    () => {
      done();
      img.replaceWith(fileIcon(file.name, file.type));
    },
    { once: true },
  );
  return img;
}
