// The operator's routes: /healthz (the process answers), /readyz (it should get new work: readiness.ts)
// and /metrics (Prometheus text, metrics.ts). /health is kept as an alias of /healthz (earlier
// releases answered there).
//
// Who may read /metrics: on its own listener (METRICS_PORT, loopback by default) anyone who can reach
// it; on the main port, anyone while authentication is off (the server is then loopback-only), and
// only a caller whose token has the admin scope once it is on — the metrics name no uploads, but
// they tell an outsider how busy the server is and how full its disk is.
import express from 'express';
import { METRICS_CONTENT_TYPE, registry } from '../ops/metrics.ts';
import type { Readiness } from '../ops/readiness.ts';

export interface OpsRoutesOptions {
  /** The readiness of this process (readiness.ts). */
  ready: () => Promise<Readiness>;
  /** Serve /metrics here. */
  metrics: boolean;
  /** What a /metrics request must pass first (the admin scope when authentication is on). */
  metricsGuard?: express.RequestHandler;
}

const noStore = (res: express.Response) => res.set('Cache-Control', 'no-store');

export function opsRoutes(options: OpsRoutesOptions): express.Router {
  const router = express.Router({ caseSensitive: true, strict: true });
  router.get(['/healthz', '/health'], (_req, res) => {
    noStore(res).json({ ok: true });
  });
  router.get('/readyz', async (_req, res, next) => {
    try {
      const r = await options.ready();
      noStore(res)
        .status(r.ready ? 200 : 503)
        .json(r);
    } catch (e) {
      next(e);
    }
  });
  if (options.metrics) {
    // The admin-scope check (auth/middleware.ts authenticate) when authentication is on, on the main port.
    const guard: express.RequestHandler = options.metricsGuard ?? ((_req, _res, next) => next());
    router.get('/metrics', guard, async (_req, res, next) => {
      try {
        const text = await registry.metrics();
        noStore(res).type(METRICS_CONTENT_TYPE).send(text);
      } catch (e) {
        next(e);
      }
    });
  }
  // Refusals of the guard (401/403 with their WWW-Authenticate) go on to the app's error responder
  // (error-answer.ts), as JSON: the upload app's and the metrics listener's both end in it.
  return router;
}
