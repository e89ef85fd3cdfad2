// The webhook configuration as the apiserver sees it: which MutatingWebhookConfiguration is ours,
// whether both webhooks are there and what they call, where the install lives (for its Secret and
// ConfigMaps), and which webhook would send a given pod to the injector. Pure.
import type { V1LabelSelector, V1MutatingWebhook, V1MutatingWebhookConfiguration, V1Namespace } from '@kubernetes/client-node';
import { CHECK, fail, ok, warn, type CheckRow } from './rows.ts';

export const DEFAULT_WEBHOOK_CONFIGURATION = 'thanos-sidecar-injector';
export const WEBHOOK_SUFFIX = '.thanos-sidecar-injector.io';
export const NAMESPACE_WEBHOOK = `namespace${WEBHOOK_SUFFIX}`;
export const POD_WEBHOOK = `pod${WEBHOOK_SUFFIX}`;
/** The chart's two webhooks: namespace opt-in and pod opt-in (templates/mutatingwebhookconfiguration.yaml). */
export const EXPECTED_WEBHOOKS = [NAMESPACE_WEBHOOK, POD_WEBHOOK] as const;
/** Helm records the release namespace on every object it manages. */
export const HELM_NAMESPACE_ANNOTATION = 'meta.helm.sh/release-namespace';
const INSTALL_HINT = 'helm install thanos-injector charts/thanos-sidecar-injector -n thanos-injector --create-namespace';

/** Where the apiserver sends admission reviews, with the caBundle it verifies the answer with. */
export type WebhookTarget =
  | { kind: 'service'; namespace: string; name: string; port: number; path: string; caBundle: string; dnsName: string }
  | { kind: 'url'; url: string; host: string; port: number; caBundle: string; dnsName: string };

/** The namespace and name the chart gives the Service, Deployment, ConfigMap and Secret prefix. */
export interface InstallLocation {
  namespace: string;
  name: string;
}

export function isOurs(configuration: V1MutatingWebhookConfiguration): boolean {
  return (configuration.webhooks ?? []).some((webhook) => webhook.name.endsWith(WEBHOOK_SUFFIX));
}

export interface ConfigurationChoice {
  configuration: V1MutatingWebhookConfiguration | undefined;
  row: CheckRow;
}

/**
 * The configuration to check: the one named `requested`, else the one whose webhooks are named
 * `*.thanos-sidecar-injector.io` (a Helm release names it `<release>-thanos-sidecar-injector`).
 * `explicit`: the name came from --webhook-config, so finding another one is worth a warning.
 */
export function chooseConfiguration(
  requested: string,
  explicit: boolean,
  named: V1MutatingWebhookConfiguration | undefined,
  all: readonly V1MutatingWebhookConfiguration[],
): ConfigurationChoice {
  const name = CHECK.webhookConfiguration;
  if (named !== undefined && isOurs(named)) {
    return { configuration: named, row: ok(name, `MutatingWebhookConfiguration ${requested}`) };
  }
  const candidates = all.filter(isOurs).sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
  const notOurs = named !== undefined ? `${requested} has no *${WEBHOOK_SUFFIX} webhook` : `no configuration named ${requested}`;
  const first = candidates[0];
  if (first === undefined) {
    return {
      configuration: undefined,
      row: fail(name, `${notOurs}, and no MutatingWebhookConfiguration has *${WEBHOOK_SUFFIX} webhooks: nothing injects; install the chart (${INSTALL_HINT})`),
    };
  }
  const found = first.metadata?.name ?? '';
  if (candidates.length > 1) {
    const names = candidates.map((c) => c.metadata?.name ?? '').join(', ');
    return {
      configuration: first,
      row: warn(name, `${candidates.length} configurations have *${WEBHOOK_SUFFIX} webhooks (${names}); checking ${found}: pass --webhook-config NAME to choose, and uninstall the extra release`),
    };
  }
  if (explicit) {
    return { configuration: first, row: warn(name, `${notOurs}; checking ${found} instead (found by its webhook names): pass --webhook-config ${found}`) };
  }
  return { configuration: first, row: ok(name, `MutatingWebhookConfiguration ${found} (found by its webhook names)`) };
}

function coversPodCreate(webhook: V1MutatingWebhook): boolean {
  const any = (list: string[] | undefined, value: string) => (list ?? []).some((item) => item === value || item === '*');
  return (webhook.rules ?? []).some(
    (rule) => any(rule.operations, 'CREATE') && any(rule.apiGroups, '') && any(rule.apiVersions, 'v1') &&
      (rule.resources ?? []).some((resource) => resource === 'pods' || resource === '*' || resource === '*/*'),
  );
}

function hostAndPort(url: string): { host: string; port: number } | undefined {
  try {
    const parsed = new URL(url);
    return { host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'), port: parsed.port === '' ? 443 : Number(parsed.port) };
  } catch {
    return undefined;
  }
}

/** What a webhook calls; undefined when its clientConfig names neither a Service nor a valid URL. */
export function targetOf(webhook: V1MutatingWebhook): WebhookTarget | undefined {
  const { clientConfig } = webhook;
  const caBundle = clientConfig.caBundle ?? '';
  if (clientConfig.service !== undefined) {
    const { namespace, name } = clientConfig.service;
    return { kind: 'service', namespace, name, port: clientConfig.service.port ?? 443, path: clientConfig.service.path ?? '/', caBundle, dnsName: `${name}.${namespace}.svc` };
  }
  if (clientConfig.url === undefined) return undefined;
  const address = hostAndPort(clientConfig.url);
  if (address === undefined) return undefined;
  return { kind: 'url', url: clientConfig.url, ...address, caBundle, dnsName: address.host };
}

export function describeTarget(target: WebhookTarget): string {
  return target.kind === 'service' ? `Service ${target.namespace}/${target.name}:${target.port}${target.path}` : target.url;
}

const sameTarget = (a: V1MutatingWebhook, b: V1MutatingWebhook) =>
  JSON.stringify({ ...a.clientConfig, caBundle: undefined }) === JSON.stringify({ ...b.clientConfig, caBundle: undefined }) &&
  (a.clientConfig.caBundle ?? '') === (b.clientConfig.caBundle ?? '');

export interface WebhooksCheck {
  row: CheckRow;
  /** What the first of our webhooks calls (both call the same injector in the chart). */
  target: WebhookTarget | undefined;
}

/** Both webhooks present, covering pod CREATE, calling the same injector; failure policy and timeout shown. */
export function checkWebhooks(configuration: V1MutatingWebhookConfiguration): WebhooksCheck {
  const name = CHECK.webhooks;
  const ours = (configuration.webhooks ?? []).filter((webhook) => webhook.name.endsWith(WEBHOOK_SUFFIX));
  const first = ours[0];
  const target = first === undefined ? undefined : targetOf(first);
  const problems: string[] = [];
  const missing = EXPECTED_WEBHOOKS.filter((expected) => !ours.some((webhook) => webhook.name === expected));
  for (const webhook of missing) {
    const effect = webhook === NAMESPACE_WEBHOOK
      ? 'pods in namespaces labelled thanos-injection=enabled are not injected'
      : 'pods labelled thanos-injection=enabled in unlabelled namespaces are not injected';
    problems.push(`${webhook} is missing (${effect})`);
  }
  for (const webhook of ours) {
    if (!coversPodCreate(webhook)) problems.push(`${webhook.name} does not select pod CREATE (its rules)`);
    if (targetOf(webhook) === undefined) problems.push(`${webhook.name} has no Service or valid https URL in clientConfig`);
  }
  if (first !== undefined && ours.some((webhook) => !sameTarget(webhook, first))) {
    problems.push('the webhooks call different injectors or carry different caBundles');
  }
  const settings = ours.map((webhook) => `${webhook.name.slice(0, -WEBHOOK_SUFFIX.length)}: failurePolicy ${webhook.failurePolicy ?? 'Fail'}, timeout ${webhook.timeoutSeconds ?? 10}s`);
  const calls = target === undefined ? '' : `; calls ${describeTarget(target)}`;
  if (problems.length > 0) {
    return { target, row: fail(name, `${problems.join('; ')}: re-apply the chart (helm upgrade --reuse-values) or fix ${configuration.metadata?.name ?? ''}`) };
  }
  const failClosed = ours.some((webhook) => (webhook.failurePolicy ?? 'Fail') === 'Fail') ? ' (Fail: pod creation is refused while the injector is down)' : '';
  return { target, row: ok(name, `${settings.join('; ')}${calls}${failClosed}`) };
}

/** The release's namespace and full name: the Service's, else (webhook.url) Helm's annotation and the configuration's name. */
export function installLocation(configuration: V1MutatingWebhookConfiguration, target: WebhookTarget | undefined): InstallLocation | undefined {
  if (target?.kind === 'service') return { namespace: target.namespace, name: target.name };
  const namespace = configuration.metadata?.annotations?.[HELM_NAMESPACE_ANNOTATION];
  const name = configuration.metadata?.name;
  return namespace && name ? { namespace, name } : undefined;
}

/** Kubernetes label selector semantics: every matchLabels pair and every expression must hold; empty matches all. */
export function selectorMatches(selector: V1LabelSelector | undefined, labels: Record<string, string>): boolean {
  if (selector === undefined) return true;
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) if (labels[key] !== value) return false;
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const value = labels[key];
    const holds =
      operator === 'In' ? value !== undefined && values.includes(value)
        : operator === 'NotIn' ? value === undefined || !values.includes(value)
          : operator === 'Exists' ? value !== undefined
            : operator === 'DoesNotExist' ? value === undefined
              : false;
    if (!holds) return false;
  }
  return true;
}

/** The labels the apiserver matches a namespaceSelector against (kubernetes.io/metadata.name is always set). */
export function namespaceLabels(namespace: V1Namespace): Record<string, string> {
  const name = namespace.metadata?.name ?? '';
  return { 'kubernetes.io/metadata.name': name, ...namespace.metadata?.labels };
}

/** Names of our webhooks that would be called for a pod CREATE with these labels in this namespace. */
export function selectingWebhooks(configuration: V1MutatingWebhookConfiguration, namespace: V1Namespace, podLabels: Record<string, string>): string[] {
  const labels = namespaceLabels(namespace);
  return (configuration.webhooks ?? [])
    .filter((webhook) => webhook.name.endsWith(WEBHOOK_SUFFIX) && coversPodCreate(webhook))
    .filter((webhook) => selectorMatches(webhook.namespaceSelector, labels) && selectorMatches(webhook.objectSelector, podLabels))
    .map((webhook) => webhook.name);
}

/** True when our webhooks' namespaceSelectors rule the namespace out whatever its thanos-injection label says. */
export function namespaceExcludedByWebhooks(configuration: V1MutatingWebhookConfiguration, namespace: V1Namespace): boolean {
  const name = namespace.metadata?.name ?? '';
  const ours = (configuration.webhooks ?? []).filter((webhook) => webhook.name.endsWith(WEBHOOK_SUFFIX));
  return ours.length > 0 && ours.every((webhook) =>
    (webhook.namespaceSelector?.matchExpressions ?? []).some((e) => e.key === 'kubernetes.io/metadata.name' && e.operator === 'NotIn' && (e.values ?? []).includes(name)),
  );
}
