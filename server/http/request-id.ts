// One id per request, for following a request through the log (and through a proxy's and an app's
// logs: an X-Request-Id a proxy set is kept). The id is echoed in the answer's X-Request-Id and put
// back into the request's headers, so hook payloads (their HTTPRequest.Header) carry it too.
// A refused request (status 400 or more) is logged once, when its answer is sent: status, ERR_ code,
// method and path (never the query, which may hold a token). A refusal by design (the server busy
// or full, a caller at its limits: ErrorEntry.capacity in core/errors.ts) is logged by this line
// alone, at warn, with what the error gives the log: it is not a fault, and an alert on error lines
// must not fire on it. The handlers that log the errors they answer leave those to this line.
import crypto from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type express from 'express';
import { isCapacityRefusal } from '../../core/errors.ts';
import { pathForLog, type Log } from '../../core/logger.ts';
import { REQUEST_ID_HEADER } from '../../core/wire.ts';

/** What an incoming id may look like to be kept: short, printable, nothing that could forge a log line. */
const SANE = /^[A-Za-z0-9][A-Za-z0-9._:@+=/-]{0,127}$/;

const ASSIGNED = new WeakMap<IncomingMessage, string>();
/** The ERR_ code an answer was refused with (and its detail for the log), noted where errors become answers. */
const CODES = new WeakMap<ServerResponse, { code: string; logDetail?: string | undefined }>();

/** The request's id (assigned by the middleware), if it went through it. */
export function requestIdOf(req: IncomingMessage): string | undefined {
  return ASSIGNED.get(req);
}

/** Notes the ERR_ code of an error answer (and the error's detail for the log), for the refused-request line. */
export function noteErrorCode(res: ServerResponse, code: string, logDetail?: string): void {
  CODES.set(res, { code, logDetail });
}

/** Assigns the request id (once per request, however many apps it passes through) and logs refusals. */
export function requestIds(log: Log): express.RequestHandler {
  return (req, res, next) => {
    if (ASSIGNED.has(req)) return next();
    const incoming = req.headers[REQUEST_ID_HEADER];
    const id = typeof incoming === 'string' && SANE.test(incoming) ? incoming : crypto.randomUUID();
    ASSIGNED.set(req, id);
    req.headers[REQUEST_ID_HEADER] = id;
    res.setHeader('X-Request-Id', id);
    res.once('finish', () => {
      if (res.statusCode < 400) return;
      const { code, logDetail } = CODES.get(res) ?? {};
      const capacity = isCapacityRefusal(code);
      const uploadId = /^\/files\/([^/?#]+)/i.exec(req.originalUrl ?? req.url ?? '')?.[1];
      const detail = capacity && logDetail ? ` (${logDetail})` : '';
      log(
        `refused ${req.method} ${pathForLog(req.originalUrl ?? req.url)}: ` +
          `${res.statusCode}${code ? ` ${code}` : ''}${detail}`,
        {
          event: 'request.refused',
          level: capacity ? 'warn' : res.statusCode >= 500 ? 'error' : 'info',
          status: res.statusCode,
          code,
          method: req.method,
          path: pathForLog(req.originalUrl ?? req.url),
          upload_id: uploadId,
          request_id: id,
        },
      );
    });
    next();
  };
}
