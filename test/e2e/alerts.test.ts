// The chart's alerting rules (templates/prometheusrule.yaml, in both
// registration modes), checked with the real promtool (built by test/cluster from Go modules):
// `promtool check rules` on the rendered `spec`, and `promtool test rules` with unit tests
// generated below, in which every rendered alert fires in at least one case (with its labels and
// expanded annotations) and stays quiet in at least one other. No cluster is needed.
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments, stringify } from 'yaml';
import { ensureTools, prometheusRelease } from '../cluster/build.ts';

const run = promisify(execFile);
const chart = join(new URL('../..', import.meta.url).pathname, 'charts/thanos-sidecar-injector');
const tools = await ensureTools({ log: (message) => t.comment(message) });

const release = 'tsi';
const namespace = 'observability';
/** The job labels prometheus-operator gives the targets: the chart's Service names. */
const job = `${release}-thanos-sidecar-injector`;
const registerJob = `${job}-register`;

type Mode = 'cronJob' | 'watch';
interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleGroups {
  groups: { name: string; rules: AlertRule[] }[];
}

/** The PrometheusRule's spec (a rule file: `groups:`) as helm renders it (with the ServiceMonitors, unless told). */
async function renderRules(mode: Mode, serviceMonitor = true): Promise<RuleGroups> {
  const sets = ['metrics.prometheusRule.enabled=true', `metrics.serviceMonitor.enabled=${serviceMonitor}`, ...(mode === 'watch' ? ['registration.mode=watch'] : [])];
  const { stdout } = await run(tools.helm, ['template', release, chart, '--namespace', namespace, ...sets.flatMap((s) => ['--set', s])]);
  const rules = parseAllDocuments(stdout)
    .map((document) => document.toJS() as { kind?: string; spec?: RuleGroups } | null)
    .filter((object) => object?.kind === 'PrometheusRule');
  if (rules.length !== 1 || !rules[0]?.spec) throw new Error(`expected one PrometheusRule with a spec, got ${rules.length}`);
  return rules[0].spec;
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}
async function promtool(...args: string[]): Promise<Result> {
  try {
    const { stdout, stderr } = await run(tools.promtool, args);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: unknown; stdout?: string; stderr?: string };
    if (typeof failed.code !== 'number') throw error;
    return { code: failed.code, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}
/** promtool's output, shown with a failed assertion. */
const output = (r: Result) => ({ stdout: r.stdout, stderr: r.stderr });

const directory = mkdtempSync(join(tmpdir(), 'tsi-alerts-'));
t.teardown(() => rmSync(directory, { recursive: true, force: true }));
let files = 0;
/** Writes a file into the temp folder; returns its path. */
function write(name: string, content: unknown): string {
  const file = join(directory, `${++files}-${name}`);
  writeFileSync(file, typeof content === 'string' ? content : stringify(content, { lineWidth: 0 }));
  return file;
}

// ---- Unit-test cases ----------------------------------------------------------------------------
// Time in promtool starts at 0 (Unix time 0), one sample per minute (interval 1m); series values use
// promtool's expanding notation ('0+1x40': 0, 1, 2, ... 40 samples; '5x40': 5 forty times).

interface AlertCase {
  alert: string;
  /** Only in this registration mode's rules (default: both). */
  mode?: Mode;
  behaviour: string;
  series: [series: string, values: string][];
  /** Evaluation time, e.g. '20m'. */
  at: string;
  /**
   * Absent: the alert must not be firing at `at`. Else it fires once, with these labels and the
   * rule's annotations, each template in them replaced by its expected expansion.
   */
  fires?: { labels: Record<string, string>; expansions?: Record<string, string> };
}

const ksm = 'job="kube-state-metrics"';
/** The sidecars' series, as the default metrics.prometheusRule.sidecarSelector matches them. */
const sidecar = 'job="monitoring/thanos-sidecars",container="thanos-sidecar"';
const sidecarPod = { '{{ $labels.namespace }}': 'monitoring', '{{ $labels.pod }}': 'prometheus-0' };
const day = 24 * 3600;
/** Buckets of thanos_injector_admission_duration_seconds (src/server/metrics.ts). */
const buckets = ['0.0001', '0.00025', '0.0005', '0.001', '0.0025', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '1', '+Inf'];
/** Histogram bucket series: per minute, `fast` admissions of 4 ms and `slow` ones of 40 ms. */
function latencies(perMinute: { fast: number; slow: number }): [string, string][] {
  return buckets.map((le) => {
    const bound = le === '+Inf' ? Infinity : Number(le);
    const count = (bound >= 0.004 ? perMinute.fast : 0) + (bound >= 0.04 ? perMinute.slow : 0);
    return [`thanos_injector_admission_duration_seconds_bucket{job="${job}",outcome="injected",le="${le}"}`, `0+${count}x40`];
  });
}
const warning = { labels: { severity: 'warning' } };

const cases: AlertCase[] = [
  // ThanosInjectorAdmissionErrors: sum(increase(admissions{outcome=~"error|denied"}[10m])) > 0, for 5m.
  { alert: 'ThanosInjectorAdmissionErrors', behaviour: 'fires after 5 minutes of denied and failed admissions', at: '15m', fires: warning, series: [
    [`thanos_injector_admissions_total{job="${job}",outcome="denied",reason="invalid-annotation"}`, '0+1x30'],
    [`thanos_injector_admissions_total{job="${job}",outcome="error",reason="internal-error"}`, '0+2x30'],
  ] },
  { alert: 'ThanosInjectorAdmissionErrors', behaviour: 'is only pending before 5 minutes', at: '4m', series: [
    [`thanos_injector_admissions_total{job="${job}",outcome="error",reason="internal-error"}`, '0+2x30'],
  ] },
  // The webhook exports its error and denial series at 0 from the start (src/server/metrics.ts), so
  // a single burst is an increase.
  { alert: 'ThanosInjectorAdmissionErrors', behaviour: 'fires after a single burst of errors', at: '10m', fires: warning, series: [
    [`thanos_injector_admissions_total{job="${job}",outcome="error",reason="internal-error"}`, '0 0 0 5x30'],
  ] },
  { alert: 'ThanosInjectorAdmissionErrors', behaviour: 'resolves 10 minutes after the burst', at: '20m', series: [
    [`thanos_injector_admissions_total{job="${job}",outcome="error",reason="internal-error"}`, '0 0 0 5x30'],
  ] },
  { alert: 'ThanosInjectorAdmissionErrors', behaviour: 'stays quiet while admissions are injected or skipped', at: '30m', series: [
    [`thanos_injector_admissions_total{job="${job}",outcome="injected",reason="injected"}`, '0+10x40'],
    [`thanos_injector_admissions_total{job="${job}",outcome="skipped",reason="already-injected"}`, '0+3x40'],
    [`thanos_injector_admissions_total{job="${job}",outcome="error",reason="internal-error"}`, '0x40'],
  ] },
  { alert: 'ThanosInjectorAdmissionErrors', behaviour: 'ignores errors of another job', at: '30m', series: [
    [`thanos_injector_admissions_total{job="other",outcome="error",reason="internal-error"}`, '0+5x40'],
  ] },

  // ThanosInjectorSlowAdmissions: histogram_quantile(0.99, ...[10m]) > 0.025, for 15m.
  { alert: 'ThanosInjectorSlowAdmissions', behaviour: 'fires when p99 is over 25 ms for 15 minutes', at: '20m', fires: warning,
    series: latencies({ fast: 10, slow: 10 }) },
  { alert: 'ThanosInjectorSlowAdmissions', behaviour: 'is only pending before 15 minutes', at: '12m', series: latencies({ fast: 10, slow: 10 }) },
  { alert: 'ThanosInjectorSlowAdmissions', behaviour: 'stays quiet when under 1% of admissions take over 25 ms', at: '30m',
    series: latencies({ fast: 1000, slow: 5 }) },

  // ThanosInjectorDown: sum(available replicas) < 1 or absent(up == 1), for 5m.
  { alert: 'ThanosInjectorDown', behaviour: 'fires when kube-state-metrics reports no available replica for 5 minutes', at: '10m',
    fires: { labels: { severity: 'critical' } }, series: [
      [`kube_deployment_status_replicas_available{${ksm},namespace="${namespace}",deployment="${job}"}`, '0x20'],
      [`up{job="${job}",instance="10.0.0.1:8080"}`, '1x20'],
    ] },
  { alert: 'ThanosInjectorDown', behaviour: 'fires when no target of the injector is up', at: '10m', fires: { labels: { severity: 'critical' } }, series: [
    [`kube_deployment_status_replicas_available{${ksm},namespace="${namespace}",deployment="${job}"}`, '1x20'],
    [`up{job="${job}",instance="10.0.0.1:8080"}`, '0x20'],
  ] },
  { alert: 'ThanosInjectorDown', behaviour: 'fires when the injector is not scraped at all', at: '10m', fires: { labels: { severity: 'critical' } }, series: [
    [`kube_deployment_status_replicas_available{${ksm},namespace="${namespace}",deployment="${job}"}`, '2x20'],
  ] },
  { alert: 'ThanosInjectorDown', behaviour: 'is only pending before 5 minutes', at: '4m', series: [
    [`kube_deployment_status_replicas_available{${ksm},namespace="${namespace}",deployment="${job}"}`, '0x20'],
  ] },
  { alert: 'ThanosInjectorDown', behaviour: 'stays quiet while one of two replicas is up', at: '15m', series: [
    [`kube_deployment_status_replicas_available{${ksm},namespace="${namespace}",deployment="${job}"}`, '1x20'],
    [`up{job="${job}",instance="10.0.0.1:8080"}`, '1x20'],
    [`up{job="${job}",instance="10.0.0.2:8080"}`, '0x20'],
    [`kube_deployment_status_replicas_available{${ksm},namespace="other",deployment="${job}"}`, '0x20'],
  ] },

  // ThanosInjectorCertificateExpiring: min(expiry) - time() < 14 days, for 1h.
  { alert: 'ThanosInjectorCertificateExpiring', behaviour: 'fires when a replica\'s certificate expires within 14 days for an hour', at: '70m', fires: warning,
    series: [
      [`thanos_injector_certificate_expiry_timestamp_seconds{job="${job}",instance="10.0.0.1:8080"}`, `${30 * day}x80`],
      [`thanos_injector_certificate_expiry_timestamp_seconds{job="${job}",instance="10.0.0.2:8080"}`, `${10 * day}x80`],
    ] },
  { alert: 'ThanosInjectorCertificateExpiring', behaviour: 'is only pending before an hour', at: '50m', series: [
    [`thanos_injector_certificate_expiry_timestamp_seconds{job="${job}",instance="10.0.0.1:8080"}`, `${10 * day}x80`],
  ] },
  { alert: 'ThanosInjectorCertificateExpiring', behaviour: 'fires an hour after the 14-day mark is crossed, not before', at: '85m', series: [
    // 14 days + 30 minutes from time 0: under 14 days left from 31m on.
    [`thanos_injector_certificate_expiry_timestamp_seconds{job="${job}",instance="10.0.0.1:8080"}`, `${14 * day + 1800}x120`],
  ] },
  { alert: 'ThanosInjectorCertificateExpiring', behaviour: 'fires an hour after the 14-day mark is crossed', at: '95m', fires: warning, series: [
    [`thanos_injector_certificate_expiry_timestamp_seconds{job="${job}",instance="10.0.0.1:8080"}`, `${14 * day + 1800}x120`],
  ] },
  { alert: 'ThanosInjectorCertificateExpiring', behaviour: 'stays quiet with 30 days left', at: '120m', series: [
    [`thanos_injector_certificate_expiry_timestamp_seconds{job="${job}",instance="10.0.0.1:8080"}`, `${30 * day}x130`],
  ] },

  // ThanosSidecarUploadsFailing: sync failures or upload failures increased within 5m, by pod, for 15m.
  { alert: 'ThanosSidecarUploadsFailing', behaviour: 'fires when a sidecar fails every sync for 20 minutes (the seed\'s hard-link failure), naming its pod', at: '25m',
    fires: { labels: { severity: 'warning', namespace: 'monitoring', pod: 'prometheus-0' }, expansions: sidecarPod }, series: [
      [`thanos_shipper_dir_sync_failures_total{${sidecar},namespace="monitoring",pod="prometheus-0"}`, '0+2x40'],
      [`thanos_shipper_upload_failures_total{${sidecar},namespace="monitoring",pod="prometheus-0"}`, '0x40'],
      [`thanos_shipper_dir_sync_failures_total{${sidecar},namespace="monitoring",pod="prometheus-1"}`, '0x40'],
    ] },
  { alert: 'ThanosSidecarUploadsFailing', behaviour: 'fires on upload failures too (the bucket refusing)', at: '25m',
    fires: { labels: { severity: 'warning', namespace: 'monitoring', pod: 'prometheus-0' }, expansions: sidecarPod }, series: [
      [`thanos_shipper_upload_failures_total{${sidecar},namespace="monitoring",pod="prometheus-0"}`, '0+1x40'],
    ] },
  { alert: 'ThanosSidecarUploadsFailing', behaviour: 'is only pending before 15 minutes', at: '12m', series: [
    [`thanos_shipper_dir_sync_failures_total{${sidecar},namespace="monitoring",pod="prometheus-0"}`, '0+2x40'],
  ] },
  { alert: 'ThanosSidecarUploadsFailing', behaviour: 'stays quiet after a single failure long ago, and for series of other containers', at: '40m', series: [
    [`thanos_shipper_dir_sync_failures_total{${sidecar},namespace="monitoring",pod="prometheus-0"}`, '0x5 1x40'],
    [`thanos_shipper_dir_sync_failures_total{container="thanos-store",namespace="monitoring",pod="store-0"}`, '0+2x50'],
  ] },

  // ThanosSidecarUploadsStalled: no sync finished within 10m and none failed either, by pod, for 5m.
  { alert: 'ThanosSidecarUploadsStalled', behaviour: 'fires when a sidecar finished no sync for 15 minutes without a failure (a hang), naming its pod', at: '27m',
    fires: { labels: { severity: 'warning', namespace: 'monitoring', pod: 'prometheus-0' }, expansions: sidecarPod }, series: [
      [`thanos_shipper_dir_syncs_total{${sidecar},namespace="monitoring",pod="prometheus-0"}`, '0+2x10 20x30'],
      [`thanos_shipper_dir_sync_failures_total{${sidecar},namespace="monitoring",pod="prometheus-0"}`, '0x40'],
      [`thanos_shipper_dir_syncs_total{${sidecar},namespace="monitoring",pod="prometheus-1"}`, '0+2x40'],
    ] },
  { alert: 'ThanosSidecarUploadsStalled', behaviour: 'is only pending before 15 minutes of no sync', at: '22m', series: [
    [`thanos_shipper_dir_syncs_total{${sidecar},namespace="monitoring",pod="prometheus-0"}`, '0+2x10 20x30'],
  ] },
  { alert: 'ThanosSidecarUploadsStalled', behaviour: 'stays quiet while syncs finish, and leaves failing syncs to ThanosSidecarUploadsFailing', at: '30m', series: [
    [`thanos_shipper_dir_syncs_total{${sidecar},namespace="monitoring",pod="prometheus-0"}`, '0+2x40'],
    [`thanos_shipper_dir_syncs_total{${sidecar},namespace="monitoring",pod="prometheus-1"}`, '5x40'],
    [`thanos_shipper_dir_sync_failures_total{${sidecar},namespace="monitoring",pod="prometheus-1"}`, '0+1x40'],
  ] },

  // ThanosSidecarPrometheusUnreachable: max by (namespace, pod) (thanos_sidecar_prometheus_up) == 0, for 5m.
  { alert: 'ThanosSidecarPrometheusUnreachable', behaviour: 'fires when a sidecar has not reached its Prometheus for 5 minutes', at: '10m',
    fires: { labels: { severity: 'warning', namespace: 'monitoring', pod: 'prometheus-0' }, expansions: sidecarPod }, series: [
      [`thanos_sidecar_prometheus_up{${sidecar},namespace="monitoring",pod="prometheus-0"}`, '0x20'],
      [`thanos_sidecar_prometheus_up{${sidecar},namespace="monitoring",pod="prometheus-1"}`, '1x20'],
    ] },
  { alert: 'ThanosSidecarPrometheusUnreachable', behaviour: 'is only pending before 5 minutes', at: '4m', series: [
    [`thanos_sidecar_prometheus_up{${sidecar},namespace="monitoring",pod="prometheus-0"}`, '0x20'],
  ] },
  { alert: 'ThanosSidecarPrometheusUnreachable', behaviour: 'stays quiet while the sidecar reaches Prometheus', at: '15m', series: [
    [`thanos_sidecar_prometheus_up{${sidecar},namespace="monitoring",pod="prometheus-0"}`, '1x20'],
  ] },

  // cronJob: ThanosInjectorRegistrationFailing: time() - max(last successful time, else creation time) > 900, for 5m.
  { alert: 'ThanosInjectorRegistrationFailing', mode: 'cronJob', behaviour: 'fires when the CronJob last succeeded over 20 minutes ago', at: '25m',
    fires: warning, series: [
      [`kube_cronjob_status_last_successful_time{${ksm},namespace="${namespace}",cronjob="${registerJob}"}`, '60x40'],
    ] },
  { alert: 'ThanosInjectorRegistrationFailing', mode: 'cronJob', behaviour: 'is only pending 5 minutes after the 15-minute mark', at: '20m', series: [
    [`kube_cronjob_status_last_successful_time{${ksm},namespace="${namespace}",cronjob="${registerJob}"}`, '60x40'],
  ] },
  { alert: 'ThanosInjectorRegistrationFailing', mode: 'cronJob', behaviour: 'fires when the CronJob never succeeded in the 20 minutes since its creation', at: '25m',
    fires: warning, series: [
      [`kube_cronjob_created{${ksm},namespace="${namespace}",cronjob="${registerJob}"}`, '60x40'],
    ] },
  { alert: 'ThanosInjectorRegistrationFailing', mode: 'cronJob', behaviour: 'stays quiet in the first 15 minutes after install', at: '12m', series: [
    [`kube_cronjob_created{${ksm},namespace="${namespace}",cronjob="${registerJob}"}`, '60x40'],
  ] },
  { alert: 'ThanosInjectorRegistrationFailing', mode: 'cronJob', behaviour: 'stays quiet while the CronJob succeeds every minute', at: '60m', series: [
    [`kube_cronjob_created{${ksm},namespace="${namespace}",cronjob="${registerJob}"}`, '60x70'],
    [`kube_cronjob_status_last_successful_time{${ksm},namespace="${namespace}",cronjob="${registerJob}"}`, '0+60x70'],
    [`kube_cronjob_status_last_successful_time{${ksm},namespace="other",cronjob="${registerJob}"}`, '60x70'],
  ] },

  // watch: ThanosSidecarMissing: max(uninjected pods) > 0, for 15m; the summary holds $value.
  { alert: 'ThanosSidecarMissing', mode: 'watch', behaviour: 'fires after 15 minutes of uninjected Prometheus pods, with their count in the summary', at: '20m',
    fires: { labels: { severity: 'warning' }, expansions: { '{{ $value }}': '2' } }, series: [
      [`thanos_injector_uninjected_prometheus_pods{job="${registerJob}",instance="10.0.0.3:8080"}`, '2x30'],
    ] },
  { alert: 'ThanosSidecarMissing', mode: 'watch', behaviour: 'is only pending before 15 minutes', at: '10m', series: [
    [`thanos_injector_uninjected_prometheus_pods{job="${registerJob}",instance="10.0.0.3:8080"}`, '2x30'],
  ] },
  { alert: 'ThanosSidecarMissing', mode: 'watch', behaviour: 'stays quiet when every labelled Prometheus pod has the sidecar', at: '30m', series: [
    [`thanos_injector_uninjected_prometheus_pods{job="${registerJob}",instance="10.0.0.3:8080"}`, '0x40'],
    [`thanos_injector_uninjected_prometheus_pods{job="other",instance="10.0.0.9:8080"}`, '3x40'],
  ] },

  // watch: ThanosSidecarNoExternalLabels: max(sidecar problems{problem="no-external-labels"}) > 0, for 5m.
  { alert: 'ThanosSidecarNoExternalLabels', mode: 'watch', behaviour: 'fires after 5 minutes of sidecars exiting for want of external labels, with their count in the summary', at: '10m',
    fires: { labels: { severity: 'warning' }, expansions: { '{{ $value }}': '1' } }, series: [
      [`thanos_injector_sidecar_problems{job="${registerJob}",instance="10.0.0.3:8080",problem="no-external-labels"}`, '1x30'],
      [`thanos_injector_sidecar_problems{job="${registerJob}",instance="10.0.0.3:8080",problem="shared-external-labels"}`, '0x30'],
    ] },
  { alert: 'ThanosSidecarNoExternalLabels', mode: 'watch', behaviour: 'is only pending before 5 minutes', at: '4m', series: [
    [`thanos_injector_sidecar_problems{job="${registerJob}",instance="10.0.0.3:8080",problem="no-external-labels"}`, '1x30'],
  ] },
  { alert: 'ThanosSidecarNoExternalLabels', mode: 'watch', behaviour: 'stays quiet when only shared labels are counted, or another job counts', at: '20m', series: [
    [`thanos_injector_sidecar_problems{job="${registerJob}",instance="10.0.0.3:8080",problem="no-external-labels"}`, '0x30'],
    [`thanos_injector_sidecar_problems{job="${registerJob}",instance="10.0.0.3:8080",problem="shared-external-labels"}`, '2x30'],
    [`thanos_injector_sidecar_problems{job="other",instance="10.0.0.9:8080",problem="no-external-labels"}`, '3x30'],
  ] },

  // watch: ThanosSidecarSharedExternalLabels: max(sidecar problems{problem="shared-external-labels"}) > 0, for 10m.
  { alert: 'ThanosSidecarSharedExternalLabels', mode: 'watch', behaviour: 'fires after 10 minutes of pods sharing one label set, with their count in the summary', at: '15m',
    fires: { labels: { severity: 'warning' }, expansions: { '{{ $value }}': '2' } }, series: [
      [`thanos_injector_sidecar_problems{job="${registerJob}",instance="10.0.0.3:8080",problem="shared-external-labels"}`, '2x30'],
      [`thanos_injector_sidecar_problems{job="${registerJob}",instance="10.0.0.3:8080",problem="no-external-labels"}`, '0x30'],
    ] },
  { alert: 'ThanosSidecarSharedExternalLabels', mode: 'watch', behaviour: 'is only pending before 10 minutes (a rollout\'s brief overlap)', at: '9m', series: [
    [`thanos_injector_sidecar_problems{job="${registerJob}",instance="10.0.0.3:8080",problem="shared-external-labels"}`, '2x30'],
  ] },
  { alert: 'ThanosSidecarSharedExternalLabels', mode: 'watch', behaviour: 'stays quiet when every pod has labels of its own, even while others lack labels', at: '20m', series: [
    [`thanos_injector_sidecar_problems{job="${registerJob}",instance="10.0.0.3:8080",problem="shared-external-labels"}`, '0x30'],
    [`thanos_injector_sidecar_problems{job="${registerJob}",instance="10.0.0.3:8080",problem="no-external-labels"}`, '1x30'],
  ] },

  // watch: ThanosSidecarOutdated: max by (namespace) (outdated sidecar pods) > 0, for 24h.
  { alert: 'ThanosSidecarOutdated', mode: 'watch', behaviour: 'fires after a day of outdated sidecars, by namespace, with their count', at: '25h',
    fires: { labels: { severity: 'warning', namespace: 'monitoring' }, expansions: { '{{ $labels.namespace }}': 'monitoring', '{{ $value }}': '2' } }, series: [
      [`thanos_injector_outdated_sidecar_pods{job="${registerJob}",instance="10.0.0.3:8080",namespace="monitoring"}`, '2x1560'],
      [`thanos_injector_outdated_sidecar_pods{job="${registerJob}",instance="10.0.0.3:8080",namespace="team-a"}`, '0x1560'],
    ] },
  { alert: 'ThanosSidecarOutdated', mode: 'watch', behaviour: 'is only pending within the first day (a rollout under way)', at: '23h', series: [
    [`thanos_injector_outdated_sidecar_pods{job="${registerJob}",instance="10.0.0.3:8080",namespace="monitoring"}`, '2x1440'],
  ] },
  { alert: 'ThanosSidecarOutdated', mode: 'watch', behaviour: 'stays quiet once the pods are rolled, and for another job\'s series', at: '26h', series: [
    [`thanos_injector_outdated_sidecar_pods{job="${registerJob}",instance="10.0.0.3:8080",namespace="monitoring"}`, '2x720 0x900'],
    [`thanos_injector_outdated_sidecar_pods{job="other",instance="10.0.0.9:8080",namespace="monitoring"}`, '3x1620'],
  ] },

  // watch: ThanosSidecarUnuploadedBlocksAtRisk: min by (namespace, pod) (deletion time of the oldest
  // block not uploaded) - time() < 6h, for 2m; the summary says how long is left.
  { alert: 'ThanosSidecarUnuploadedBlocksAtRisk', mode: 'watch', behaviour: 'fires when retention deletes a block not uploaded within 3 hours, naming the pod and the time left', at: '5m',
    fires: { labels: { severity: 'critical', namespace: 'monitoring', pod: 'prometheus-0' }, expansions: { ...sidecarPod, '{{ $value | humanizeDuration }}': '2h 55m 0s' } }, series: [
      [`thanos_injector_sidecar_unuploaded_block_deletion_timestamp_seconds{job="${registerJob}",instance="10.0.0.3:8080",namespace="monitoring",pod="prometheus-0"}`, `${3 * 3600}x20`],
    ] },
  { alert: 'ThanosSidecarUnuploadedBlocksAtRisk', mode: 'watch', behaviour: 'stays quiet while the deletion is over 6 hours away', at: '55m', series: [
    [`thanos_injector_sidecar_unuploaded_block_deletion_timestamp_seconds{job="${registerJob}",instance="10.0.0.3:8080",namespace="monitoring",pod="prometheus-0"}`, `${7 * 3600}x80`],
    [`thanos_injector_sidecar_unuploaded_block_deletion_timestamp_seconds{job="other",instance="10.0.0.9:8080",namespace="monitoring",pod="prometheus-1"}`, `${3600}x80`],
  ] },
  { alert: 'ThanosSidecarUnuploadedBlocksAtRisk', mode: 'watch', behaviour: 'fires once the same block comes within 6 hours of its deletion', at: '70m',
    fires: { labels: { severity: 'critical', namespace: 'monitoring', pod: 'prometheus-0' }, expansions: { ...sidecarPod, '{{ $value | humanizeDuration }}': '5h 50m 0s' } }, series: [
      [`thanos_injector_sidecar_unuploaded_block_deletion_timestamp_seconds{job="${registerJob}",instance="10.0.0.3:8080",namespace="monitoring",pod="prometheus-0"}`, `${7 * 3600}x80`],
    ] },

  // watch: ThanosInjectorRegistrationFailing: time() - max(last success) > 900 or absent(up == 1), for 10m.
  { alert: 'ThanosInjectorRegistrationFailing', mode: 'watch', behaviour: 'fires when the last successful reconcile is over 25 minutes old', at: '30m',
    fires: warning, series: [
      [`thanos_injector_register_last_success_timestamp_seconds{job="${registerJob}",instance="10.0.0.3:8080"}`, '60x40'],
      [`up{job="${registerJob}",instance="10.0.0.3:8080"}`, '1x40'],
    ] },
  { alert: 'ThanosInjectorRegistrationFailing', mode: 'watch', behaviour: 'is only pending 10 minutes after the 15-minute mark', at: '25m', series: [
    [`thanos_injector_register_last_success_timestamp_seconds{job="${registerJob}",instance="10.0.0.3:8080"}`, '60x40'],
    [`up{job="${registerJob}",instance="10.0.0.3:8080"}`, '1x40'],
  ] },
  { alert: 'ThanosInjectorRegistrationFailing', mode: 'watch', behaviour: 'fires when the register watch is down for 10 minutes', at: '15m', fires: warning, series: [
    [`up{job="${registerJob}",instance="10.0.0.3:8080"}`, '0x40'],
  ] },
  { alert: 'ThanosInjectorRegistrationFailing', mode: 'watch', behaviour: 'stays quiet while reconciles succeed every minute', at: '60m', series: [
    [`thanos_injector_register_last_success_timestamp_seconds{job="${registerJob}",instance="10.0.0.3:8080"}`, '0+60x70'],
    [`up{job="${registerJob}",instance="10.0.0.3:8080"}`, '1x70'],
  ] },
];

/** The rule's annotations with each template replaced; templates left over are returned apart. */
function expand(rule: AlertRule, expansions: Record<string, string> = {}): { annotations: Record<string, string>; unexpanded: string[] } {
  const annotations: Record<string, string> = {};
  const unexpanded: string[] = [];
  for (const [key, text] of Object.entries(rule.annotations ?? {})) {
    let value = text;
    for (const [template, expansion] of Object.entries(expansions)) value = value.split(template).join(expansion);
    annotations[key] = value;
    for (const left of value.match(/\{\{.*?\}\}/g) ?? []) unexpanded.push(`${rule.alert}/${key}: ${left}`);
  }
  return { annotations, unexpanded };
}

/** The promtool unit-test file for these rules (rule_files relative to the test file). */
function unitTests(rulesFile: string, rules: AlertRule[], mode: Mode) {
  const unexpanded: string[] = [];
  const tests = cases.filter((c) => !c.mode || c.mode === mode).map((c) => {
    const rule = rules.find((r) => r.alert === c.alert);
    if (!rule) throw new Error(`no rule ${c.alert} in the ${mode} rules`);
    let expected: { exp_labels: Record<string, string>; exp_annotations: Record<string, string> }[] = [];
    if (c.fires) {
      const { annotations, unexpanded: left } = expand(rule, c.fires.expansions);
      unexpanded.push(...left);
      expected = [{ exp_labels: c.fires.labels, exp_annotations: annotations }];
    }
    return {
      name: `${c.alert} ${c.behaviour}`,
      interval: '1m',
      input_series: c.series.map(([series, values]) => ({ series, values })),
      alert_rule_test: [{ eval_time: c.at, alertname: c.alert, exp_alerts: expected }],
    };
  });
  return { file: { rule_files: [rulesFile], evaluation_interval: '1m', tests }, unexpanded };
}

void t.test('promtool is the Prometheus release test/cluster/prometheus/go.mod pins', async (t) => {
  const version = await promtool('--version');
  t.equal(version.code, 0, 'promtool exits 0', output(version));
  t.match(version.stdout, `promtool, version ${prometheusRelease(tools.versions.prometheus)} `, 'it reports the release of the pinned module');
});

void t.test('without the ServiceMonitors nothing scrapes the injector: no rule alerts on its targets being absent', async (t) => {
  for (const mode of ['cronJob', 'watch'] as const) {
    const exprs = (await renderRules(mode, false)).groups.flatMap((group) => group.rules).map((rule) => rule.expr);
    t.notMatch(exprs.join('\n'), 'absent(up', `${mode}: no absent(up{...})`);
    t.match(exprs.join('\n'), 'kube_', `${mode}: the kube-state-metrics parts stay`);
  }
  t.match((await renderRules('watch')).groups.flatMap((group) => group.rules).map((rule) => rule.expr).join('\n'), `absent(up{job="${registerJob}"} == 1)`, 'with them, a register watch that is not up is an alert');
});

for (const mode of ['cronJob', 'watch'] as const) {
  void t.test(`registration.mode=${mode}`, async (t) => {
    const spec = await renderRules(mode);
    const rules = spec.groups.flatMap((group) => group.rules);
    const rulesFile = write(`${mode}-rules.yaml`, spec);

    await t.test('promtool check rules accepts the rendered rules', async (t) => {
      const result = await promtool('check', 'rules', '--lint=all', '--lint-fatal', rulesFile);
      t.equal(result.code, 0, 'promtool exits 0', output(result));
      t.match(result.stdout, `SUCCESS: ${rules.length} rules found`, 'SUCCESS, counting every rule');
      const expected = ['ThanosInjectorAdmissionErrors', 'ThanosInjectorSlowAdmissions', 'ThanosInjectorDown', 'ThanosInjectorCertificateExpiring',
        'ThanosSidecarUploadsFailing', 'ThanosSidecarUploadsStalled', 'ThanosSidecarPrometheusUnreachable', ...(mode === 'watch' ? ['ThanosSidecarMissing', 'ThanosSidecarNoExternalLabels', 'ThanosSidecarSharedExternalLabels', 'ThanosSidecarUnuploadedBlocksAtRisk', 'ThanosSidecarOutdated'] : []), 'ThanosInjectorRegistrationFailing'];
      t.same(rules.map((r) => r.alert), expected, 'the alerts of this mode, in order');
    });

    await t.test('promtool check rules rejects a broken expression and a broken annotation template', async (t) => {
      const first = rules[0]!;
      t.match(first.expr, /\[10m\]/, 'the first rule has a range to break');
      const badExpr = write(`${mode}-bad-expr.yaml`, { groups: [{ name: 'broken', rules: [{ ...first, expr: first.expr.replace('[10m]', '') }] }] });
      const expr = await promtool('check', 'rules', badExpr);
      t.equal(expr.code, 1, 'promtool exits 1', output(expr));
      t.match(expr.stderr, /FAILED[\s\S]*expected type range vector in call to function "increase"/, 'FAILED, naming the type error');
      t.notMatch(expr.stdout, 'SUCCESS', 'no SUCCESS line');

      const badTemplate = write(`${mode}-bad-template.yaml`,
        { groups: [{ name: 'broken', rules: [{ ...first, annotations: { summary: '{{ $value ' } }] }] });
      const template = await promtool('check', 'rules', badTemplate);
      t.equal(template.code, 1, 'promtool exits 1', output(template));
      t.match(template.stderr, /FAILED[\s\S]*annotation "summary"[\s\S]*unclosed action/, 'FAILED, naming the annotation');
    });

    const { file, unexpanded } = unitTests(rulesFile, rules, mode);

    await t.test('every rendered alert has a firing and a quiet unit test, with all annotation templates accounted for', (t) => {
      const ofMode = cases.filter((c) => !c.mode || c.mode === mode);
      for (const rule of rules) {
        t.ok(ofMode.some((c) => c.alert === rule.alert && c.fires), `${rule.alert} fires in a case`);
        t.ok(ofMode.some((c) => c.alert === rule.alert && !c.fires), `${rule.alert} stays quiet in a case`);
      }
      t.same(unexpanded, [], 'every {{ ... }} in an expected annotation has an expected expansion');
      t.end();
    });

    await t.test('promtool test rules: each alert fires and stays quiet as the cases say', async (t) => {
      const result = await promtool('test', 'rules', write(`${mode}-tests.yaml`, file));
      t.equal(result.code, 0, 'promtool exits 0', output(result));
      t.match(result.stdout, /^\s*SUCCESS\s*$/m, 'SUCCESS line');
      t.notMatch(result.stderr, 'FAILED', 'no FAILED case');
    });

    await t.test('promtool test rules fails when a case expects the wrong outcome', async (t) => {
      // The first firing case, expected quiet instead; and the first quiet case, expected firing.
      const tests = file.tests.map((test) => ({ ...test }));
      const firing = tests.findIndex((test) => test.alert_rule_test[0]!.exp_alerts.length > 0);
      const quiet = tests.findIndex((test) => test.alert_rule_test[0]!.exp_alerts.length === 0);
      const firingCase = tests[firing]!;
      const quietCase = tests[quiet]!;
      tests[firing] = { ...firingCase, alert_rule_test: [{ ...firingCase.alert_rule_test[0]!, exp_alerts: [] }] };
      tests[quiet] = { ...quietCase, alert_rule_test: [{ ...quietCase.alert_rule_test[0]!, exp_alerts: [{ exp_labels: { severity: 'warning' }, exp_annotations: {} }] }] };
      const result = await promtool('test', 'rules', write(`${mode}-wrong-tests.yaml`, { ...file, tests }));
      t.equal(result.code, 1, 'promtool exits 1', output(result));
      t.match(result.stderr, 'FAILED', 'FAILED line');
      t.match(result.stderr, `name: ${firingCase.name},`, 'the firing case expected quiet fails');
      t.match(result.stderr, `name: ${quietCase.name},`, 'the quiet case expected firing fails');
    });
  });
}
