// `thanos-injector rollout`: re-creates the pods whose sidecar is not what the injector injects now
// (after an upgrade, a configuration change, or an uninstall), safely: the replicas of a Prometheus
// HA set one at a time, each only once the last replacement is ready and listed by Thanos Query.
import { loadConfig } from '../config/load.ts';
import { kubeReader } from '../check/cluster.ts';
import { configObjectReader, findInstall } from '../check/diagnose.ts';
import { sidecarDrift, type Drift } from '../check/drift.ts';
import { podExternalLabels } from '../check/prometheus-config.ts';
import { DEFAULT_WEBHOOK_CONFIGURATION } from '../check/webhook.ts';
import { prometheusConfigSource } from '../inject/prometheus-config.ts';
import { readStatus } from '../inject/status.ts';
import { connect } from '../kube/client.ts';
import { kubeRolloutCluster, type QueryRef } from '../rollout/cluster.ts';
import { planRollout, type RolloutPod, type RolloutStep } from '../rollout/plan.ts';
import { RolloutStopped, runStep } from '../rollout/run.ts';
import { table } from '../table.ts';
import { parseDuration } from '../units.ts';
import { CommandError, UsageError } from '../errors.ts';
import { DNS_LABEL, DNS_SUBDOMAIN, checkName, parseFlags } from './args.ts';
import type { V1Pod } from '@kubernetes/client-node';

export const help = `Usage: thanos-injector rollout [-n NAMESPACE] [flags]

Re-creates the injected pods whose thanos-sidecar is not what the injector injects now (the
'sidecar up to date' row of check: after an upgrade, a configuration change, or an uninstall, when
re-created pods start without the sidecar), so that the webhook injects them anew:

  - the replicas of a Prometheus HA set (the pods of one workload, or pods whose external labels
    differ in one label only) are evicted one at a time; the next only once the replacement is
    ready and listed by Thanos Query, so Query always has a replica; each pod first leaves Query
    (labelled thanos-injector/injected=draining, registration stops listing it) so no query waits on
    a replica that is stopping; PodDisruptionBudgets are honoured (an eviction they refuse is
    retried);
  - a workload with one such pod is restarted as kubectl rollout restart does;
  - a bare pod is listed; with --recreate-bare-pods it is deleted and created again from its own
    spec (without the injection).

Pods in every namespace, or in NAMESPACE. Exit codes: 0 done (or nothing to do), 1 a step did not
finish in time or an API call failed (what is left is said), 2 bad flags.

Flags:
  -n, --namespace NS          only this namespace
      --dry-run               say what would be done, and do nothing
      --query NS/SERVICE[:PORT]   the Thanos Query whose endpoint list gates each eviction of an HA
                              set (default: the chart's Query of the install, port 9090, when it
                              exists; without one, each replacement is waited for until ready)
      --timeout DURATION      how long one pod or one workload may take (default: 10m)
      --recreate-bare-pods    delete bare pods and create them again from their spec
      --include-unknown       also re-create pods whose sidecar cannot be compared (injected by
                              release 0.1.0)
      --webhook-config NAME   the MutatingWebhookConfiguration (default: ${DEFAULT_WEBHOOK_CONFIGURATION})
      --config FILE           the injector's configuration (default: config.yaml of the install's
                              ConfigMap, else the defaults)
      --kubeconfig FILE       kubeconfig to use (default: KUBECONFIG, ~/.kube/config, else in-cluster)
  -h, --help                  show this help
`;

function parseQuery(text: string): QueryRef {
  const match = /^([^/]+)\/([^/:]+)(?::([0-9]{1,5}))?$/.exec(text);
  if (match === null || !DNS_LABEL.test(match[1]!) || !DNS_LABEL.test(match[2]!) || Number(match[3] ?? 9090) > 65535) {
    throw new UsageError(`--query: "${text}" is not valid; expected NAMESPACE/SERVICE or NAMESPACE/SERVICE:PORT`);
  }
  return { namespace: match[1]!, service: match[2]!, port: Number(match[3] ?? 9090) };
}

const NO_INJECTOR = 'no injector is installed (no MutatingWebhookConfiguration of it): a re-created pod starts without the sidecar';

function describeStep(step: RolloutStep): string[] {
  const what = step.action === 'evict-one-by-one' ? `evict one at a time (${step.why})` : step.action === 'restart' ? `restart ${step.workload.kind} ${step.workload.name}` : step.action === 'recreate' ? 'delete and create again' : `leave (${step.why})`;
  const drifts = step.pods.map(({ pod, drift }) => `${pod.metadata?.name ?? ''}: ${drift.state === 'outdated' ? drift.differences.join('; ') : drift.state === 'unknown' ? `cannot tell (${drift.reason})` : drift.state}`);
  return [step.namespace, what, drifts.join(' | ')];
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    namespace: { type: 'string', short: 'n' },
    'dry-run': { type: 'boolean' },
    query: { type: 'string' },
    timeout: { type: 'string' },
    'recreate-bare-pods': { type: 'boolean' },
    'include-unknown': { type: 'boolean' },
    'webhook-config': { type: 'string' },
    config: { type: 'string' },
    kubeconfig: { type: 'string' },
  }, 'rollout');
  if (values.help) {
    process.stdout.write(help);
    return 0;
  }
  const namespace = values.namespace === undefined ? undefined : checkName('namespace', values.namespace, DNS_LABEL, 'a namespace name (lowercase letters, digits and -, at most 63)');
  const timeoutMs = values.timeout === undefined ? 600_000 : parseDuration(values.timeout);
  if (timeoutMs === undefined || timeoutMs <= 0) throw new UsageError(`--timeout: "${values.timeout ?? ''}" is not valid; expected a duration such as 90s or 10m`);
  const webhookConfig = checkName('webhook-config', values['webhook-config'] ?? DEFAULT_WEBHOOK_CONFIGURATION, DNS_SUBDOMAIN, 'a MutatingWebhookConfiguration name');
  let query = values.query === undefined ? undefined : parseQuery(values.query);
  const config = values.config === undefined ? undefined : { config: await loadConfig(values.config), source: `file ${values.config}` };

  const kube = connect(values.kubeconfig);
  const reader = kubeReader(kube);
  const cluster = kubeRolloutCluster(kube);
  const install = await findInstall(reader, { webhookConfig, webhookConfigExplicit: values['webhook-config'] !== undefined, config });
  // Installed: a webhook configuration, or (injection mode policy) the policy's bindings, or --config.
  const installed = install.policyName !== undefined || config !== undefined;
  const kubernetesVersion = await reader.version();
  const judge = (pod: V1Pod): Drift => {
    const drift = sidecarDrift(pod, { config: install.config, namespace: pod.metadata?.namespace ?? '', kubernetesVersion });
    if (installed || drift.state === 'not-judged') return drift;
    const status = readStatus(pod);
    // Uninstalled: every pod this injector injected is due (one of release 0.1.0 too).
    return status !== undefined && !('error' in status) && status.container !== undefined ? { state: 'outdated', differences: [NO_INJECTOR] } : drift;
  };
  process.stdout.write(`configuration: ${installed ? install.rows.config.detail : `none (${NO_INJECTOR})`}\n`);
  if (query === undefined && install.location !== undefined) {
    const service = `${install.location.name}-query`;
    if (await reader.service(install.location.namespace, service)) query = { namespace: install.location.namespace, service, port: 9090 };
  }
  process.stdout.write(`thanos query: ${query === undefined ? 'none known (--query NS/SERVICE[:PORT]): each replacement is waited for until ready' : `Service ${query.namespace}/${query.service}:${query.port}`}\n`);

  const pods = await cluster.injectedPods(namespace);
  const found: RolloutPod[] = await Promise.all(pods.map(async (pod) => {
    const podNamespace = pod.metadata?.namespace ?? '';
    const source = prometheusConfigSource(pod);
    const labels = podExternalLabels(podNamespace, pod, source, await configObjectReader(reader, podNamespace)(source)).labels;
    return { pod, drift: judge(pod), ...(labels.kind === 'labels' ? { labels: labels.labels } : {}) };
  }));
  const counts = (state: Drift['state']) => found.filter((entry) => entry.drift.state === state).length;
  process.stdout.write(`injected pods: ${found.length} (${counts('current')} current, ${counts('outdated')} outdated, ${counts('unknown')} cannot tell, ${counts('not-judged')} not judged)\n`);
  const steps = planRollout(found, { recreateBarePods: values['recreate-bare-pods'] ?? false, includeUnknown: values['include-unknown'] ?? false });
  if (steps.length === 0) {
    process.stdout.write('nothing to roll\n');
    return 0;
  }
  process.stdout.write(`${table(['NAMESPACE', 'ACTION', 'PODS'], steps.map(describeStep))}`);
  if (values['dry-run']) {
    process.stdout.write('dry run: nothing done\n');
    return 0;
  }
  const context = { cluster, query, grpcPort: install.config.grpcPort, timeoutMs, pollMs: 2_000, log: (line: string) => process.stdout.write(`${line}\n`), judge };
  for (const [index, step] of steps.entries()) {
    try {
      await runStep(context, step);
    } catch (error) {
      if (!(error instanceof RolloutStopped)) throw error;
      const left = steps.slice(index + 1).flatMap((s) => s.pods.map((p) => `${p.pod.metadata?.namespace ?? ''}/${p.pod.metadata?.name ?? ''}`));
      throw new CommandError(`rollout stopped: ${error.message}${left.length > 0 ? `; not done: ${left.join(', ')}` : ''}`);
    }
  }
  const left = steps.filter((step) => step.action === 'leave').length;
  process.stdout.write(`rollout done${left > 0 ? `; ${left} bare pod(s) left as they are` : ''}\n`);
  return 0;
}
