// Registration with Thanos Query: the ConfigMap `thanos-injector register` writes, and whether a
// pod's sidecar is reachable through it (its namespace's dnssrv address backed by the headless
// Service, or its own pod IP). Pure.
import type { V1ConfigMap, V1Pod, V1Service } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { ENDPOINTS_KEY, SERVICE_NAME, TARGETS_KEY } from '../inject/names.ts';
import { CHECK, fail, ok, skip, warn, type CheckRow } from './rows.ts';
import { selectorMatches } from './webhook.ts';
import { messageOf } from '../errors.ts';

export const DEFAULT_QUERY_CONFIGMAP = 'thanos-query-endpoints';

export interface ConfigMapRef {
  namespace: string;
  name: string;
}

/** Every address Query would dial, from endpoints.yaml and targets.yaml; throws on malformed YAML. */
export function registeredAddresses(configMap: V1ConfigMap): string[] {
  const addresses = new Set<string>();
  const endpointsText = configMap.data?.[ENDPOINTS_KEY];
  if (endpointsText !== undefined) {
    const endpoints = (parse(endpointsText) as { endpoints?: { address?: unknown }[] } | null)?.endpoints ?? [];
    for (const endpoint of endpoints) if (typeof endpoint?.address === 'string') addresses.add(endpoint.address);
  }
  const targetsText = configMap.data?.[TARGETS_KEY];
  if (targetsText !== undefined) {
    const groups = (parse(targetsText) as { targets?: unknown[] }[] | null) ?? [];
    for (const group of Array.isArray(groups) ? groups : []) {
      for (const target of group?.targets ?? []) if (typeof target === 'string') addresses.add(target);
    }
  }
  return [...addresses];
}

function readAddresses(configMap: V1ConfigMap): string[] | string {
  try {
    return registeredAddresses(configMap);
  } catch (error) {
    return messageOf(error).split('\n')[0] ?? 'invalid YAML';
  }
}

const registerHint = (ref: ConfigMapRef) => `run thanos-injector register --query-namespace ${ref.namespace} (the chart's registration CronJob does, every minute)`;

/** The registration ConfigMap exists and parses; its absence is a warning (registration is optional). */
export function checkQueryConfigMap(ref: ConfigMapRef | undefined, configMap: V1ConfigMap | undefined): CheckRow {
  const name = CHECK.queryConfigMap;
  if (ref === undefined) return skip(name, 'no install namespace known: pass --query-configmap NAMESPACE/NAME');
  const where = `ConfigMap ${ref.namespace}/${ref.name}`;
  if (configMap === undefined) return warn(name, `${where} not found: Thanos Query discovers no sidecar through it; ${registerHint(ref)}`);
  if (configMap.data?.[ENDPOINTS_KEY] === undefined && configMap.data?.[TARGETS_KEY] === undefined) {
    return fail(name, `${where} has neither ${ENDPOINTS_KEY} nor ${TARGETS_KEY}: is it the registration ConfigMap? ${registerHint(ref)}`);
  }
  const addresses = readAddresses(configMap);
  if (typeof addresses === 'string') return fail(name, `${where} is not valid YAML (${addresses}): Query cannot read it; ${registerHint(ref)}`);
  return ok(name, `${where} lists ${addresses.length} endpoint${addresses.length === 1 ? '' : 's'}`);
}

function isDnssrvOf(address: string, namespace: string): boolean {
  const prefix = `dnssrv+_grpc._tcp.${SERVICE_NAME}.${namespace}.svc`;
  return address === prefix || address.startsWith(`${prefix}.`);
}

function isPodAddress(address: string, ip: string): boolean {
  return address.startsWith(`${ip}:`) || address.startsWith(`[${ip}]:`);
}

/** The injected pod is in the ConfigMap: by its namespace's dnssrv address (and the Service selects it) or by its IP. */
export function checkPodRegistered(pod: V1Pod, injected: boolean, ref: ConfigMapRef | undefined, configMap: V1ConfigMap | undefined, sidecarService: V1Service | undefined): CheckRow {
  const name = CHECK.podRegistered;
  if (!injected) return skip(name, 'the pod has no sidecar to register');
  if (ref === undefined) return skip(name, 'no install namespace known: pass --query-configmap NAMESPACE/NAME');
  const where = `ConfigMap ${ref.namespace}/${ref.name}`;
  if (configMap === undefined) return fail(name, `${where} not found: Thanos Query does not see this sidecar; ${registerHint(ref)}`);
  const addresses = readAddresses(configMap);
  if (typeof addresses === 'string') return fail(name, `${where} is not valid YAML (${addresses}); ${registerHint(ref)}`);
  const namespace = pod.metadata?.namespace ?? '';
  const ip = pod.status?.podIP;
  const byIp = ip ? addresses.find((address) => isPodAddress(address, ip)) : undefined;
  if (byIp !== undefined) return ok(name, `listed as ${byIp} in ${where}`);
  const bySrv = addresses.find((address) => isDnssrvOf(address, namespace));
  if (bySrv !== undefined) {
    const service = `Service ${namespace}/${SERVICE_NAME}`;
    if (sidecarService === undefined) return fail(name, `${where} lists ${bySrv}, but ${service} is missing, so it resolves to nothing; ${registerHint(ref)}`);
    const selector = sidecarService.spec?.selector ?? {};
    if (Object.keys(selector).length === 0 || !selectorMatches({ matchLabels: selector }, pod.metadata?.labels ?? {})) {
      return fail(name, `${where} lists ${bySrv}, but ${service} does not select this pod (selector ${JSON.stringify(selector)}); ${registerHint(ref)}`);
    }
    return ok(name, `listed as ${bySrv} in ${where}; ${service} selects the pod`);
  }
  return fail(name, `not in ${where} (${addresses.length} endpoint${addresses.length === 1 ? '' : 's'}; neither the dnssrv address of namespace ${namespace} nor ${ip ?? 'a pod IP'}): Thanos Query does not see this sidecar; ${registerHint(ref)}`);
}
