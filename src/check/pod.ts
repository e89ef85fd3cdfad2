// One pod: would the webhook inject it (the engine's own answer, on the pod as stored), is it
// injected, and does the objstore Secret its sidecar reads exist with a usable key. Pure.
import type { V1MutatingWebhookConfiguration, V1Namespace, V1Pod, V1Secret } from '@kubernetes/client-node';
import { parse } from 'yaml';
import type { Config } from '../config/schema.ts';
import { injectPod } from '../inject/inject.ts';
import { INJECTED_LABEL, INJECTION_LABEL, optedIn, PREFIX, SIDECAR_NAME, STATUS_ANNOTATION } from '../inject/names.ts';
import { parseOverrides, resolveSettings } from '../inject/overrides.ts';
import { allContainers, flagValue, mountHolding, type Container } from '../inject/pod.ts';
import { describeNamespaceLabel } from './namespace.ts';
import { readStatus } from '../inject/status.ts';
import { CHECK, fail, ok, skip, warn, type CheckRow } from './rows.ts';
import { selectingWebhooks } from './webhook.ts';
import { messageOf } from '../errors.ts';
import { uninjectPod } from '../inject/uninject.ts';
import { policyClaim } from '../policy/claim.ts';
import type { InjectionMode } from '../policy/generate.ts';

/** The pod as its template would arrive at admission: without the sidecar a previous injection added. */
export function withoutSidecar(pod: V1Pod): V1Pod {
  if (pod.spec === undefined) return pod;
  const keep = (containers: Container[] | undefined) => containers?.filter((c) => c.name !== SIDECAR_NAME);
  const initContainers = keep(pod.spec.initContainers);
  return {
    ...pod,
    spec: { ...pod.spec, containers: keep(pod.spec.containers) ?? [], ...(initContainers === undefined ? {} : { initContainers }) },
  };
}

export function sidecarOf(pod: V1Pod): Container | undefined {
  return pod.spec === undefined ? undefined : allContainers(pod.spec).find((c) => c.name === SIDECAR_NAME);
}

export interface PodDecision {
  row: CheckRow;
  /** True when a CREATE of this pod would get the sidecar. */
  injectable: boolean;
}

// Skips that are the user's choice or the pod's nature, not a misconfiguration (a pod with its own sidecar has a row of its own).
const INTENTIONAL = new Set(['pod-opted-out', 'namespace-excluded', 'injector-namespace', 'mirror-pod', 'agent-mode', 'existing-sidecar', 'ephemeral-tsdb']);

/**
 * Would a CREATE of this pod (as stored, annotations included, minus an existing sidecar) be
 * injected? The webhooks' selectors first (which pods reach the injector at all), then the
 * injector's own decision, override annotations and rendering, exactly as the webhook runs them.
 */
/** The back ends of the install (auto resolved) and the cluster's version, for which of them a pod goes to. */
export interface BackEnds {
  mode: InjectionMode;
  kubernetesVersion: string;
}

export function checkPodDecision(pod: V1Pod, namespace: V1Namespace, config: Config, configuration: V1MutatingWebhookConfiguration | undefined, backEnds: BackEnds = { mode: 'webhook', kubernetesVersion: config.kubernetesVersion }): PodDecision {
  const name = CHECK.podDecision;
  const namespaceName = namespace.metadata?.name ?? '';
  const podName = pod.metadata?.name ?? '';
  const labels = pod.metadata?.labels ?? {};
  const outcome = injectPod(withoutSidecar(pod), { config, namespace: namespaceName, kubernetesVersion: config.kubernetesVersion });
  if (outcome.outcome === 'skipped') {
    if (INTENTIONAL.has(outcome.reason)) return { injectable: false, row: warn(name, `no: ${outcome.message} (${outcome.reason})`) };
    return {
      injectable: false,
      row: fail(name, `no: ${outcome.message} (${outcome.reason}); name the Prometheus container "prometheus" or annotate the pod ${PREFIX}prometheus-container: NAME`),
    };
  }
  if (outcome.outcome === 'denied') {
    return { injectable: false, row: fail(name, `no: the webhook would refuse the pod (${outcome.reason}): ${outcome.message}`) };
  }
  const selectedBy = configuration === undefined ? undefined : selectingWebhooks(configuration, namespace, labels);
  const selected = selectedBy === undefined ? optedIn(namespace.metadata?.labels, labels) : selectedBy.length > 0;
  if (!selected) {
    const podLabel = labels[INJECTION_LABEL] === undefined ? `the pod is not labelled ${INJECTION_LABEL}` : `the pod is labelled ${INJECTION_LABEL}=${labels[INJECTION_LABEL]}`;
    return {
      injectable: false,
      row: fail(name, `no: no webhook selects it (${describeNamespaceLabel(namespace)} and ${podLabel}): a re-created pod (rollout, eviction) starts WITHOUT the sidecar; kubectl label namespace ${namespaceName} ${INJECTION_LABEL}=enabled --overwrite, or label the pod template ${INJECTION_LABEL}=enabled`),
    };
  }
  const warnings = outcome.warnings.length > 0 ? `; warnings: ${outcome.warnings.join('; ')}` : '';
  if (backEnds.mode !== 'webhook') {
    // The pod as it was created: uninjected by its status annotation (the policy's pods carry one too).
    const uninjected = uninjectPod(pod);
    const claim = policyClaim('pod' in uninjected ? uninjected.pod : withoutSidecar(pod), namespaceName, config, backEnds.kubernetesVersion);
    if (claim.backEnd === 'policy') return { injectable: true, row: ok(name, `yes, by the injection policy (the apiserver itself): pod ${podName} is a shape it injects exactly`) };
    if (backEnds.mode === 'policy') {
      return { injectable: false, row: fail(name, `no: injection mode policy has no webhook, and the policy leaves this pod to one: ${claim.why}; use injection.mode both, or change the pod`) };
    }
  }
  const via = selectedBy === undefined ? '' : ` via ${selectedBy.join(', ')}`;
  return { injectable: true, row: ok(name, `yes${via}: pod ${podName} is a Prometheus pod the injector accepts${warnings}`) };
}

/** Is the sidecar there, and did this injector put it there (status annotation, injected label)? */
export function checkPodInjected(pod: V1Pod, injectable: boolean): CheckRow {
  const name = CHECK.podInjected;
  const namespace = pod.metadata?.namespace ?? '';
  const podName = pod.metadata?.name ?? '';
  const sidecar = sidecarOf(pod);
  if (sidecar === undefined) {
    if (!injectable) return skip(name, `no ${SIDECAR_NAME}, as expected from the decision above`);
    return fail(name, `no ${SIDECAR_NAME}: the pod was created while the webhook was not called or did not answer (failurePolicy Ignore), or before its namespace opted in; re-create it: kubectl -n ${namespace} delete pod ${podName} (its controller brings it back injected), or thanos-injector register --restart-uninjected`);
  }
  const native = pod.spec?.initContainers?.some((c) => c.name === SIDECAR_NAME && c.restartPolicy === 'Always') ?? false;
  const shape = native ? 'a native sidecar (init container, restartPolicy Always)' : 'a container';
  const status = readStatus(pod);
  if (status === undefined || 'error' in status) {
    return warn(name, `${SIDECAR_NAME} present as ${shape}, but without a readable ${STATUS_ANNOTATION} annotation: added by hand or another tool, and the injector leaves it as it is`);
  }
  if (pod.metadata?.labels?.[INJECTED_LABEL] !== 'true') {
    return warn(name, `${SIDECAR_NAME} present, but the pod is not labelled ${INJECTED_LABEL}=true: registration with Thanos Query does not see it`);
  }
  return ok(name, `${SIDECAR_NAME} present as ${shape}; ${STATUS_ANNOTATION}: injector ${status.version ?? '?'}, mode ${status.mode ?? '?'}, Prometheus container ${status.prometheus ?? '?'}`);
}

/** The Secret (and key) the pod's sidecar reads its bucket configuration from. */
export type ObjstoreReference =
  | { kind: 'secret'; name: string; key: string; how: string }
  | { kind: 'none'; reason: string };


/**
 * An injected pod: the Secret volume behind the sidecar's --objstore.config-file. Otherwise what the
 * injector would mount: the objstore-secret annotation (NAME or NAME/KEY), else the configuration.
 */
export function objstoreReference(pod: V1Pod, config: Config): ObjstoreReference {
  const sidecar = sidecarOf(pod);
  if (sidecar !== undefined) {
    const file = flagValue(sidecar, 'objstore.config-file');
    if (file === undefined) {
      return flagValue(sidecar, 'objstore.config') !== undefined
        ? { kind: 'none', reason: 'the sidecar has its bucket configuration inline (--objstore.config)' }
        : { kind: 'none', reason: 'the sidecar has no --objstore.config-file: it uploads nothing (object storage off)' };
    }
    const held = mountHolding(sidecar.volumeMounts, file);
    if (held !== undefined) {
      const volume = pod.spec?.volumes?.find((v) => v.name === held.mount.name);
      const secretName = volume?.secret?.secretName;
      if (secretName === undefined || held.rest === '') return { kind: 'none', reason: `--objstore.config-file ${file} is not on a Secret volume` };
      const key = volume?.secret?.items?.find((item) => item.path === held.inVolume)?.key ?? held.inVolume;
      return { kind: 'secret', name: secretName, key, how: `mounted by ${SIDECAR_NAME} for --objstore.config-file=${file}` };
    }
    return { kind: 'none', reason: `--objstore.config-file ${file} is on no volume of the sidecar` };
  }
  const overrides = parseOverrides(pod.metadata?.annotations ?? undefined);
  const { settings } = resolveSettings(config, overrides.values, config.kubernetesVersion);
  if (!settings.objstore.enabled) return { kind: 'none', reason: 'object storage is off in the injector configuration (objstore.enabled: false)' };
  if (settings.objstore.configFile !== undefined) {
    const from = overrides.values['objstore-config-file'] !== undefined ? `annotation ${PREFIX}objstore-config-file` : 'injector configuration objstore.configFile';
    return { kind: 'none', reason: `the bucket configuration is the file ${settings.objstore.configFile} (${from}), which the pod provides: no Secret to look at` };
  }
  const how = overrides.values['objstore-secret'] !== undefined ? `annotation ${PREFIX}objstore-secret` : 'injector configuration objstore.secretName/secretKey';
  return { kind: 'secret', name: settings.objstore.secretName, key: settings.objstore.secretKey, how };
}

/** The objstore Secret exists in the pod's namespace, has the key, and the key holds a Thanos objstore config. */
export function checkObjstoreSecret(namespace: string, reference: ObjstoreReference, secret: V1Secret | undefined): CheckRow {
  const name = CHECK.objstoreSecret;
  if (reference.kind === 'none') return skip(name, reference.reason);
  const where = `Secret ${namespace}/${reference.name}`;
  const create = `kubectl -n ${namespace} create secret generic ${reference.name} --from-file=${reference.key}=bucket.yml (format: examples/objstore-secret.yaml)`;
  if (secret === undefined) {
    return fail(name, `${where} not found (${reference.how}): the sidecar's volume cannot mount, so the pod cannot start; ${create}`);
  }
  const data = secret.data?.[reference.key];
  if (data === undefined) {
    const keys = Object.keys(secret.data ?? {});
    return fail(name, `${where} has no key ${reference.key} (keys: ${keys.length === 0 ? 'none' : keys.join(', ')}; ${reference.how}): the sidecar cannot read its bucket configuration; ${create}`);
  }
  let parsed: unknown;
  try {
    parsed = parse(Buffer.from(data, 'base64').toString('utf8'));
  } catch (error) {
    return fail(name, `${where} key ${reference.key} is not valid YAML (${messageOf(error).split('\n')[0]}): the sidecar exits; fix the Secret`);
  }
  const type = (parsed as { type?: unknown } | null)?.type;
  if (typeof type !== 'string' || type === '') {
    return fail(name, `${where} key ${reference.key} is not a Thanos objstore configuration (expected type: and config:): the sidecar exits; see examples/objstore-secret.yaml`);
  }
  return ok(name, `${where} key ${reference.key}: type ${type} (${reference.how})`);
}
