// `thanos-injector check`: diagnoses an install, a namespace or one pod against the live cluster
// (like `linkerd check` or `istioctl x check-inject`), one row per check with what to do.
import { rootCertificates } from 'node:tls';
import { loadConfig } from '../config/load.ts';
import { kubeReader } from '../check/cluster.ts';
import { diagnose } from '../check/diagnose.ts';
import { format, OUTPUT_FORMATS, type OutputFormat } from '../check/report.ts';
import { exitCodeOf } from '../check/rows.ts';
import { DEFAULT_WEBHOOK_CONFIGURATION } from '../check/webhook.ts';
import { connect } from '../kube/client.ts';
import { DNS_LABEL, DNS_SUBDOMAIN, checkName, parseFlags } from './args.ts';
import { UsageError } from '../errors.ts';

export const help = `Usage: thanos-injector check [-n NAMESPACE [--pod NAME]] [flags]

Diagnoses the injector against the live cluster, one row per check (ok, warn, fail or skip) with
what to do about it:

  webhook configuration    the MutatingWebhookConfiguration exists
  webhooks                 namespace.* and pod.thanos-sidecar-injector.io are there and select pod
                           CREATE; their failurePolicy and timeout
  webhook matchConditions  the webhooks' CEL conditions are this injector's; a stale or edited set
                           is evaluated on the Prometheus pod shapes and the ones it drops named
  injector reachable       the Service has ready endpoints, or the webhook.url answers TLS
  caBundle                 the webhook's caBundle verifies the serving certificate (from the
                           injector's Secret, or read over TLS from the url) and that certificate
                           covers the name the apiserver dials
  serving certificate expiry   days left (warn under 30, fail once expired)
  injector configuration   where the configuration used below comes from
  injection policy         injection.mode policy or both: the MutatingAdmissionPolicy is there,
                           bound, and of the generation the configuration makes (in mode webhook:
                           only when one is bound anyway). In mode policy there is no webhook
                           configuration: the install is found by the policy's bindings, and the
                           webhook and injector rows are skipped
  query registration configmap   the ConfigMap thanos-injector register writes for Thanos Query
With -n:
  namespace injection      its thanos-injection label (enabled, disabled, unset) or exclusion
  external labels distinct   the external labels of every pod here with a Thanos sidecar (the
                           injector's or its own), as Prometheus expands them for each pod: two
                           pods with the same labels fail (their blocks overlap: a Compactor
                           halts, Query cannot deduplicate; add replica: \${POD_NAME}), labels
                           taken from a Deployment pod's name warn (new streams on every rollout)
  For each pod here with a Thanos sidecar (with --pod: that pod only):
  pod containers           every container runs and is ready; a crash loop names the container and
                           its cause (termination message, else the previous instance's log) and,
                           for a second sidecar on the same port, missing external labels or the
                           hard-link failure, the fix; a Pending pod is a warning
  tsdb volume              whether Prometheus' TSDB outlives the pod (a claim) or goes with it (an
                           emptyDir: a warning with what a rollout loses, and the fix)
  sidecar up to date       the sidecar is what the current configuration injects (the pod
                           uninjected by its status annotation and injected again); outdated warns
                           with what differs (image, flags, resources, mode...) and the command that
                           rolls it; a pod of release 0.1.0 cannot be told; finished pods are skipped
  own thanos sidecar       a pod that runs its own Thanos sidecar: the container and the choices
                           (keep it, annotate thanos-injector/existing-sidecar: share-user, or
                           remove it and let the injector manage one)
  prometheus external_labels   the file behind Prometheus' --config.file sets global.external_labels;
                           what they become for the pod, and $(VAR) (prometheus-operator's form,
                           kept literally by Prometheus) or \${VAR} that does not expand
With -n and --pod, also:
  pod would be injected    the webhooks' selectors and the injector's own decision, on the pod as
                           stored (annotations included)
  pod injected             thanos-sidecar present, status annotation
  objstore secret          the Secret (and key) the sidecar reads its bucket configuration from
  pod registered with query   its namespace's dnssrv address (or its IP) is in the ConfigMap
  sidecar uploads          the running sidecar's uploads against the blocks its Prometheus cut: what
                           waits, the oldest one's age, the last upload that finished, and when
                           retention deletes the oldest; blocks waiting over three syncs (90 s) while
                           no upload finishes fail the row with the cause (credentials, no bucket,
                           unreachable, or requests that hang)
  history upload           with thanos-injector/upload-history: true, whether the sidecar has
                           uploaded Prometheus' compacted history (done: remove the annotation),
                           how far it got, or why it refuses (a block that overlaps the bucket)

Exit codes: 0 no check failed (warnings allowed), 1 a check failed or an API call failed, 2 bad flags.

Flags:
      --webhook-config NAME   the MutatingWebhookConfiguration (default: ${DEFAULT_WEBHOOK_CONFIGURATION}; when
                              not found, the one whose webhooks end with .thanos-sidecar-injector.io)
  -n, --namespace NS          check this namespace's injection state and its pods with a sidecar
      --pod NAME              check this pod in full (needs -n)
      --query-configmap NS/NAME   the registration ConfigMap (default: thanos-query-endpoints in the
                              namespace of the webhook's Service, or of its Helm release)
      --config FILE           the injector's configuration for the decision (default: config.yaml of
                              the install's ConfigMap, else the defaults)
      --kubeconfig FILE       kubeconfig to use (default: KUBECONFIG, ~/.kube/config, else in-cluster)
  -o, --output FORMAT         table (default) or json
  -h, --help                  show this help
`;


export async function run(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    'webhook-config': { type: 'string' },
    namespace: { type: 'string', short: 'n' },
    pod: { type: 'string' },
    'query-configmap': { type: 'string' },
    config: { type: 'string' },
    kubeconfig: { type: 'string' },
    output: { type: 'string', short: 'o', default: 'table' },
  }, 'check');
  if (values.help) {
    process.stdout.write(help);
    return 0;
  }
  if (!(OUTPUT_FORMATS as readonly string[]).includes(values.output)) {
    throw new UsageError(`--output: "${values.output}" is not valid; expected ${OUTPUT_FORMATS.join(' or ')}`);
  }
  const namespaceForm = 'a namespace name (lowercase letters, digits and -, at most 63)';
  const namespace = values.namespace === undefined ? undefined : checkName('namespace', values.namespace, DNS_LABEL, namespaceForm);
  if (values.pod !== undefined && namespace === undefined) {
    throw new UsageError("--pod needs -n NAMESPACE\nRun 'thanos-injector check --help' for usage.");
  }
  const pod = values.pod === undefined ? undefined : checkName('pod', values.pod, DNS_SUBDOMAIN, 'a pod name');
  const webhookConfig = checkName('webhook-config', values['webhook-config'] ?? DEFAULT_WEBHOOK_CONFIGURATION, DNS_SUBDOMAIN, 'a MutatingWebhookConfiguration name');
  let queryConfigMap: { namespace: string; name: string } | undefined;
  if (values['query-configmap'] !== undefined) {
    const [queryNamespace = '', name = '', ...rest] = values['query-configmap'].split('/');
    if (rest.length > 0 || !DNS_LABEL.test(queryNamespace) || !DNS_SUBDOMAIN.test(name)) {
      throw new UsageError(`--query-configmap: "${values['query-configmap']}" is not valid; expected NAMESPACE/NAME`);
    }
    queryConfigMap = { namespace: queryNamespace, name };
  }
  const config = values.config === undefined ? undefined : { config: await loadConfig(values.config), source: `file ${values.config}` };

  const reader = kubeReader(connect(values.kubeconfig));
  const rows = await diagnose(reader, {
    webhookConfig,
    webhookConfigExplicit: values['webhook-config'] !== undefined,
    namespace,
    pod,
    queryConfigMap,
    config,
    now: new Date(),
    systemRoots: rootCertificates,
  });
  process.stdout.write(format(rows, values.output as OutputFormat));
  return exitCodeOf(rows);
}
