// The `filetype` metadata for a file pushed from disk, from its extension (mime-types, the
// table express uses). Browsers send the type they know; a terminal has only the name, and the
// completion form's content_type field is more useful with a real type than always
// application/octet-stream.
import mime from 'mime-types';

export function contentTypeFor(file: string): string {
  // `.tgz` is missing from mime-db; a gzip stream is what it holds.
  return mime.lookup(file) || (/\.tgz$/i.test(file) ? 'application/gzip' : 'application/octet-stream');
}
