// One line of `thanos-injector check`: what was checked, how it went, and what to do about it.
// Every check is a function from fetched objects to rows; only `fail` makes the command fail.

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

export interface CheckRow {
  name: string;
  status: CheckStatus;
  /** One line: what was found and, unless ok, what to do. */
  detail: string;
}

export const ok = (name: string, detail: string): CheckRow => ({ name, status: 'ok', detail });
export const warn = (name: string, detail: string): CheckRow => ({ name, status: 'warn', detail });
export const fail = (name: string, detail: string): CheckRow => ({ name, status: 'fail', detail });
export const skip = (name: string, detail: string): CheckRow => ({ name, status: 'skip', detail });

/** Warnings are advice; only a failed check makes `check` exit 1. */
export function exitCodeOf(rows: readonly CheckRow[]): number {
  return rows.some((row) => row.status === 'fail') ? 1 : 0;
}

/** Row names, shared by the checks, the CLI and the tests. */
export const CHECK = {
  webhookConfiguration: 'webhook configuration',
  webhooks: 'webhooks',
  matchConditions: 'webhook matchConditions',
  injectorReachable: 'injector reachable',
  caBundle: 'caBundle',
  certificateExpiry: 'serving certificate expiry',
  injectorConfig: 'injector configuration',
  policy: 'injection policy',
  queryConfigMap: 'query registration configmap',
  namespace: 'namespace injection',
  labelsDistinct: 'external labels distinct',
  pod: 'pod',
  podDecision: 'pod would be injected',
  podInjected: 'pod injected',
  podContainers: 'pod containers',
  tsdbVolume: 'tsdb volume',
  sidecarCurrent: 'sidecar up to date',
  ownSidecar: 'own thanos sidecar',
  objstoreSecret: 'objstore secret',
  externalLabels: 'prometheus external_labels',
  podRegistered: 'pod registered with query',
  sidecarUploads: 'sidecar uploads',
  historyUpload: 'history upload',
} as const;
