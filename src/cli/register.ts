// `thanos-injector register`: the companion job that registers injected sidecars with Thanos Query
// (a headless Service per namespace and an endpoints ConfigMap), records events on the pods,
// reports (optionally restarts) labelled Prometheus pods running without the sidecar, and reports
// injected sidecars without usable external labels.
import { hostname } from 'node:os';
import { loadConfig } from '../config/load.ts';
import { DEFAULT_WEBHOOK_CONFIGURATION } from '../check/webhook.ts';
import type { ApplyOptions } from '../register/apply.ts';
import { connect, type Kube } from '../kube/client.ts';
import { ENDPOINT_MODES, registeredPodCount, type EndpointMode, type RegisterSettings } from '../register/plan.ts';
import { reconcile } from '../register/reconcile.ts';
import type { Scope } from '../register/state.ts';
import { createRegisterMetrics } from '../register/metrics.ts';
import { eventful, summarize } from '../register/summary.ts';
import { watch } from '../register/watch.ts';
import { buildHealthApp, type HealthState } from '../server/health.ts';
import { DNS_LABEL, DNS_SUBDOMAIN, checkName, parseFlags, portFlag } from './args.ts';
import { CommandError, messageOf, UsageError } from '../errors.ts';

export const help = `Usage: thanos-injector register [flags]

Registers every injected Thanos sidecar (pods labelled thanos-injector/injected=true) with Thanos
Query, and finds labelled Prometheus pods that run without it:

- in each namespace with injected pods, a headless Service thanos-sidecar (ports grpc 10901 and
  http 10902, labelled app.kubernetes.io/managed-by=thanos-sidecar-injector); a Service of that name
  without the label is reported as a conflict and left alone; our Services in namespaces without
  injected pods are deleted;
- a ConfigMap for Query with endpoints.yaml (for --endpoint.sd-config-file) and targets.yaml (for
  --store.sd-files), written only when its content changes;
- an Event ThanosSidecarRegistered on each newly registered pod (kubectl describe pod shows it);
- a Warning Event ThanosSidecarMissing on each pod the webhook would inject that has no sidecar
  (created while the webhook was unavailable, or before its namespace opted in);
- a Warning Event ThanosSidecarNoExternalLabels on each injected pod whose sidecar exited with "no
  external labels configured", and ThanosSidecarSharedExternalLabels on each ready injected pod
  whose Prometheus has the same external labels as another's (computed from the ConfigMap behind
  --config.file): their blocks overlap, the Compactor halts, Query cannot deduplicate them;
- a Warning Event ThanosSidecarUploadsStalled on each running injected pod whose blocks wait while
  no upload finishes (read from its sidecar's /metrics and its Prometheus' block list and retention,
  at the pod's IP): what waits, since when, the cause as the counters tell it, and when retention
  deletes the oldest block (with --watch, also the metrics thanos_injector_sidecar_unuploaded_blocks
  and thanos_injector_sidecar_unuploaded_block_deletion_timestamp_seconds, per pod).

Prints a summary table. Exit codes: 0 done, 1 an API call failed, 2 bad flags, 3 labelled
Prometheus pods run without the sidecar. (Sidecar problems are reported, not an exit code: with
--watch, the metric thanos_injector_sidecar_problems counts them.)

Flags:
  -n, --namespace NS        look only in NS (repeatable; default: all namespaces)
      --query-namespace NS  namespace of the ConfigMap (default: env POD_NAMESPACE, else default)
      --configmap NAME      the ConfigMap Thanos Query reads (default: thanos-query-endpoints)
      --webhook-config NAME the install's MutatingWebhookConfiguration, which owns the Services and
                            the ConfigMap written here, so they go with it; when given and not
                            found, the install is gone: nothing is written, exit 1 (default:
                            thanos-sidecar-injector, and when not found, they are not owned)
      --policy NAME         instead: the install's MutatingAdmissionPolicy owns them (injection mode
                            policy, where there is no webhook configuration); required as above
      --endpoints MODE      dnssrv: one dnssrv+ address per namespace, through the Service (default)
                            pod-ip: <podIP>:10901 for each ready injected pod
      --cluster-domain D    the cluster's DNS domain, for dnssrv addresses (default: cluster.local)
      --restart-uninjected  delete controller-owned pods missing the sidecar, one per controller per
                            pass, so they come back injected (bare pods are never deleted); only
                            useful while the webhook is up
      --watch               keep running: reconcile within seconds of a change to an injected pod,
                            and in full every --resync seconds; stops with exit code 0 on SIGTERM
      --resync SECONDS      full reconcile interval with --watch (default: 300)
      --metrics-port N      with --watch: serve /metrics, /healthz and /readyz (ready after the
                            first reconcile that read the cluster) over plain HTTP on port N
      --metrics-address A   listen address for --metrics-port (default 0.0.0.0)
      --config FILE         the injector's configuration (excluded namespaces and the like), so
                            "would be injected" means what the webhook means (default: defaults)
      --kubeconfig FILE     kubeconfig to use (default: KUBECONFIG, ~/.kube/config, else in-cluster)
  -h, --help                show this help
`;


const FLAGS = {
  namespace: { type: 'string', short: 'n', multiple: true },
  'query-namespace': { type: 'string' },
  configmap: { type: 'string', default: 'thanos-query-endpoints' },
  'webhook-config': { type: 'string' },
  policy: { type: 'string' },
  endpoints: { type: 'string', default: 'dnssrv' },
  'cluster-domain': { type: 'string', default: 'cluster.local' },
  'restart-uninjected': { type: 'boolean', default: false },
  watch: { type: 'boolean', default: false },
  resync: { type: 'string', default: '300' },
  'metrics-port': { type: 'string' },
  'metrics-address': { type: 'string', default: '0.0.0.0' },
  config: { type: 'string' },
  kubeconfig: { type: 'string' },
} as const;

type Flags = ReturnType<typeof parseFlags<typeof FLAGS>>['values'];

const NAMESPACE_FORM = 'a namespace name (lowercase letters, digits and -, at most 63)';

/** What to reconcile, from the flags (each checked, a usage error naming the flag when not valid). */
async function registerSettings(values: Flags): Promise<{ scope: Scope; settings: RegisterSettings; resyncSeconds: number; metricsPort: number | undefined }> {
  const scope: Scope = values.namespace === undefined
    ? undefined
    : [...new Set(values.namespace.map((ns) => checkName('namespace', ns, DNS_LABEL, NAMESPACE_FORM)))].sort();
  if (!(ENDPOINT_MODES as readonly string[]).includes(values.endpoints)) {
    throw new UsageError(`--endpoints: "${values.endpoints}" is not valid; expected ${ENDPOINT_MODES.join(' or ')}`);
  }
  const resyncSeconds = Number(values.resync);
  if (!/^[0-9]+$/.test(values.resync) || resyncSeconds < 1) {
    throw new UsageError(`--resync: "${values.resync}" is not valid; expected a whole number of seconds, at least 1`);
  }
  if (!values.watch && values['metrics-port'] !== undefined) {
    throw new UsageError('--metrics-port serves the metrics of a running watch; give --watch too');
  }
  if (values.policy !== undefined && values['webhook-config'] !== undefined) {
    throw new UsageError('--webhook-config and --policy both name the owner of what register writes; give one (--policy for an install in injection mode policy)');
  }
  const metricsPort = values['metrics-port'] === undefined ? undefined : portFlag('metrics-port', values['metrics-port'], 0);
  const settings: RegisterSettings = {
    endpoints: values.endpoints as EndpointMode,
    clusterDomain: checkName('cluster-domain', values['cluster-domain'].replace(/\.$/, ''), DNS_SUBDOMAIN, 'a DNS domain such as cluster.local'),
    queryNamespace: checkName('query-namespace', values['query-namespace'] ?? (process.env.POD_NAMESPACE || 'default'), DNS_LABEL, NAMESPACE_FORM),
    configMapName: checkName('configmap', values.configmap, DNS_SUBDOMAIN, 'a ConfigMap name (lowercase letters, digits, - and .)'),
    restartUninjected: values['restart-uninjected'],
    owner: values.policy !== undefined
      ? { kind: 'MutatingAdmissionPolicy', name: checkName('policy', values.policy, DNS_SUBDOMAIN, 'a MutatingAdmissionPolicy name'), required: true }
      : {
        kind: 'MutatingWebhookConfiguration',
        name: checkName('webhook-config', values['webhook-config'] ?? DEFAULT_WEBHOOK_CONFIGURATION, DNS_SUBDOMAIN, 'a MutatingWebhookConfiguration name'),
        required: values['webhook-config'] !== undefined,
      },
    injection: await loadConfig(values.config),
  };
  return { scope, settings, resyncSeconds, metricsPort };
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, FLAGS, 'register');
  if (values.help) {
    process.stdout.write(help);
    return 0;
  }
  const { scope, settings, resyncSeconds, metricsPort } = await registerSettings(values);
  const kube = connect(values.kubeconfig);
  const options: ApplyOptions = { now: () => new Date(), host: hostname(), recorded: new Set() };

  if (!values.watch) {
    const { plan, result } = await reconcile(kube, scope, settings, options);
    process.stdout.write(summarize(plan, result, settings));
    reportFailures(result.failures);
    if (result.failures.length > 0) return 1;
    return plan.missing.length > 0 ? 3 : 0;
  }

  return watchMode({ kube, scope, settings, options, resyncSeconds, metricsPort, metricsAddress: values['metrics-address'] });
}

interface WatchModeOptions {
  kube: Kube;
  scope: Scope;
  settings: RegisterSettings;
  options: ApplyOptions;
  resyncSeconds: number;
  metricsPort: number | undefined;
  metricsAddress: string;
}

function reportFailures(failures: string[]): void {
  for (const failure of failures) process.stderr.write(`thanos-injector: ${failure}\n`);
}

/** `register --watch`: reconcile on changes and every resync, optionally serving metrics, until SIGTERM/SIGINT. */
async function watchMode({ kube, scope, settings, options, resyncSeconds, metricsPort, metricsAddress }: WatchModeOptions): Promise<number> {
  const metrics = createRegisterMetrics();
  const health: HealthState = { ready: false };
  const metricsApp = metricsPort === undefined ? undefined : buildHealthApp(health, metrics.registry);
  if (metricsApp !== undefined) {
    await metricsApp.listen({ host: metricsAddress, port: metricsPort }).catch((error: unknown) => {
      throw new CommandError(`--metrics-port: cannot listen on ${metricsAddress}:${metricsPort}: ${messageOf(error)}`);
    });
  }
  const controller = new AbortController();
  const stop = (signal: string) => {
    process.stderr.write(`thanos-injector: ${signal}: stopping the watch\n`);
    controller.abort();
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  const metricsNote = metricsApp === undefined ? '' : `; metrics on http://${metricsAddress}:${metricsPort}/metrics`;
  process.stderr.write(`thanos-injector: watching injected pods ${scope === undefined ? 'in all namespaces' : `in ${scope.join(', ')}`} (full resync every ${resyncSeconds}s)${metricsNote}\n`);
  try {
    await watch({
      kube,
      scope,
      resyncSeconds,
      signal: controller.signal,
      log: (line) => process.stderr.write(`${new Date().toISOString()} thanos-injector: ${line}\n`),
      reconcile: async () => {
        const reconciled = await reconcile(kube, scope, settings, options).catch((error: unknown) => {
          metrics.failed();
          throw error;
        });
        const { plan, result } = reconciled;
        const finished = new Date();
        metrics.reconciled(reconciled, finished);
        health.ready = true;
        const stamp = finished.toISOString();
        if (eventful(plan, result)) {
          process.stdout.write(`--- ${stamp}\n${summarize(plan, result, settings)}`);
        } else {
          process.stdout.write(`--- ${stamp} unchanged: ${plan.configMap.addresses.length} endpoints, ${registeredPodCount(plan)} registered pods\n`);
        }
        reportFailures(result.failures);
        if (result.failures.length > 0) throw new CommandError(`${result.failures.length} API call(s) failed`);
      },
    });
  } finally {
    await metricsApp?.close();
  }
  return 0;
}
