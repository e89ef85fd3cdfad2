// `thanos-injector policy`: the injection as a MutatingAdmissionPolicy and its bindings, generated
// from the configuration the webhook reads (src/policy/generate.ts), printed as YAML for kubectl.
import { VersionApi } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { loadConfig } from '../config/load.ts';
import { call, connect } from '../kube/client.ts';
import { deadline } from '../kube/deadline.ts';
import { applyPolicy } from '../policy/apply.ts';
import { CommandError, UsageError } from '../errors.ts';
import { imageVersion } from '../inject/prometheus.ts';
import { generatePolicy, POLICY_MIN_KUBERNETES, policyUnsupported, PolicyScopeError } from '../policy/generate.ts';
import { DNS_SUBDOMAIN, checkName, parseFlags } from './args.ts';

const MIN = `v${POLICY_MIN_KUBERNETES.join('.')}`;

export const help = `Usage: thanos-injector policy [flags]

Prints a MutatingAdmissionPolicy and its two bindings (namespace opt-in, pod opt-in, as the
webhook's) that inject, in the apiserver itself, the Prometheus pods of the common shapes exactly
as the webhook would; every other pod is left untouched for the webhook. Kubernetes ${MIN} or later
(admissionregistration.k8s.io/v1). Apply with: thanos-injector policy --config FILE | kubectl apply -f -
or --apply (what the chart's hook runs: the bindings are owned by the policy and go with it).

Exit codes: 0 printed (or applied), 1 the configuration or the Kubernetes version cannot have a
policy (why is printed) or an API call failed, 2 bad flags.

Flags:
      --config FILE          the injector's configuration (default: defaults)
      --name NAME            the policy's name; the bindings are NAME-namespace and NAME-pod
                             (default: thanos-sidecar-injector)
      --kube-version V       the cluster's version (default: the cluster's with --apply, else
                             config kubernetesVersion)
      --apply                create or update the policy and its bindings in the cluster
      --policy-only          the policy without its bindings (the chart renders those itself)
      --kubeconfig FILE      kubeconfig for --apply (default: KUBECONFIG, ~/.kube/config, else in-cluster)
  -h, --help                 show this help
`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    config: { type: 'string' }, name: { type: 'string' }, 'kube-version': { type: 'string' }, apply: { type: 'boolean', default: false }, 'policy-only': { type: 'boolean', default: false }, kubeconfig: { type: 'string' },
  }, 'policy');
  if (values.help) {
    process.stdout.write(help);
    return 0;
  }
  const name = checkName('name', values.name ?? 'thanos-sidecar-injector', DNS_SUBDOMAIN, 'a policy name (lowercase letters, digits, - and .)');
  const config = await loadConfig(values.config);
  const kube = values.apply ? connect(values.kubeconfig) : undefined;
  const kubernetesVersion = values['kube-version'] ?? (kube === undefined
    ? config.kubernetesVersion
    : (await call(kube, 'cannot read the server version', () => kube.kubeConfig.makeApiClient(VersionApi).getCode(deadline(10_000)))).gitVersion);
  if (imageVersion(`:${kubernetesVersion}`) === undefined) throw new UsageError(`--kube-version: "${kubernetesVersion}" is not valid; expected a version such as 1.36.6`);
  const unsupported = policyUnsupported(kubernetesVersion);
  if (unsupported !== undefined) throw new CommandError(unsupported, 1);
  let objects: object[];
  try {
    const generated = generatePolicy(config, name);
    objects = values['policy-only'] ? [generated.objects[0]!, generated.warnings[0]!] : [...generated.objects, ...generated.warnings];
  } catch (error) {
    if (error instanceof PolicyScopeError) throw new CommandError(error.message, 1);
    throw error;
  }
  if (kube === undefined) process.stdout.write(objects.map((object) => stringify(object, { lineWidth: 0 })).join('---\n'));
  else process.stdout.write(`${(await applyPolicy(kube, objects)).join('\n')}\n`);
  return 0;
}
