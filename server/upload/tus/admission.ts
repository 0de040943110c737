// The creation gate: an upload is admitted only while the notice queue can still take its
// completion, and — an early answer, before any hook runs — only if the store and the owner's share
// can hold it. What is owed and to whom is kept by the store's free-space ledger (space-ledger.ts
// SpaceLedger.check), which decides again, atomically, when the upload is created.
import type express from 'express';
import { ERRORS, isCapacityRefusal, TuspassError } from '../../../core/errors.ts';
import { concatRoleOf } from './protocol-guards.ts';
import { nonNegativeInteger } from '../../http/tus-headers.ts';
import { ownerKey, uploadOwnerOf } from '../../auth/upload-owner.ts';
import { answerError } from '../../http/error-answer.ts';

/** What the gate needs of the notice queue (hooks/queue.ts NoticeQueue). */
export interface QueueGauge {
  isFull(): boolean;
}

/** Seconds a client is asked to wait when the notice queue is full. */
const QUEUE_RETRY_AFTER_S = 60;

/**
 * POST /files/: refuses a creation with 503 ERR_QUEUE_FULL + Retry-After while the notice queue is
 * full (back-pressure instead of dropping notices), with 507 ERR_STORAGE_FULL when the store cannot
 * hold its Upload-Length, and with 429 when its owner is at its limits. Finals are checked by
 * final-handler.ts once their total is known; a deferred length when a PATCH declares it.
 */
export function creationGate(deps: {
  space: { check(bytes: number, owner: string | undefined): Promise<void> };
  queue: QueueGauge;
  behindProxy: boolean;
  log: (line: string) => void;
}): express.RequestHandler {
  return async (req, res, next) => {
    try {
      if (deps.queue.isFull()) {
        throw Object.assign(new TuspassError(ERRORS.ERR_QUEUE_FULL), {
          headers: { 'Retry-After': String(QUEUE_RETRY_AFTER_S) },
        });
      }
      if (concatRoleOf(req) === 'final') return next();
      // A malformed length is refused by the guards (400); a deferred one is 0 bytes for now.
      await deps.space.check(
        nonNegativeInteger(req.get('upload-length')) ?? 0,
        ownerKey(uploadOwnerOf(req, deps.behindProxy)),
      );
      next();
    } catch (e) {
      // Its refusals by design are logged once, by the refused-request line (server/http/request-id.ts).
      if (e instanceof TuspassError && !isCapacityRefusal(e.code))
        deps.log(`tus POST ${req.originalUrl}: ${e.code}: ${e.message}`);
      answerError(req, res, e, { log: deps.log, form: 'tus' });
    }
  };
}
