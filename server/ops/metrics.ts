// The process's Prometheus metrics (prom-client): one registry, named metrics other modules import.
// What tusd measures keeps tusd's names, types and labels (tusd's pkg/prometheuscollector,
// cmd/tusd/cli/metrics.go, pkg/hooks), so dashboards and alerts written for tusd work unchanged;
// the rest is tuspass_*. prom-client's default Node process metrics come along.
//
// Cost on the request path: a counter's inc() (a number added), never per chunk; bytes are added
// once per PATCH or creation-with-upload. Values read from elsewhere (queue depth, free space) are
// computed when /metrics is scraped, not kept up to date.
import type http from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { HOOK_METRICS } from '../../hooks/metrics.ts';

export const registry = new Registry();
const registers = [registry];

// ---- tusd's names --------------------------------------------------------------------------------

/** Requests on the tus routes (/files…) per method, after X-HTTP-Method-Override (as tusd counts them). */
export const requestsTotal = new Counter({
  name: 'tusd_requests_total',
  help: 'Total number of requests served by tusd per method.',
  labelNames: ['method'],
  registers,
});
/** tus answers of 400 and above by status and ERR_ code (tusd: "Total number of errors per status."). */
export const errorsTotal = new Counter({
  name: 'tusd_errors_total',
  help: 'Total number of errors per status.',
  labelNames: ['status', 'code'],
  registers,
});
/** Bytes written to uploads from request bodies (PATCH and creation-with-upload). */
export const bytesReceived = new Counter({
  name: 'tusd_bytes_received',
  help: 'Number of bytes received for uploads.',
  registers,
});
export const uploadsCreated = new Counter({
  name: 'tusd_uploads_created',
  help: 'Number of created uploads.',
  registers,
});
export const uploadsFinished = new Counter({
  name: 'tusd_uploads_finished',
  help: 'Number of finished uploads.',
  registers,
});
export const uploadsTerminated = new Counter({
  name: 'tusd_uploads_terminated',
  help: 'Number of terminated uploads.',
  registers,
});
export const connectionsOpen = new Gauge({
  name: 'tusd_connections_open',
  help: 'Current number of open connections.',
  registers,
});
// tusd_hook_invocations_total and tusd_hook_errors_total are the hook layer's own (hooks/metrics.ts), as in tusd's
// pkg/hooks.
for (const metric of HOOK_METRICS) registry.registerMetric(metric);

// tusd reports these series at 0 from the start, so a rate() has a first point.
const METHODS = ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE', 'OPTIONS'] as const;
const byMethod = new Map(METHODS.map((m) => [m as string, requestsTotal.labels(m)]));

// ---- tuspass_* -----------------------------------------------------------------------------------

/** Completion forms by outcome: delivered (2xx), queued (to be retried), rejected (a cleanup status). */
export const completionNotices = new Counter({
  name: 'tuspass_completion_notices_total',
  help:
    'Completion forms by outcome: delivered (the app answered 2xx), queued (unreachable or 502/503/504: kept and ' +
    'retried), rejected (a CLEANUP_STATUSES answer; the upload removed).',
  labelNames: ['outcome'],
  registers,
});
for (const outcome of ['delivered', 'queued', 'rejected']) completionNotices.labels(outcome).inc(0);

/** From an upload's last byte to its completion handled: digests, pre-finish hooks, the form delivered or queued. */
export const finishSeconds = new Histogram({
  name: 'tuspass_finish_duration_seconds',
  help:
    "Time from an upload's last byte to its completion handled (digests, pre-finish hooks, completion form " +
    'delivered or queued).',
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers,
});
export const hashRingWaits = new Counter({
  name: 'tuspass_hash_ring_waits_total',
  help: 'Times a write waited for room in the hashing thread ring (the hashing thread is behind the disk).',
  registers,
});
/**
 * Requests that got no answer because their connection went before it (tusd has no metric of its
 * own for them: it counts a cut body in tusd_errors_total as a 500 ERR_CONNECTION_RESET or a 400
 * ERR_UNEXPECTED_EOF, so an alert on server errors fired on ordinary disconnects). By cause:
 * client_closed, taken_over (another request on the upload cut it: a client resuming),
 * network_timeout, shutdown.
 */
export const requestsDropped = new Counter({
  name: 'tuspass_requests_dropped_total',
  help:
    'Requests whose connection went before their answer (the bytes their body brought are kept where the route ' +
    'keeps partial bodies), by cause: client_closed, taken_over, network_timeout, shutdown.',
  labelNames: ['cause'],
  registers,
});
for (const cause of ['client_closed', 'taken_over', 'network_timeout', 'shutdown'])
  requestsDropped.labels(cause).inc(0);
export const uploadsExpired = new Counter({
  name: 'tuspass_uploads_expired_total',
  help: 'Unfinished uploads removed by the expiry sweep (EXPIRE_AFTER, EXPIRE_UNSTARTED_AFTER).',
  registers,
});

/** What a running server lets the scrape read: its queue and its store's free-space ledger. */
export interface MetricsSource {
  queue?: { stats(): { depth: number; oldestCreatedAt?: number } };
  /** `free` undefined: no disk holds the store's uploads (S3). */
  space?: { free?: () => Promise<number>; readonly owed: number };
}
const sources = new Set<MetricsSource>();

/** Registers a running server's queue and store for the gauges below; returns the unregister. */
export function addMetricsSource(source: MetricsSource): () => void {
  sources.add(source);
  return () => void sources.delete(source);
}

new Gauge({
  name: 'tuspass_queue_depth',
  help: 'Notices (completion forms, post-* hook events) waiting in the durable queue (QUEUE_MAX caps it).',
  registers,
  collect() {
    let depth = 0;
    for (const s of sources) depth += s.queue?.stats().depth ?? 0;
    this.set(depth);
  },
});
new Gauge({
  name: 'tuspass_queue_oldest_age_seconds',
  help: 'Age of the oldest notice waiting in the queue, 0 when it is empty.',
  registers,
  collect() {
    let oldest = Infinity;
    for (const s of sources) oldest = Math.min(oldest, s.queue?.stats().oldestCreatedAt ?? Infinity);
    this.set(oldest === Infinity ? 0 : Math.max(0, (Date.now() - oldest) / 1000));
  },
});
new Gauge({
  name: 'tuspass_store_free_bytes',
  help: "Free space of the store's file system (statfs, bytes available to tuspass); NaN when S3 holds the uploads.",
  registers,
  async collect() {
    // A bucket has no free space to tell: NaN (no value), so that no "store nearly full" alert fires on 0.
    let free = 0;
    let disks = 0;
    for (const s of sources) {
      if (!s.space?.free) continue;
      disks++;
      free += await s.space.free().catch(() => 0);
    }
    this.set(disks === 0 && [...sources].some((s) => s.space) ? Number.NaN : free);
  },
});
new Gauge({
  name: 'tuspass_store_owed_bytes',
  help:
    'Bytes promised to unfinished uploads of known length (declared lengths not yet written); with MIN_FREE_SPACE ' +
    'kept out of new admissions.',
  registers,
  collect() {
    let owed = 0;
    for (const s of sources) owed += s.space?.owed ?? 0;
    this.set(owed);
  },
});

// ---- the request path ----------------------------------------------------------------------------

/** Counts a request on the tus routes (tusd counts only the tus methods). */
export function countTusRequest(method: string): void {
  byMethod.get(method)?.inc();
}

/**
 * The ERR_ code of a tus answer's body: every tus error answer starts with it (`ERR_X: message`,
 * server/http/tus-response.ts, @tus/utils' errors included); anything else is a hook's own
 * answer (tusd's ERR_UPLOAD_REJECTED).
 */
export function tusErrorCode(body: string | undefined): string {
  return (body ? /^(ERR_[A-Z0-9_]+):/.exec(body)?.[1] : undefined) ?? 'ERR_UPLOAD_REJECTED';
}

/** Counts a tus answer of 400 or above. */
export function countTusError(status: number, code: string): void {
  if (status >= 400) errorsTotal.labels(String(status), code).inc();
}

/** tusd_connections_open follows this server's connections (one listener per connection). */
export function countConnections(server: http.Server): void {
  server.on('connection', (socket) => {
    connectionsOpen.inc();
    socket.once('close', () => connectionsOpen.dec());
  });
}

let defaults = false;
/** prom-client's default Node process metrics (CPU, memory, event loop lag, GC), once per process. */
export function collectProcessMetrics(): void {
  if (defaults) return;
  defaults = true;
  collectDefaultMetrics({ register: registry });
}

export const METRICS_CONTENT_TYPE = registry.contentType;

/**
 * Middleware on the tus routes: tusd_requests_total by the method the request stands for (a POST with
 * X-HTTP-Method-Override counts as that method, as tusd counts after its override).
 */
export function countTusRequests(req: http.IncomingMessage, _res: http.ServerResponse, next: () => void): void {
  const override = req.method === 'POST' ? req.headers['x-http-method-override'] : undefined;
  countTusRequest(typeof override === 'string' ? override.trim().toUpperCase() : (req.method ?? ''));
  next();
}
