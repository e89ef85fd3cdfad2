// What `thanos-injector register` should make true, computed from what the cluster holds: which
// headless Services to create, update or delete, what the endpoints ConfigMap says, which pods are
// registered, which labelled Prometheus pods run without the sidecar, and which injected sidecars
// cannot upload usable blocks (problems.ts). Pure: no I/O, no clock.
import type { V1ConfigMap, V1Container, V1Namespace, V1OwnerReference, V1Pod, V1Service, V1ServicePort } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import type { Config } from '../config/schema.ts';
import { decide } from '../inject/decide.ts';
import { ENDPOINTS_KEY, INJECTED_LABEL, MANAGED_BY_LABEL, MANAGER, optedIn, SERVICE_NAME, SIDECAR_NAME, TARGETS_KEY } from '../inject/names.ts';
import { allContainers } from '../inject/pod.ts';
import { sidecarProblems, type SidecarProblem } from './problems.ts';
import { sidecarDrift } from '../check/drift.ts';
import { isDeleting, isReady, isTerminal } from '../kube/pods.ts';
import type { UploadEvidence } from '../check/uploads.ts';
import { isOwnedBy, withOwner } from '../kube/owner.ts';

export const GRPC_PORT = 10901;
export const HTTP_PORT = 10902;
export const REGISTERED_REASON = 'ThanosSidecarRegistered';
export const MISSING_REASON = 'ThanosSidecarMissing';

export type EndpointMode = 'dnssrv' | 'pod-ip';
export const ENDPOINT_MODES: readonly EndpointMode[] = ['dnssrv', 'pod-ip'];

export interface InstallOwner {
  kind: 'MutatingWebhookConfiguration' | 'MutatingAdmissionPolicy';
  name: string;
  required: boolean;
}

export interface RegisterSettings {
  endpoints: EndpointMode;
  clusterDomain: string;
  queryNamespace: string;
  configMapName: string;
  restartUninjected: boolean;
  /**
   * The install's MutatingWebhookConfiguration (or, in injection mode policy, its
   * MutatingAdmissionPolicy), the owner of what registration creates. Required (named by
   * --webhook-config or --policy, as the chart does): when it is not there, the install is gone or
   * going, and registration writes nothing that would outlive it.
   */
  owner: InstallOwner;
  /** The injector's configuration: "would be injected" means what the webhook's decide() means. */
  injection: Config;
}

/** What the reader found, already limited to the namespaces in scope. */
export interface ClusterState {
  /** Pods labelled `thanos-injector/injected=true`. */
  injectedPods: V1Pod[];
  /** Services named `thanos-sidecar`, ours or not. */
  services: V1Service[];
  /** Namespaces carrying the `thanos-injection` label, whatever its value. */
  labelledNamespaces: V1Namespace[];
  /** Pods the webhook may select: every pod of an opted-in namespace, and pods labelled enabled (duplicates allowed). */
  selectablePods: V1Pod[];
  /** The endpoints ConfigMap as it is now. */
  configMap: V1ConfigMap | undefined;
  /** The ConfigMaps behind the injected pods' --config.file that exist (Secrets are not read). */
  prometheusConfigMaps: V1ConfigMap[];
  /** Reads that failed without stopping registration (of those ConfigMaps): one line each. */
  unreadable: string[];
  /** What each running injected pod's sidecar and Prometheus said about uploads, by pod uid (pods that could not be asked are absent). */
  uploads: ReadonlyMap<string, UploadEvidence>;
  /** When that was read (ms): the backlog's clock. */
  readAt: number;
  /** The cluster's Kubernetes version (sidecarMode auto), when it answered. */
  kubernetesVersion?: string;
  /** The install's MutatingWebhookConfiguration, which owns the Services and the ConfigMap (src/kube/owner.ts); none: they are not owned. */
  owner?: V1OwnerReference;
}

export interface PodRef {
  namespace: string;
  name: string;
  uid: string;
}

export type ServiceAction =
  | { action: 'create'; namespace: string; service: V1Service }
  | { action: 'update'; namespace: string; service: V1Service }
  /** Ours, but its clusterIP is not None (immutable): delete, then create. */
  | { action: 'recreate'; namespace: string; uid: string; service: V1Service }
  | { action: 'delete'; namespace: string; uid: string }
  | { action: 'unchanged'; namespace: string }
  | { action: 'conflict'; namespace: string; message: string };

export interface NamespaceRow {
  namespace: string;
  injectedPods: number;
  service: ServiceAction['action'];
  /** Addresses this namespace contributes to the ConfigMap. */
  endpoints: number;
}

export interface ConfigMapPlan {
  action: 'create' | 'update' | 'unchanged';
  namespace: string;
  name: string;
  /** The object to create or replace (for unchanged: what is there). */
  configMap: V1ConfigMap;
  addresses: string[];
}

export interface Registration {
  pod: PodRef;
  address: string;
  /** dnssrv addresses resolve through the namespace's Service: no Service, no registration. */
  viaService: boolean;
}

export interface MissingSidecar {
  pod: PodRef;
  /** `Kind/name` of the controlling owner; undefined for a bare pod. */
  owner: string | undefined;
  restart: boolean;
  /** What happens to it, for the summary and the event. */
  note: string;
}

export interface Plan {
  namespaces: NamespaceRow[];
  services: ServiceAction[];
  configMap: ConfigMapPlan;
  registrations: Registration[];
  missing: MissingSidecar[];
  /** Injected pods whose sidecar exits for want of external labels, or shares its labels with other pods. */
  problems: SidecarProblem[];
}

/** Pods registered with Query (a pod may stand behind more than one registration). */
export function registeredPodCount(plan: Plan): number {
  return new Set(plan.registrations.map((registration) => registration.pod.uid)).size;
}

export function podRef(pod: V1Pod): PodRef {
  return { namespace: pod.metadata?.namespace ?? '', name: pod.metadata?.name ?? '', uid: pod.metadata?.uid ?? '' };
}

/** Succeeded and Failed pods never run again; they register nothing and miss nothing. */
export function desiredService(namespace: string, owner?: V1OwnerReference): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: SERVICE_NAME, namespace, labels: { [MANAGED_BY_LABEL]: MANAGER }, ...(owner === undefined ? {} : { ownerReferences: [owner] }) },
    spec: {
      // Headless: DNS answers with the pods themselves, which is what dnssrv+ discovery wants.
      clusterIP: 'None',
      selector: { [INJECTED_LABEL]: 'true' },
      // Named target ports follow the sidecar's own ports (named grpc and http by the injector),
      // whatever numbers the injector's configuration gave them.
      ports: [
        { name: 'grpc', port: GRPC_PORT, targetPort: 'grpc', protocol: 'TCP' },
        { name: 'http', port: HTTP_PORT, targetPort: 'http', protocol: 'TCP' },
      ],
    },
  };
}

const portKey = (port: V1ServicePort) => `${port.name ?? ''}/${port.port}/${String(port.targetPort ?? port.port)}/${port.protocol ?? 'TCP'}`;

function sameSpec(existing: V1Service, desired: V1Service): boolean {
  const selector = existing.spec?.selector ?? {};
  const wanted = desired.spec?.selector ?? {};
  const sameSelector = Object.keys(selector).length === Object.keys(wanted).length && Object.entries(wanted).every(([k, v]) => selector[k] === v);
  const ports = (existing.spec?.ports ?? []).map(portKey).sort().join(',');
  return sameSelector && ports === (desired.spec?.ports ?? []).map(portKey).sort().join(',');
}

export function isOurs(service: V1Service): boolean {
  return service.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGER;
}

function planService(namespace: string, existing: V1Service | undefined, injectedPods: number, owner: V1OwnerReference | undefined): ServiceAction | undefined {
  const desired = desiredService(namespace, owner);
  if (injectedPods === 0) {
    // Only our own Service goes; someone else's Service of that name is none of our business here.
    return existing !== undefined && isOurs(existing) ? { action: 'delete', namespace, uid: existing.metadata?.uid ?? '' } : undefined;
  }
  if (existing === undefined) return { action: 'create', namespace, service: desired };
  if (!isOurs(existing)) {
    return {
      action: 'conflict',
      namespace,
      message: `Service ${namespace}/${SERVICE_NAME} exists but is not labelled ${MANAGED_BY_LABEL}=${MANAGER}; left alone`,
    };
  }
  if (existing.spec?.clusterIP !== 'None') return { action: 'recreate', namespace, uid: existing.metadata?.uid ?? '', service: desired };
  const owned = owner === undefined || isOwnedBy(existing.metadata, owner);
  if (sameSpec(existing, desired) && owned) return { action: 'unchanged', namespace };
  const metadata = owned ? existing.metadata : { ...existing.metadata, ownerReferences: withOwner(existing.metadata, owner) };
  return {
    action: 'update',
    namespace,
    // Keeps resourceVersion (so a concurrent change fails instead of being overwritten) and the
    // fields the apiserver filled in; replaces only what we decide.
    service: { ...existing, metadata, spec: { ...existing.spec, selector: desired.spec?.selector, ports: desired.spec?.ports } },
  };
}

export function dnssrvAddress(namespace: string, clusterDomain: string): string {
  return `dnssrv+_grpc._tcp.${SERVICE_NAME}.${namespace}.svc.${clusterDomain}`;
}

/**
 * `<podIP>:<port>` with the sidecar's port named grpc, else another container's (a proxy in front of a
 * sidecar listening on 127.0.0.1), as the Service's named target port does; brackets around IPv6.
 */
export function podAddress(pod: V1Pod): string | undefined {
  const ip = pod.status?.podIP;
  if (!ip) return undefined;
  const containers = pod.spec ? allContainers(pod.spec) : [];
  const sidecar = containers.find((c) => c.name === SIDECAR_NAME);
  const grpcPort = (container: V1Container | undefined) => container?.ports?.find((p) => p.name === 'grpc')?.containerPort;
  const port = grpcPort(sidecar) ?? containers.map(grpcPort).find((p) => p !== undefined) ?? GRPC_PORT;
  return `${ip.includes(':') ? `[${ip}]` : ip}:${port}`;
}

const HEADER = '# Written by thanos-injector register: edits are overwritten.\n';

/** Thanos Query `--endpoint.sd-config-file` content. */
export function endpointsFile(addresses: readonly string[]): string {
  return HEADER + stringify({ endpoints: addresses.map((address) => ({ address, strict: false, group: false })) });
}

/** Thanos Query `--store.sd-files` content (Prometheus file_sd: a list of target groups). */
export function targetsFile(addresses: readonly string[]): string {
  return HEADER + stringify([{ targets: [...addresses] }]);
}

function planConfigMap(settings: RegisterSettings, existing: V1ConfigMap | undefined, addresses: string[], owner: V1OwnerReference | undefined): ConfigMapPlan {
  const data = { [ENDPOINTS_KEY]: endpointsFile(addresses), [TARGETS_KEY]: targetsFile(addresses) };
  const base = { namespace: settings.queryNamespace, name: settings.configMapName, addresses };
  if (existing === undefined) {
    return {
      ...base,
      action: 'create',
      configMap: {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: {
          name: settings.configMapName, namespace: settings.queryNamespace, labels: { [MANAGED_BY_LABEL]: MANAGER },
          ...(owner === undefined ? {} : { ownerReferences: [owner] }),
        },
        data,
      },
    };
  }
  // Only a ConfigMap labelled ours is owned (deleted with the install); one another tool manages is not.
  const adopt = owner !== undefined && existing.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGER && !isOwnedBy(existing.metadata, owner);
  const unchanged = existing.data?.[ENDPOINTS_KEY] === data[ENDPOINTS_KEY] && existing.data?.[TARGETS_KEY] === data[TARGETS_KEY];
  if (unchanged && !adopt) return { ...base, action: 'unchanged', configMap: existing };
  // Other keys are someone else's (static endpoints, say) and stay; a managed-by label set by
  // another tool (Helm, Argo CD) is not taken over.
  const labels = { [MANAGED_BY_LABEL]: MANAGER, ...existing.metadata?.labels };
  const ownerReferences = adopt ? { ownerReferences: withOwner(existing.metadata, owner) } : {};
  return { ...base, action: 'update', configMap: { ...existing, metadata: { ...existing.metadata, labels, ...ownerReferences }, data: { ...existing.data, ...data } } };
}

function planMissing(state: ClusterState, settings: RegisterSettings): MissingSidecar[] {
  const namespaceLabels = new Map(state.labelledNamespaces.map((ns) => [ns.metadata?.name ?? '', ns.metadata?.labels]));
  const seen = new Set<string>();
  const candidates: V1Pod[] = [];
  for (const pod of state.selectablePods) {
    const { uid } = podRef(pod);
    if (seen.has(uid)) continue;
    seen.add(uid);
    const namespace = pod.metadata?.namespace ?? '';
    if (isTerminal(pod) || isDeleting(pod) || !optedIn(namespaceLabels.get(namespace), pod.metadata?.labels)) continue;
    if (decide(pod, namespace, settings.injection).verdict === 'inject') candidates.push(pod);
  }
  candidates.sort((a, b) => compareRefs(podRef(a), podRef(b)));
  // One pod per controller per run: restarting every replica of a workload at once would take it
  // down entirely; the next run (or the watch, when the replacement appears) takes the next one.
  const restartedOwners = new Set<string>();
  return candidates.map((pod): MissingSidecar => {
    const controller = pod.metadata?.ownerReferences?.find((o) => o.controller === true);
    const owner = controller ? `${controller.kind}/${controller.name}` : undefined;
    const base = { pod: podRef(pod), owner };
    if (controller === undefined) return { ...base, restart: false, note: 'bare pod: never deleted; recreate it to inject' };
    if (!settings.restartUninjected) return { ...base, restart: false, note: 'not restarted (use --restart-uninjected)' };
    if (restartedOwners.has(controller.uid)) return { ...base, restart: false, note: `waiting: another pod of ${owner} is restarted first` };
    restartedOwners.add(controller.uid);
    return { ...base, restart: true, note: `deleted so that ${owner} recreates it injected` };
  });
}

function compareRefs(a: PodRef, b: PodRef): number {
  return a.namespace === b.namespace ? (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) : a.namespace < b.namespace ? -1 : 1;
}

export function plan(state: ClusterState, settings: RegisterSettings): Plan {
  // Terminating pods still hold the Service (a rolling update passes through them); finished pods do not.
  const live = state.injectedPods.filter((pod) => !isTerminal(pod));
  const byNamespace = new Map<string, V1Pod[]>();
  for (const pod of live) {
    const namespace = pod.metadata?.namespace ?? '';
    byNamespace.set(namespace, [...(byNamespace.get(namespace) ?? []), pod]);
  }
  const services = new Map(
    state.services.filter((s) => s.metadata?.name === SERVICE_NAME).map((s) => [s.metadata?.namespace ?? '', s]),
  );
  const namespaces = [...new Set([...byNamespace.keys(), ...services.keys()])].sort();

  const rows: NamespaceRow[] = [];
  const actions: ServiceAction[] = [];
  const addresses = new Set<string>();
  const registrations: Registration[] = [];
  for (const namespace of namespaces) {
    const pods = (byNamespace.get(namespace) ?? []).slice().sort((a, b) => compareRefs(podRef(a), podRef(b)));
    const action = planService(namespace, services.get(namespace), pods.length, state.owner);
    if (action === undefined) continue;
    actions.push(action);
    let endpoints = 0;
    const registrable = pods.filter((pod) => !isDeleting(pod));
    if (settings.endpoints === 'dnssrv') {
      // Without our Service the SRV name would resolve to someone else's pods, or to nothing.
      if (pods.length > 0 && action.action !== 'conflict') {
        const address = dnssrvAddress(namespace, settings.clusterDomain);
        addresses.add(address);
        endpoints = 1;
        for (const pod of registrable) registrations.push({ pod: podRef(pod), address, viaService: true });
      }
    } else {
      for (const pod of registrable) {
        const address = isReady(pod) ? podAddress(pod) : undefined;
        if (address === undefined) continue;
        addresses.add(address);
        endpoints += 1;
        registrations.push({ pod: podRef(pod), address, viaService: false });
      }
    }
    rows.push({ namespace, injectedPods: pods.length, service: action.action, endpoints });
  }
  return {
    namespaces: rows,
    services: actions,
    configMap: planConfigMap(settings, state.configMap, [...addresses].sort(), state.owner),
    registrations,
    missing: planMissing(state, settings),
    problems: sidecarProblems(
      live.filter((pod) => !isDeleting(pod)).map((pod) => ({ ref: podRef(pod), pod, ready: isReady(pod) })),
      state.prometheusConfigMaps,
      state.uploads,
      state.readAt,
      (pod) => sidecarDrift(pod, {
        config: settings.injection,
        namespace: pod.metadata?.namespace ?? '',
        kubernetesVersion: state.kubernetesVersion ?? settings.injection.kubernetesVersion,
      }),
    ),
  };
}
