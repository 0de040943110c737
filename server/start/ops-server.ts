// What a server process offers its operator, put together once for `start`, `upload-server` and
// `completion-server`: the /healthz, /readyz and /metrics routes for the main port, the metrics
// sources (queue, free-space ledger), and the METRICS_PORT listener when one is configured.
import type { AddressInfo } from 'node:net';
import express from 'express';
import { isLoopback, loopbackNamesOnly } from '../auth/loopback.ts';
import { authenticate } from '../auth/middleware.ts';
import type { Config } from '../config/config.ts';
import { ERRORS, TuspassError } from '../../core/errors.ts';
import { listenOn } from './listen.ts';
import { addMetricsSource, collectProcessMetrics, type MetricsSource } from '../ops/metrics.ts';
import { createHttpServer, stopServer } from '../http/network-timeout.ts';
import { opsRoutes } from './ops-routes.ts';
import { freeBytes, readiness, type ReadinessDeps } from '../ops/readiness.ts';
import { answerError } from '../http/error-answer.ts';

export interface OpsDeps {
  /** The notice queue (stats for /metrics, QUEUE_MAX for /readyz). */
  queue?: ReadinessDeps['queue'] & NonNullable<MetricsSource['queue']>;
  /**
   * The store's free-space ledger: bytes owed to unfinished uploads (/metrics), and where a disk holds
   * the uploads (`disk`; none in S3) its free space (/metrics) and the room left (/readyz).
   */
  space?: { readonly owed: number; readonly disk: string | undefined; room(): Promise<number> };
  /** Checked by /readyz: the store is writable (the upload server). */
  storeDir?: string;
  catalog?: ReadinessDeps['catalog'];
  /** The engines /readyz asks besides the store (readiness.ts): redis, postgres, completion. */
  engines?: ReadinessDeps['engines'];
  /** What /metrics on the main port must pass. Default: a bearer token with the admin scope when authentication is
   * on. */
  metricsGuard?: express.RequestHandler;
  log: (line: string) => void;
}

export interface Ops {
  /** /healthz, /health, /readyz and (unless METRICS_PORT or METRICS=false) /metrics, for the main app. */
  routes: express.Router;
  /** Starts the METRICS_PORT listener if configured; its URL, or undefined. */
  listen(): Promise<string | undefined>;
  /** /readyz answers 503 "shutdown" from now on. */
  stopping(): void;
  /** Closes the METRICS_PORT listener and leaves the metrics sources. */
  close(): Promise<void>;
}

export function setUpOps(config: Config, deps: OpsDeps): Ops {
  let stopping = false;
  // No disk holds the uploads (S3): no free space to be ready by; the bucket is an engine of its own.
  const ready = readiness({
    storeDir: deps.storeDir,
    space: deps.space?.disk === undefined ? undefined : deps.space,
    catalog: deps.catalog,
    catalogSetting: config.databaseUrl ? 'DATABASE_URL' : 'CATALOG_PATH',
    queue: deps.queue,
    engines: deps.engines,
    stopping: () => stopping,
  });
  let leave = () => {};
  if (config.metrics) {
    collectProcessMetrics();
    const space = deps.space;
    const disk = space?.disk;
    leave = addMetricsSource({
      queue: deps.queue,
      space: space && {
        free: disk === undefined ? undefined : () => freeBytes(disk),
        get owed() {
          return space.owed;
        },
      },
    });
  }
  const ownPort = config.metricsPort !== undefined;
  // On the main port /metrics needs the admin scope once authentication is on (a no-op while it is off).
  const metricsGuard = deps.metricsGuard ?? authenticate(config, () => 'admin');
  const routes = opsRoutes({ ready, metrics: config.metrics && !ownPort, metricsGuard });
  let server: ReturnType<typeof createHttpServer> | undefined;

  return {
    routes,
    async listen() {
      if (!ownPort) return undefined;
      const app = express();
      app.disable('x-powered-by');
      // On its own listener, reachable only where METRICS_HOST is: no token asked. On a loopback
      // address only requests addressed to this machine by name are answered (DNS rebinding).
      if (isLoopback(config.metricsHost)) app.use(loopbackNamesOnly);
      app.use(opsRoutes({ ready, metrics: config.metrics }));
      app.use((_req, _res, next) => next(new TuspassError(ERRORS.ERR_NOT_FOUND)));
      app.use((err: unknown, req: express.Request, res: express.Response, _next: express.NextFunction) =>
        answerError(req, res, err, { log: deps.log, service: 'metrics listener', form: 'json' }),
      );
      server = createHttpServer(app, config.networkTimeoutMs, deps.log);
      await listenOn(server, config.metricsPort!, config.metricsHost, 'METRICS_PORT', 'METRICS_HOST');
      const { port } = server.address() as AddressInfo;
      const host = config.metricsHost.includes(':') ? `[${config.metricsHost}]` : config.metricsHost;
      return `http://${host}:${port}`;
    },
    stopping() {
      stopping = true;
    },
    async close() {
      leave();
      if (server) await stopServer(server, 0, deps.log);
    },
  };
}
