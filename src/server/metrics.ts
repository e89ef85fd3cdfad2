// The injector's Prometheus metrics (prom-client), one registry per server instance.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  registry: Registry;
  admissions: Counter<'outcome' | 'reason'>;
  duration: Histogram<'outcome'>;
  certificateExpiry: Gauge;
  tlsReloads: Counter<'result'>;
  caBundlePatches: Counter<'result'>;
}

/** The series the chart's alerts and dashboard watch: exported at 0 from the start, because rate()
 * cannot see the first increment of a series that appears with value 1. */
const WATCHED_ADMISSIONS = [
  { outcome: 'injected', reason: 'injected' },
  { outcome: 'denied', reason: 'invalid-annotation' },
  { outcome: 'denied', reason: 'unsupported-pod' },
  { outcome: 'denied', reason: 'ephemeral-tsdb' },
  { outcome: 'error', reason: 'internal-error' },
] as const;

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const admissions = new Counter({
    name: 'thanos_injector_admissions_total',
    help: 'Admission reviews answered, by outcome (injected, skipped, denied, error) and reason.',
    labelNames: ['outcome', 'reason'],
    registers: [registry],
  });
  for (const labels of WATCHED_ADMISSIONS) admissions.inc(labels, 0);
  return {
    registry,
    admissions,
    duration: new Histogram({
      name: 'thanos_injector_admission_duration_seconds',
      help: 'Time to answer one admission review, from parsed request to serialised response.',
      labelNames: ['outcome'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    certificateExpiry: new Gauge({
      name: 'thanos_injector_certificate_expiry_timestamp_seconds',
      help: 'When the serving certificate expires (Unix time).',
      registers: [registry],
    }),
    tlsReloads: new Counter({
      name: 'thanos_injector_tls_reloads_total',
      help: 'Serving certificate reloads from disk, by result (success, failure).',
      labelNames: ['result'],
      registers: [registry],
    }),
    caBundlePatches: new Counter({
      name: 'thanos_injector_cabundle_patches_total',
      help: 'PATCHes of the webhook configuration that restored its caBundle (certs mode auto), by result (success, failure).',
      labelNames: ['result'],
      registers: [registry],
    }),
  };
}
