// Upload URLs and ids: made from the request (a creation's Location), read back from
// Upload-Concat lists (absolute or relative URLs), and checked on every /files/<...> request.
import type express from 'express';
import { publicOrigin } from '../../http/public-origin.ts';
import { TUS_PATH } from '../../http/tus-headers.ts';
// The id's one form (UPLOAD_ID) is a name on the wire: core/wire.ts.
import { UPLOAD_ID_CHARS } from '../../../core/wire.ts';

/** The express setting createUploadApp stores BEHIND_PROXY in, for the handlers that make upload URLs. */
export const BEHIND_PROXY_SETTING = 'tuspass behind proxy';

export function uploadUrl(req: express.Request, id: string): string {
  const { proto, host } = publicOrigin(req, req.app?.get(BEHIND_PROXY_SETTING) === true);
  return `${proto}://${host}${TUS_PATH}/${id}`;
}

/** The upload id a URL names, or undefined when it is not one of our upload URLs. */
export function idFromUrl(url: string): string | undefined {
  let path: string;
  try {
    path = new URL(url, 'http://relative.invalid').pathname;
  } catch {
    return undefined;
  }
  const m = new RegExp(`^${TUS_PATH}/(${UPLOAD_ID_CHARS})$`).exec(path);
  return m?.[1];
}

/** `/files`, `/files/` or `/files/<id>`, exactly as the client wrote it: no escapes, no dot segments, no trailing
 * parts. */
const CANONICAL_TUS_PATH = new RegExp(`^${TUS_PATH}(?:/|/${UPLOAD_ID_CHARS})?$`);

/**
 * How the raw request target names a tus resource: 'canonical', 'undecodable' (a malformed
 * escape), or 'alias' for any other spelling. Read from the target as received — express decodes
 * `%2F` in ids, so `/files/x%2F..%2F<id>` would otherwise reach the same file
 * under another lock key and another live digest state.
 */
export function tusPathForm(rawTarget: string): 'canonical' | 'undecodable' | 'alias' {
  // An absolute-form target (`GET http://host/files/<id>`, as proxies may send) names its path after the authority.
  const path = rawTarget.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '').split('?')[0]!;
  if (CANONICAL_TUS_PATH.test(path)) return 'canonical';
  try {
    decodeURIComponent(path);
  } catch {
    return 'undecodable';
  }
  return 'alias';
}
