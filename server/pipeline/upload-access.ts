// The access step: the one place a request on an existing upload is let through or refused, whatever
// front-end it came by — tus's HEAD, GET, PATCH and DELETE (and a POST standing for one), the IETF
// draft's HEAD, GET, PATCH and DELETE, a final upload's partials, a resumable segment of an open
// session, the completion API's download and removal of a record's file. Two rules, in this order:
//
// 1. The owner. The subject that created an upload (kept in its info file) and admins may act on it;
//    anyone else is told there is no such upload, as for an id that does not exist (existence is not
//    revealed). An upload a request of the nginx module is still writing (StoredInfo.resumable) is no
//    tus upload yet, for anyone: a resumable session's file may be full length with holes in it, so a
//    HEAD would report bytes never sent, a GET serve the holes and a PATCH finish it behind its
//    session's back; a multipart request's part is not finished before its request posts the form.
//    Only the session writing it reaches it (`segmented`).
// 2. The pre-access hook, when a hook takes it: the upload as stored, the request, the caller
//    (Event.Auth) and the mode (read or write). RejectAccess refuses the request.
//
// A request naming an upload that does not exist passes untouched (no hook is called with an upload
// made up): the route answers as it does for any missing upload (404, 410). The step runs before
// the route takes the upload's lock: a refused request never asks a running PATCH to let go, nor
// waits for one, and the upload's bytes, offset and state are as they were.
import type { IncomingMessage } from 'node:http';
import type express from 'express';
import { ERRORS as TUS_ERRORS } from '@tus/utils';
import { ERRORS, TuspassError } from '../../core/errors.ts';
import { mayAccess, principalOf } from '../auth/principal.ts';
import type { UploadStore } from '../backends/store/upload-store.ts';
import { httpRequestOf, type UploadEvents } from './upload-events.ts';

export type AccessMode = 'read' | 'write';

/** What a request reads or writes, by its method (after X-HTTP-Method-Override); other methods touch no upload. */
const MODES: Readonly<Record<string, AccessMode>> = { HEAD: 'read', GET: 'read', PATCH: 'write', DELETE: 'write' };

export interface AccessAsk {
  mode: AccessMode;
  /** What the caller is told when the upload is not theirs: the route's "no such upload". */
  hidden: () => Error;
  /** The request is the one writing the upload in segments (a resumable segment of its session). */
  segmented?: boolean;
}

type Found = { owner: string | undefined; segmented: boolean };

/** Missing, removed or expired meanwhile: the route answers that; the hook is not called. */
const gone = (e: unknown) =>
  e === TUS_ERRORS.FILE_NOT_FOUND ||
  e === TUS_ERRORS.FILE_NO_LONGER_EXISTS ||
  (e as NodeJS.ErrnoException)?.code === 'ENOENT';

export class UploadAccess {
  /**
   * Asked once: the hook handlers are fixed for the life of the server. Without a pre-access hook the
   * step is the owner check it always was: no read, no await, no allocation added per request.
   */
  private readonly hooked: boolean;

  constructor(
    private readonly store: UploadStore,
    private readonly events: UploadEvents,
  ) {
    this.hooked = events.wants('pre-access');
  }

  /** The step for the routes of one upload (`/files/:id`, the draft's `/:id`); refusals go to their error handler. */
  middleware(): express.RequestHandler {
    const hidden = () => new TuspassError(ERRORS.ERR_UPLOAD_NOT_FOUND);
    return async (req, _res, next) => {
      const id = String(req.params.id);
      const found = await this.store.accessOf(id).catch(() => undefined);
      if (!found) return next();
      const refused = this.owner(req, found, hidden, false);
      if (refused) return next(refused);
      // OPTIONS and methods the route refuses (405) touch no upload: no hook.
      const mode = MODES[req.method];
      if (!this.hooked || !mode) return next();
      try {
        await this.hook(req, id, mode, found.owner);
      } catch (e) {
        return next(e);
      }
      next();
    };
  }

  /**
   * The step for a route that names uploads otherwise (a final's partials, a session's upload, a
   * record's file): resolves when the request may go on, throws the refusal.
   */
  async check(req: IncomingMessage, id: string, ask: AccessAsk): Promise<void> {
    const found = await this.store.accessOf(id).catch(() => undefined);
    if (!found) return;
    const refused = this.owner(req, found, ask.hidden, ask.segmented ?? false);
    if (refused) throw refused;
    if (this.hooked) await this.hook(req, id, ask.mode, found.owner);
  }

  private owner(req: IncomingMessage, found: Found, hidden: () => Error, segmented: boolean): Error | undefined {
    return found.segmented === segmented && mayAccess(principalOf(req), found.owner) ? undefined : hidden();
  }

  private async hook(req: IncomingMessage, id: string, mode: AccessMode, owner: string | undefined): Promise<void> {
    let found;
    try {
      found = await Promise.all([this.store.getUpload(id), this.store.concatOf(id)]);
    } catch (e) {
      if (gone(e)) return;
      throw e;
    }
    const [upload, concat] = found;
    const hookUpload = { ...this.events.hookUpload(upload, concat), Owner: owner ?? '' };
    await this.events.preAccess(httpRequestOf(req), hookUpload, mode);
  }
}
