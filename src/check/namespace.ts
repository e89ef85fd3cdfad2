// A namespace's injection state: its thanos-injection label, the injector's excluded namespaces,
// and what the webhooks' namespaceSelectors make of it. Pure.
import type { V1MutatingWebhookConfiguration, V1Namespace } from '@kubernetes/client-node';
import type { Config } from '../config/schema.ts';
import { INJECTION_LABEL } from '../inject/names.ts';
import { CHECK, fail, ok, warn, type CheckRow } from './rows.ts';
import { NAMESPACE_WEBHOOK, namespaceExcludedByWebhooks, selectingWebhooks } from './webhook.ts';

/** Why pods of this namespace are never injected, whatever the labels say; undefined when they can be. */
export function exclusionOf(name: string, config: Config, configuration: V1MutatingWebhookConfiguration | undefined, namespace: V1Namespace): string | undefined {
  if (config.excludedNamespaces.includes(name)) return `namespace ${name} is excluded by the injector configuration (excludedNamespaces)`;
  if (config.injectorNamespace !== '' && config.injectorNamespace === name) return `namespace ${name} is the injector's own namespace`;
  if (configuration !== undefined && namespaceExcludedByWebhooks(configuration, namespace)) {
    return `namespace ${name} is excluded by the webhooks' namespaceSelector (chart: system namespaces, the release namespace and webhook.excludedNamespaces)`;
  }
  return undefined;
}

/** `labelled thanos-injection=enabled` / `not labelled thanos-injection`, for messages. */
export function describeNamespaceLabel(namespace: V1Namespace): string {
  const value = namespace.metadata?.labels?.[INJECTION_LABEL];
  return value === undefined ? `namespace ${namespace.metadata?.name ?? ''} is not labelled ${INJECTION_LABEL}` : `namespace ${namespace.metadata?.name ?? ''} is labelled ${INJECTION_LABEL}=${value}`;
}

/**
 * The namespace's state. A namespace that is not labelled enabled is a warning, not a failure:
 * pods may opt in one by one (pod label thanos-injection=enabled), and leaving a namespace out is
 * a legitimate choice. Whether a particular Prometheus pod loses its sidecar is the pod check's call.
 */
export function checkNamespace(name: string, namespace: V1Namespace | undefined, config: Config, configuration: V1MutatingWebhookConfiguration | undefined): CheckRow {
  const row = CHECK.namespace;
  if (namespace === undefined) return fail(row, `namespace ${name} not found`);
  const excluded = exclusionOf(name, config, configuration, namespace);
  if (excluded !== undefined) return warn(row, `${excluded}: its pods are never injected`);
  const label = namespace.metadata?.labels?.[INJECTION_LABEL];
  const enable = `kubectl label namespace ${name} ${INJECTION_LABEL}=enabled --overwrite`;
  if (label === 'enabled') {
    if (configuration !== undefined && !selectingWebhooks(configuration, namespace, {}).includes(NAMESPACE_WEBHOOK)) {
      return fail(row, `labelled ${INJECTION_LABEL}=enabled, but webhook ${NAMESPACE_WEBHOOK} does not select it: check its namespaceSelector`);
    }
    return ok(row, `labelled ${INJECTION_LABEL}=enabled: Prometheus pods created here get the sidecar (unless labelled ${INJECTION_LABEL}=disabled)`);
  }
  if (label === 'disabled') {
    return warn(row, `labelled ${INJECTION_LABEL}=disabled: no pod here is injected, not even pods labelled enabled; to inject: ${enable}`);
  }
  if (label !== undefined) {
    return warn(row, `labelled ${INJECTION_LABEL}=${label}, which is neither enabled nor disabled: no pod here is injected; to inject: ${enable}`);
  }
  return warn(row, `not labelled ${INJECTION_LABEL}: only pods labelled ${INJECTION_LABEL}=enabled are injected; to inject every Prometheus pod here: ${enable}`);
}
