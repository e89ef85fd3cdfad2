// The core/v1 defaults kube-apiserver applies to a Pod, limited to the fields a
// sidecar injector touches. After a mutating webhook's patch is applied the
// apiserver decodes the result and runs these defaulters again
// (dispatcher.go: o.GetObjectDefaulter().Default(newVersionedObject)), so the
// object that is validated and stored carries them.
//
// Source: pkg/apis/core/v1/defaults.go (SetDefaults_Pod, SetDefaults_PodSpec,
// SetDefaults_Container, SetDefaults_Probe, SetDefaults_HTTPGetAction,
// SetDefaults_Volume, SetDefaults_SecretVolumeSource, ...).
// Not modelled: the ephemeral-container, hostProcess/Windows and pod-level
// resources defaults, and anything outside metadata/spec.

import { isRecord, jsonClone } from './json.ts';
import type { JsonRecord } from './json.ts';

/** SetDefaults_Volume and friends: 0644 for projected files. */
const DEFAULT_FILE_MODE = 420;

/**
 * The tag pkg/util/parsers.ParseImageName reports for an image reference:
 * the explicit tag, or "latest" when there is neither a tag nor a digest, or
 * "" when the reference does not parse (or has a digest and no tag).
 */
export function imageTag(image: string): string {
  // docker/distribution reference grammar (simplified, enough for pull policy).
  const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
  const domain = `${domainComponent}(?:\\.${domainComponent})*(?::[0-9]+)?`;
  const pathComponent = '[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*';
  const name = `(?:${domain}/)?${pathComponent}(?:/${pathComponent})*`;
  const tag = '[\\w][\\w.-]{0,127}';
  const digest = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,}';
  const re = new RegExp(`^(${name})(?::(${tag}))?(?:@(${digest}))?$`);
  const m = re.exec(image);
  if (!m) return ''; // parse error: the defaulter ignores it (IfNotPresent)
  const t = m[2] ?? '';
  const d = m[3] ?? '';
  if (t === '' && d === '') return 'latest';
  return t;
}

/**
 * SetDefaults_Container: imagePullPolicy is Always when the tag is `latest`
 * (an untagged, undigested image counts as `latest`), else IfNotPresent.
 */
export function defaultPullPolicy(image: string): 'Always' | 'IfNotPresent' {
  return imageTag(image) === 'latest' ? 'Always' : 'IfNotPresent';
}

/** Go defaulters treat a nil pointer, a nil value and an empty string as unset. */
function setIfAbsent(obj: JsonRecord, key: string, value: unknown): void {
  if (obj[key] === undefined || obj[key] === null || obj[key] === '') obj[key] = value;
}

/** For non-pointer int32 fields, the Go defaulter also treats 0 as unset. */
function setIfZero(obj: JsonRecord, key: string, value: number): void {
  if (obj[key] === undefined || obj[key] === null || obj[key] === 0) obj[key] = value;
}

/** SetDefaults_HTTPGetAction: path "/" and scheme HTTP. */
function defaultHandler(handler: unknown): void {
  if (!isRecord(handler)) return;
  const httpGet = handler.httpGet;
  if (isRecord(httpGet)) {
    setIfAbsent(httpGet, 'path', '/');
    setIfAbsent(httpGet, 'scheme', 'HTTP');
  }
}

/** SetDefaults_Probe: timeout 1s, period 10s, success 1, failure 3. */
function defaultProbe(probe: unknown): void {
  if (!isRecord(probe)) return;
  setIfZero(probe, 'timeoutSeconds', 1);
  setIfZero(probe, 'periodSeconds', 10);
  setIfZero(probe, 'successThreshold', 1);
  setIfZero(probe, 'failureThreshold', 3);
  defaultHandler(probe);
}

function defaultContainer(container: unknown, hostNetwork: boolean): void {
  if (!isRecord(container)) return;
  // SetDefaults_Container
  if (typeof container.image === 'string') {
    setIfAbsent(container, 'imagePullPolicy', defaultPullPolicy(container.image));
  } else {
    setIfAbsent(container, 'imagePullPolicy', 'IfNotPresent');
  }
  setIfAbsent(container, 'terminationMessagePath', '/dev/termination-log');
  setIfAbsent(container, 'terminationMessagePolicy', 'File');

  // SetDefaults_ContainerPort: protocol TCP. SetDefaults_Pod: with hostNetwork
  // the hostPort defaults to the containerPort.
  if (Array.isArray(container.ports)) {
    for (const port of container.ports) {
      if (!isRecord(port)) continue;
      setIfAbsent(port, 'protocol', 'TCP');
      if (hostNetwork && (port.hostPort === undefined || port.hostPort === 0)) {
        port.hostPort = port.containerPort;
      }
    }
  }

  // SetDefaults_ObjectFieldSelector: fieldRef.apiVersion "v1".
  if (Array.isArray(container.env)) {
    for (const env of container.env) {
      if (!isRecord(env) || !isRecord(env.valueFrom)) continue;
      const fieldRef = env.valueFrom.fieldRef;
      if (isRecord(fieldRef)) setIfAbsent(fieldRef, 'apiVersion', 'v1');
    }
  }

  defaultProbe(container.livenessProbe);
  defaultProbe(container.readinessProbe);
  defaultProbe(container.startupProbe);
  if (isRecord(container.lifecycle)) {
    defaultHandler(container.lifecycle.postStart);
    defaultHandler(container.lifecycle.preStop);
  }

  // SetDefaults_Pod: for every resource with a limit and no request, the
  // request defaults to the limit (per resource name).
  const resources = container.resources;
  if (isRecord(resources) && isRecord(resources.limits)) {
    const limits = resources.limits;
    if (Object.keys(limits).length > 0) {
      const requests: JsonRecord = isRecord(resources.requests) ? resources.requests : {};
      for (const [name, value] of Object.entries(limits)) {
        if (requests[name] === undefined) requests[name] = value;
      }
      resources.requests = requests;
    }
  }
}

/** Volume source members that v1 defaults (SetDefaults_*VolumeSource). */
function defaultVolume(volume: unknown): void {
  if (!isRecord(volume)) return;
  // SetDefaults_Volume: a volume with no source at all becomes an emptyDir.
  const sources = Object.keys(volume).filter((k) => k !== 'name' && volume[k] !== undefined && volume[k] !== null);
  if (sources.length === 0) volume.emptyDir = {};

  if (isRecord(volume.secret)) setIfAbsent(volume.secret, 'defaultMode', DEFAULT_FILE_MODE);
  if (isRecord(volume.configMap)) setIfAbsent(volume.configMap, 'defaultMode', DEFAULT_FILE_MODE);
  if (isRecord(volume.downwardAPI)) {
    setIfAbsent(volume.downwardAPI, 'defaultMode', DEFAULT_FILE_MODE);
    defaultDownwardItems(volume.downwardAPI.items);
  }
  if (isRecord(volume.projected)) {
    setIfAbsent(volume.projected, 'defaultMode', DEFAULT_FILE_MODE);
    if (Array.isArray(volume.projected.sources)) {
      for (const src of volume.projected.sources) {
        if (!isRecord(src)) continue;
        // SetDefaults_ServiceAccountTokenProjection: expirationSeconds 3600.
        if (isRecord(src.serviceAccountToken)) setIfAbsent(src.serviceAccountToken, 'expirationSeconds', 3600);
        if (isRecord(src.downwardAPI)) defaultDownwardItems(src.downwardAPI.items);
      }
    }
  }
  // SetDefaults_HostPathVolumeSource: type "" (HostPathUnset).
  if (isRecord(volume.hostPath)) setIfAbsent(volume.hostPath, 'type', '');
}

function defaultDownwardItems(items: unknown): void {
  if (!Array.isArray(items)) return;
  for (const item of items) {
    if (isRecord(item) && isRecord(item.fieldRef)) setIfAbsent(item.fieldRef, 'apiVersion', 'v1');
  }
}

/**
 * Return a deep copy of `pod` (a Pod or a pod template: `{metadata, spec}`)
 * with the v1 defaults applied. The input is not modified. Values that are
 * not objects where a Pod has objects are left alone (validation reports them).
 */
export function applyPodDefaults<T>(pod: T): T {
  const out = jsonClone(pod);
  if (!isRecord(out)) return out;
  const spec = out.spec;
  if (!isRecord(spec)) return out;

  // SetDefaults_PodSpec
  setIfAbsent(spec, 'restartPolicy', 'Always');
  setIfAbsent(spec, 'dnsPolicy', 'ClusterFirst');
  setIfAbsent(spec, 'schedulerName', 'default-scheduler');
  if (spec.securityContext === undefined || spec.securityContext === null) spec.securityContext = {};
  if (spec.terminationGracePeriodSeconds === undefined || spec.terminationGracePeriodSeconds === null) {
    spec.terminationGracePeriodSeconds = 30;
  }
  // SetDefaults_Pod
  if (spec.enableServiceLinks === undefined || spec.enableServiceLinks === null) spec.enableServiceLinks = true;

  const hostNetwork = spec.hostNetwork === true;
  for (const list of ['initContainers', 'containers'] as const) {
    const containers = spec[list];
    if (Array.isArray(containers)) for (const c of containers) defaultContainer(c, hostNetwork);
  }
  if (Array.isArray(spec.volumes)) for (const v of spec.volumes) defaultVolume(v);
  return out;
}
