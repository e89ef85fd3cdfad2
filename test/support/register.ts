// What the register unit tests share (not a test file: tap runs *.test.ts only): the settings of a
// `register` run and an apply result with nothing failed.
import { buildConfig } from '../../src/config/load.ts';
import type { ApplyResult } from '../../src/register/apply.ts';
import type { RegisterSettings } from '../../src/register/plan.ts';

/** `register`'s defaults (dnssrv, cluster.local, ConfigMap monitoring/thanos-query-endpoints, no restarts), with `overrides`. */
export const registerSettings = (overrides: Partial<RegisterSettings> = {}): RegisterSettings => ({
  endpoints: 'dnssrv',
  clusterDomain: 'cluster.local',
  queryNamespace: 'monitoring',
  configMapName: 'thanos-query-endpoints',
  restartUninjected: false,
  owner: { kind: 'MutatingWebhookConfiguration', name: 'thanos-sidecar-injector', required: false },
  injection: buildConfig({}),
  ...overrides,
});

/** An apply result with no failed write other than `failures`, nothing newly registered or restarted. */
export const applyResult = (failures: string[] = []): ApplyResult => ({ failures, failedServices: new Set(), configMapFailed: false, newlyRegistered: [], restarted: [] });
