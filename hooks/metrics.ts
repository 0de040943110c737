// The hook layer's metrics, named as tusd's pkg/hooks names them so tusd dashboards work. Registered
// in no registry here: the server adds them to its own (server/ops/metrics.ts), and a process without a
// server (`tuspass hooks test`) counts into nothing.
import { Counter } from 'prom-client';
import { HOOK_EVENTS } from './types.ts';

/** One per hook handler invoked on one event (a queued notice's every delivery attempt counts). */
export const hookInvocationsTotal = new Counter({
  name: 'tusd_hook_invocations_total',
  help: 'Total number of invocations per hook type.',
  labelNames: ['hooktype'],
  registers: [],
});
/** Invocations that failed or timed out (a hook's deliberate rejection is an answer, not an error). */
export const hookErrorsTotal = new Counter({
  name: 'tusd_hook_errors_total',
  help: 'Total number of execution errors per hook type.',
  labelNames: ['hooktype'],
  registers: [],
});

// tusd reports these series at 0 from the start, so a rate() has a first point.
for (const type of HOOK_EVENTS) {
  hookInvocationsTotal.labels(type).inc(0);
  hookErrorsTotal.labels(type).inc(0);
}

export const HOOK_METRICS = [hookInvocationsTotal, hookErrorsTotal];
