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

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    admissions: new Counter({
      name: 'thanos_injector_admissions_total',
      help: 'Admission reviews answered, by outcome (injected, skipped, denied, error) and reason.',
      labelNames: ['outcome', 'reason'],
      registers: [registry],
    }),
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
