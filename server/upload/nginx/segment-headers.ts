// A segment of the nginx upload module's resumable mode, as its headers describe it: the session
// (`Session-ID` or `X-Session-ID`), its range (`X-Content-Range` or `Content-Range`: `bytes a-b/total`),
// the file's name (`Content-Disposition: attachment; filename="…"`), checked before anything is read.
import type express from 'express';
import type { Config } from '../../config/config.ts';
import { ERRORS, TuspassError } from '../../../core/errors.ts';
import { maxSizeError, maxSizeFor } from '../../auth/middleware.ts';
import { nonNegativeInteger } from '../../http/tus-headers.ts';
import { ownerKey, uploadOwnerOf, type UploadOwner } from '../../auth/upload-owner.ts';
import type { Range } from './byte-ranges.ts';
import { sessionKey } from './session-state.ts';

const SESSION_ID = /^[A-Za-z0-9_.:-]{1,128}$/;
const CONTENT_RANGE = /^bytes (\d{1,16})-(\d{1,16})\/(\d{1,16})$/;

/** A POST to UPLOAD_FORM_PATH that is a resumable segment, not a multipart form. */
export const isResumable = (req: express.Request): boolean =>
  !/^multipart\//i.test(req.get('content-type') ?? '') &&
  ['session-id', 'x-session-id', 'x-content-range', 'content-disposition'].some((h) => req.get(h) !== undefined);

/** filename="…" (or filename*=UTF-8''…) of an attachment disposition. */
export function attachmentName(header: string | undefined): string | undefined {
  if (!header || !/^\s*attachment\s*[;,]/i.test(header)) return undefined;
  const star = /filename\*\s*=\s*(?:UTF-8|utf-8)''([^;]+)/.exec(header);
  if (star) {
    try {
      return decodeURIComponent(star[1]!.trim());
    } catch {
      return undefined;
    }
  }
  const quoted = /filename\s*=\s*"((?:[^"\\]|\\.)*)"/i.exec(header);
  if (quoted) return quoted[1]!.replace(/\\(.)/g, '$1');
  return /filename\s*=\s*([^;\s]+)/i.exec(header)?.[1];
}

/** One segment, as its headers describe it. */
export interface Segment {
  sessionId: string;
  /** The token's `sub`, '' when anonymous. */
  owner: string;
  /** Whose upload a new session's is, and whose limits and share of the session cap it counts against. */
  creator: UploadOwner;
  key: string;
  range: Range;
  total: number;
  name: string;
  contentType: string;
}

/** The segment a request carries, or the refusal of its headers (400, 416, 413). */
export function parseSegment(req: express.Request, config: Config): Segment {
  const sessionId = req.get('session-id') ?? req.get('x-session-id');
  const rangeText = req.get('x-content-range') ?? req.get('content-range');
  const name = attachmentName(req.get('content-disposition'));
  const m = rangeText ? CONTENT_RANGE.exec(rangeText.trim()) : null;
  if (!sessionId || !SESSION_ID.test(sessionId) || !m || name === undefined)
    throw new TuspassError(ERRORS.ERR_RESUMABLE_HEADERS);
  const [a, b, total] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (!(a <= b && b < total)) throw new TuspassError(ERRORS.ERR_RESUMABLE_RANGE, `bytes ${a}-${b}/${total}`);
  const contentLength = nonNegativeInteger(req.get('content-length'));
  if (contentLength !== undefined && contentLength !== b - a + 1)
    throw new TuspassError(ERRORS.ERR_RESUMABLE_RANGE, `Content-Length ${contentLength} for ${b - a + 1} bytes`);
  if (total > maxSizeFor(config, req)) throw maxSizeError(config, req, total);
  const creator = uploadOwnerOf(req, config.behindProxy);
  const owner = creator.sub ?? '';
  // A session belongs to whoever started it (a subject, or an anonymous caller's address): another
  // caller's Session-ID is another session.
  const key = sessionKey({ owner, holder: ownerKey(creator), sessionId });
  return {
    sessionId,
    owner,
    creator,
    key,
    range: [a, b],
    total,
    name,
    contentType: req.get('content-type') || 'application/octet-stream',
  };
}
