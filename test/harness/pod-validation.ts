// The parts of kube-apiserver's Pod create validation (ValidatePodCreate in
// pkg/apis/core/validation/validation.go, helpers from
// k8s.io/apimachinery/pkg/util/validation) that a sidecar injector can break.
// This is a model, not a port: rules outside the injector's reach
// (scheduling, topology, DNS config, ...) are not checked.
//
// It runs on the object AFTER the webhook patch and the v1 defaults
// (see pod-defaults.ts), as the apiserver does. It also does the type checks
// that the apiserver's JSON decoder would do for the fields it looks at (a
// patch that sets e.g. `containerPort: "8080"` makes the object undecodable).
//
// Error strings follow the field.Error format: `<path>: <type>: <detail>`.

import { isRecord } from './json.ts';
import type { JsonRecord } from './json.ts';
import { compareQuantities, parseQuantity } from './quantity.ts';
import type { Quantity } from './quantity.ts';

export interface ValidatePodOptions {
  /**
   * Names of a StatefulSet's volumeClaimTemplates: when validating a
   * StatefulSet pod template, volumeMounts may refer to these as well as to
   * spec.volumes (the StatefulSet controller adds the PVC volumes).
   */
  volumeClaimTemplateNames?: string[];
}

// ---- name rules (k8s.io/apimachinery/pkg/util/validation) ----

const DNS1123_LABEL_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME_PART_RE = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE_RE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** IsDNS1123Label: <= 63 chars, `[a-z0-9]([-a-z0-9]*[a-z0-9])?`. */
export function dns1123LabelErrors(value: string): string[] {
  const errs: string[] = [];
  if (value.length > 63) errs.push('must be no more than 63 characters');
  if (!DNS1123_LABEL_RE.test(value)) {
    errs.push(
      "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (regex '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
    );
  }
  return errs;
}

/** IsDNS1123Subdomain: <= 253 chars, dot-separated labels. */
export function dns1123SubdomainErrors(value: string): string[] {
  const errs: string[] = [];
  if (value.length > 253) errs.push('must be no more than 253 characters');
  if (!DNS1123_SUBDOMAIN_RE.test(value)) {
    errs.push("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character");
  }
  return errs;
}

/**
 * IsQualifiedName: an optional DNS-1123 subdomain prefix (<= 253) and `/`,
 * then a name of <= 63 chars matching `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`.
 */
export function qualifiedNameErrors(value: string): string[] {
  const parts = value.split('/');
  let name: string;
  const errs: string[] = [];
  if (parts.length === 1) {
    name = parts[0] as string;
  } else if (parts.length === 2) {
    const prefix = parts[0] as string;
    name = parts[1] as string;
    if (prefix.length === 0) errs.push('prefix part must be non-empty');
    else errs.push(...dns1123SubdomainErrors(prefix).map((e) => `prefix part ${e}`));
  } else {
    return ["a qualified name must consist of alphanumeric characters, '-', '_' or '.', with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"];
  }
  if (name.length === 0) errs.push('name part must be non-empty');
  else if (name.length > 63) errs.push('name part must be no more than 63 characters');
  if (name.length > 0 && !QUALIFIED_NAME_PART_RE.test(name)) {
    errs.push("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (regex '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')");
  }
  return errs;
}

/** IsValidLabelValue: empty, or <= 63 chars of the qualified-name charset. */
export function labelValueErrors(value: string): string[] {
  const errs: string[] = [];
  if (value.length > 63) errs.push('must be no more than 63 characters');
  if (!LABEL_VALUE_RE.test(value)) {
    errs.push("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character");
  }
  return errs;
}

/** IsValidPortName (IANA_SVC_NAME): <= 15 chars, [-a-z0-9], >= 1 letter, no `--`, no leading/trailing `-`. */
export function portNameErrors(value: string): string[] {
  const errs: string[] = [];
  if (value.length > 15) errs.push('must be no more than 15 characters');
  if (!/^[-a-z0-9]+$/.test(value)) errs.push('must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)');
  if (!/[a-z]/.test(value)) errs.push('must contain at least one letter (a-z)');
  if (value.includes('--')) errs.push('must not contain consecutive hyphens');
  if (value.startsWith('-') || value.endsWith('-')) errs.push('must not begin or end with a hyphen');
  return errs;
}

/** ValidateAnnotations: TotalAnnotationSizeLimitB = 256 KiB over keys + values. */
export const TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024;

const MAX_ID = 2147483647; // math.MaxInt32: IsValidUserID / IsValidGroupID

// ---- error collector ----

class Errors {
  readonly list: string[] = [];
  required(path: string, detail = ''): void {
    this.list.push(`${path}: Required value${detail ? `: ${detail}` : ''}`);
  }
  invalid(path: string, value: unknown, detail: string): void {
    this.list.push(`${path}: Invalid value: ${JSON.stringify(value)}: ${detail}`);
  }
  duplicate(path: string, value: unknown): void {
    this.list.push(`${path}: Duplicate value: ${JSON.stringify(value)}`);
  }
  unsupported(path: string, value: unknown, supported: readonly string[]): void {
    this.list.push(`${path}: Unsupported value: ${JSON.stringify(value)}: supported values: ${supported.map((s) => `"${s}"`).join(', ')}`);
  }
  forbidden(path: string, detail: string): void {
    this.list.push(`${path}: Forbidden: ${detail}`);
  }
  tooLong(path: string, max: number): void {
    this.list.push(`${path}: Too long: must have at most ${max} bytes`);
  }
  /** The apiserver's decoder would reject this value's JSON type. */
  type(path: string, value: unknown, expected: string): void {
    this.list.push(`${path}: Invalid value: ${JSON.stringify(value)}: must be ${expected} (the object would not decode as a Pod)`);
  }
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const present = (v: unknown): boolean => v !== undefined && v !== null;

function checkString(errs: Errors, path: string, v: unknown): v is string {
  if (typeof v === 'string') return true;
  if (present(v)) errs.type(path, v, 'a string');
  return false;
}

function checkArray(errs: Errors, path: string, v: unknown): unknown[] {
  if (Array.isArray(v)) return v;
  if (present(v)) errs.type(path, v, 'an array');
  return [];
}

function checkObject(errs: Errors, path: string, v: unknown): JsonRecord | undefined {
  if (isRecord(v)) return v;
  if (present(v)) errs.type(path, v, 'an object');
  return undefined;
}

/**
 * DEFAULTED fields (imagePullPolicy, terminationMessagePolicy, port protocol,
 * restartPolicy): the apiserver validates them after the v1 defaults, so they
 * are never empty there. Here an absent value is accepted (it would be
 * defaulted) and a present one must be supported.
 */
function checkEnum(errs: Errors, path: string, v: unknown, supported: readonly string[]): void {
  if (!present(v) || v === '') return;
  if (!supported.includes(v as string)) errs.unsupported(path, v, supported);
}

function checkId(errs: Errors, path: string, v: unknown, kind: 'user' | 'group'): void {
  if (!present(v)) return;
  if (!isInt(v)) return errs.type(path, v, 'an integer');
  if (v < 0 || v > MAX_ID) errs.invalid(path, v, `must be between 0 and ${MAX_ID}, inclusive (a valid ${kind} ID)`);
}

function checkPortNumber(errs: Errors, path: string, v: unknown, required: boolean): void {
  if (!present(v) || v === 0) {
    if (required) errs.required(path);
    return;
  }
  if (!isInt(v)) return errs.type(path, v, 'an integer');
  if (v < 1 || v > 65535) errs.invalid(path, v, 'must be between 1 and 65535, inclusive');
}

// ---- metadata ----

function validateMetadata(errs: Errors, meta: unknown): void {
  const m = checkObject(errs, 'metadata', meta);
  if (!m) return;

  // ValidateAnnotations: keys are qualified names (checked lower-cased), the
  // total size of keys + values is at most 256 KiB.
  const annotations = checkObject(errs, 'metadata.annotations', m.annotations);
  if (annotations) {
    let total = 0;
    for (const [k, v] of Object.entries(annotations)) {
      const path = `metadata.annotations[${JSON.stringify(k)}]`;
      for (const e of qualifiedNameErrors(k.toLowerCase())) errs.invalid('metadata.annotations', k, e);
      if (typeof v !== 'string') {
        errs.type(path, v, 'a string');
        continue;
      }
      total += Buffer.byteLength(k) + Buffer.byteLength(v);
    }
    if (total > TOTAL_ANNOTATION_SIZE_LIMIT) errs.tooLong('metadata.annotations', TOTAL_ANNOTATION_SIZE_LIMIT);
  }

  // ValidateLabels: keys are qualified names, values valid label values.
  const labels = checkObject(errs, 'metadata.labels', m.labels);
  if (labels) {
    for (const [k, v] of Object.entries(labels)) {
      for (const e of qualifiedNameErrors(k)) errs.invalid('metadata.labels', k, e);
      if (typeof v !== 'string') {
        errs.type(`metadata.labels[${JSON.stringify(k)}]`, v, 'a string');
        continue;
      }
      for (const e of labelValueErrors(v)) errs.invalid(`metadata.labels[${JSON.stringify(k)}]`, v, e);
    }
  }
}

// ---- volumes ----

const VOLUME_SOURCE_NAME_KEYS: Record<string, string> = { secret: 'secretName', configMap: 'name' };

function validateVolumes(errs: Errors, volumes: unknown[]): Set<string> {
  const names = new Set<string>();
  volumes.forEach((raw, i) => {
    const path = `spec.volumes[${i}]`;
    const vol = checkObject(errs, path, raw);
    if (!vol) return;
    // ValidateVolumes: name required, DNS-1123 label, unique.
    if (checkString(errs, `${path}.name`, vol.name) && vol.name !== '') {
      for (const e of dns1123LabelErrors(vol.name)) errs.invalid(`${path}.name`, vol.name, e);
      if (names.has(vol.name)) errs.duplicate(`${path}.name`, vol.name);
      names.add(vol.name);
    } else if (!present(vol.name) || vol.name === '') {
      errs.required(`${path}.name`);
    }
    // validateVolumeSource: exactly one volume type.
    const sources = Object.keys(vol).filter((k) => k !== 'name' && present(vol[k]));
    if (sources.length === 0) errs.required(path, 'must specify a volume type');
    if (sources.length > 1) errs.forbidden(`${path}.${sources[1] ?? ''}`, 'may not specify more than 1 volume type');
    for (const src of sources) {
      const body = checkObject(errs, `${path}.${src}`, vol[src]);
      if (!body) continue;
      const nameKey = VOLUME_SOURCE_NAME_KEYS[src];
      if (nameKey !== undefined && (typeof body[nameKey] !== 'string' || body[nameKey] === '')) {
        errs.required(`${path}.${src}.${nameKey}`);
      }
      // validateVolumeSource: defaultMode is a file mode 0..0777.
      if (present(body.defaultMode)) {
        if (!isInt(body.defaultMode)) errs.type(`${path}.${src}.defaultMode`, body.defaultMode, 'an integer');
        else if (body.defaultMode < 0 || body.defaultMode > 0o777) {
          errs.invalid(`${path}.${src}.defaultMode`, body.defaultMode, 'must be a number between 0 and 0777 (octal), both inclusive');
        }
      }
      if (src === 'emptyDir' && present(body.sizeLimit) && parseQuantity(body.sizeLimit) === undefined) {
        errs.invalid(`${path}.emptyDir.sizeLimit`, body.sizeLimit, 'must be a valid quantity');
      }
    }
  });
  return names;
}

// ---- containers ----

const PROTOCOLS = ['TCP', 'UDP', 'SCTP'] as const;
const PULL_POLICIES = ['Always', 'IfNotPresent', 'Never'] as const;
const TERMINATION_MESSAGE_POLICIES = ['File', 'FallbackToLogsOnError'] as const;
const ENV_SOURCES = ['fieldRef', 'resourceFieldRef', 'configMapKeyRef', 'secretKeyRef', 'fileKeyRef'] as const;
const PROBE_HANDLERS = ['exec', 'httpGet', 'tcpSocket', 'grpc'] as const;

interface ContainerContext {
  path: string;
  isInit: boolean;
  volumeNames: Set<string>;
}

function validatePorts(errs: Errors, path: string, portsRaw: unknown): void {
  const ports = checkArray(errs, `${path}.ports`, portsRaw);
  const names = new Set<string>();
  ports.forEach((raw, i) => {
    const p = `${path}.ports[${i}]`;
    const port = checkObject(errs, p, raw);
    if (!port) return;
    // validateContainerPorts: optional IANA_SVC_NAME, unique within the container.
    if (checkString(errs, `${p}.name`, port.name) && port.name !== '') {
      for (const e of portNameErrors(port.name)) errs.invalid(`${p}.name`, port.name, e);
      if (names.has(port.name)) errs.duplicate(`${p}.name`, port.name);
      names.add(port.name);
    }
    checkPortNumber(errs, `${p}.containerPort`, port.containerPort, true);
    checkPortNumber(errs, `${p}.hostPort`, port.hostPort, false);
    checkEnum(errs, `${p}.protocol`, port.protocol, PROTOCOLS);
  });
}

function validateEnv(errs: Errors, path: string, envRaw: unknown): void {
  const env = checkArray(errs, `${path}.env`, envRaw);
  env.forEach((raw, i) => {
    const p = `${path}.env[${i}]`;
    const ev = checkObject(errs, p, raw);
    if (!ev) return;
    // ValidateEnv: name required; RelaxedEnvironmentVariableValidation (GA 1.34):
    // any printable ASCII except '='.
    if (!checkString(errs, `${p}.name`, ev.name) || ev.name === '') {
      if (!present(ev.name) || ev.name === '') errs.required(`${p}.name`);
    } else if (!/^[\x20-\x3c\x3e-\x7e]+$/.test(ev.name)) {
      errs.invalid(`${p}.name`, ev.name, "a valid environment variable name must consist only of printable ASCII characters other than '='");
    }
    checkString(errs, `${p}.value`, ev.value);
    // validateEnvVarValueFrom: valueFrom excludes a non-empty value; exactly one source.
    const from = checkObject(errs, `${p}.valueFrom`, ev.valueFrom);
    if (from) {
      if (typeof ev.value === 'string' && ev.value !== '') {
        errs.invalid(`${p}.valueFrom`, '', 'may not be specified when `value` is not empty');
      }
      const sources = ENV_SOURCES.filter((k) => present(from[k]));
      if (sources.length === 0) errs.invalid(`${p}.valueFrom`, '', 'must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`');
      if (sources.length > 1) errs.invalid(`${p}.valueFrom`, '', 'may not have more than one field specified at a time');
      const fieldRef = isRecord(from.fieldRef) ? from.fieldRef : undefined;
      if (fieldRef && (typeof fieldRef.fieldPath !== 'string' || fieldRef.fieldPath === '')) {
        errs.required(`${p}.valueFrom.fieldRef.fieldPath`);
      }
    }
  });
}

/** validateLocalDescendingPath: relative, no `..` element. */
function subPathErrors(value: string): string[] {
  const errs: string[] = [];
  if (value.startsWith('/')) errs.push('must be a relative path');
  if (value.split('/').includes('..')) errs.push("must not contain '..'");
  return errs;
}

function validateVolumeMounts(errs: Errors, ctx: ContainerContext, mountsRaw: unknown): void {
  const path = ctx.path;
  const mounts = checkArray(errs, `${path}.volumeMounts`, mountsRaw);
  const mountPaths = new Set<string>();
  mounts.forEach((raw, i) => {
    const p = `${path}.volumeMounts[${i}]`;
    const m = checkObject(errs, p, raw);
    if (!m) return;
    // ValidateVolumeMounts: name must be a pod volume (or, for a StatefulSet
    // template, a volumeClaimTemplate).
    if (!checkString(errs, `${p}.name`, m.name) || m.name === '') {
      if (!present(m.name) || m.name === '') errs.required(`${p}.name`);
    } else if (!ctx.volumeNames.has(m.name)) {
      errs.list.push(`${p}.name: Not found: ${JSON.stringify(m.name)}`);
    }
    // mountPath required and unique within the container.
    if (!checkString(errs, `${p}.mountPath`, m.mountPath) || m.mountPath === '') {
      if (!present(m.mountPath) || m.mountPath === '') errs.required(`${p}.mountPath`);
    } else {
      if (mountPaths.has(m.mountPath)) errs.invalid(`${p}.mountPath`, m.mountPath, 'must be unique');
      mountPaths.add(m.mountPath);
    }
    if (checkString(errs, `${p}.subPath`, m.subPath) && m.subPath !== '') {
      for (const e of subPathErrors(m.subPath)) errs.invalid(`${p}.subPath`, m.subPath, e);
    }
    if (checkString(errs, `${p}.subPathExpr`, m.subPathExpr) && m.subPathExpr !== '') {
      if (typeof m.subPath === 'string' && m.subPath !== '') {
        errs.invalid(`${p}.subPathExpr`, m.subPathExpr, 'subPathExpr and subPath are mutually exclusive');
      }
      for (const e of subPathErrors(m.subPathExpr)) errs.invalid(`${p}.subPathExpr`, m.subPathExpr, e);
    }
    if (present(m.readOnly) && typeof m.readOnly !== 'boolean') errs.type(`${p}.readOnly`, m.readOnly, 'a boolean');
  });
}

function validateResources(errs: Errors, path: string, resourcesRaw: unknown): void {
  const res = checkObject(errs, `${path}.resources`, resourcesRaw);
  if (!res) return;
  const parsed = (field: 'limits' | 'requests'): Map<string, Quantity> => {
    const out = new Map<string, Quantity>();
    const list = checkObject(errs, `${path}.resources.${field}`, res[field]);
    if (!list) return out;
    for (const [name, value] of Object.entries(list)) {
      const p = `${path}.resources.${field}[${name}]`;
      const q = parseQuantity(value);
      if (!q) {
        errs.invalid(p, value, "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'");
        continue;
      }
      if (q.num < 0n) errs.invalid(p, value, 'must be greater than or equal to 0');
      out.set(name, q);
    }
    return out;
  };
  const limits = parsed('limits');
  const requests = parsed('requests');
  // ValidateResourceRequirements: a request may not exceed its limit.
  for (const [name, request] of requests) {
    const limit = limits.get(name);
    if (limit && compareQuantities(request, limit) > 0) {
      const lim = (res.limits as JsonRecord)[name];
      errs.invalid(`${path}.resources.requests[${name}]`, (res.requests as JsonRecord)[name], `must be less than or equal to ${name} limit of ${String(lim)}`);
    }
  }
}

function validateContainerSecurityContext(errs: Errors, path: string, scRaw: unknown): void {
  const sc = checkObject(errs, `${path}.securityContext`, scRaw);
  if (!sc) return;
  const p = `${path}.securityContext`;
  checkId(errs, `${p}.runAsUser`, sc.runAsUser, 'user');
  checkId(errs, `${p}.runAsGroup`, sc.runAsGroup, 'group');
  // ValidateSecurityContext: allowPrivilegeEscalation=false conflicts with
  // privileged=true and with adding CAP_SYS_ADMIN.
  if (sc.allowPrivilegeEscalation === false) {
    if (sc.privileged === true) {
      errs.invalid(p, sc, 'cannot set `allowPrivilegeEscalation` to false and `privileged` to true');
    }
    const caps = isRecord(sc.capabilities) && Array.isArray(sc.capabilities.add) ? sc.capabilities.add : [];
    if (caps.includes('CAP_SYS_ADMIN')) {
      errs.invalid(p, sc, 'cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN');
    }
  }
}

function validateProbe(errs: Errors, path: string, probeRaw: unknown, kind: 'liveness' | 'readiness' | 'startup'): void {
  const probe = checkObject(errs, path, probeRaw);
  if (!probe) return;
  // validateHandler: exactly one handler.
  const handlers = PROBE_HANDLERS.filter((h) => present(probe[h]));
  if (handlers.length === 0) errs.required(path, 'must specify a handler type');
  if (handlers.length > 1) errs.forbidden(`${path}.${handlers[1] ?? ''}`, 'may not specify more than 1 handler type');
  for (const f of ['initialDelaySeconds', 'timeoutSeconds', 'periodSeconds', 'successThreshold', 'failureThreshold'] as const) {
    const v = probe[f];
    if (!present(v)) continue;
    if (!isInt(v)) errs.type(`${path}.${f}`, v, 'an integer');
    else if (v < 0) errs.invalid(`${path}.${f}`, v, 'must be greater than or equal to 0');
  }
  // validateLivenessProbe / validateStartupProbe: successThreshold must be 1.
  if (kind !== 'readiness' && present(probe.successThreshold) && probe.successThreshold !== 1) {
    errs.invalid(`${path}.successThreshold`, probe.successThreshold, 'must be 1');
  }
  // validateReadinessProbe: no terminationGracePeriodSeconds.
  if (kind === 'readiness' && present(probe.terminationGracePeriodSeconds)) {
    errs.invalid(`${path}.terminationGracePeriodSeconds`, probe.terminationGracePeriodSeconds, 'must not be set for readinessProbes');
  }
  for (const h of ['httpGet', 'tcpSocket'] as const) {
    const handler = isRecord(probe[h]) ? probe[h] : undefined;
    if (!handler) continue;
    const port = handler.port;
    if (typeof port === 'string') {
      for (const e of portNameErrors(port)) errs.invalid(`${path}.${h}.port`, port, e);
    } else {
      checkPortNumber(errs, `${path}.${h}.port`, port, true);
    }
  }
}

function validateContainer(errs: Errors, ctx: ContainerContext, c: JsonRecord): void {
  const path = ctx.path;
  // Image required (and no surrounding whitespace: validateContainerOnlyForPod).
  if (!checkString(errs, `${path}.image`, c.image) || c.image === '') {
    if (!present(c.image) || c.image === '') errs.required(`${path}.image`);
  } else if (c.image !== c.image.trim()) {
    errs.invalid(`${path}.image`, c.image, 'must not have leading or trailing whitespace');
  }
  // Set by the v1 defaults when absent (see the note on DEFAULTED fields), so
  // only a value that is present is checked.
  checkEnum(errs, `${path}.imagePullPolicy`, c.imagePullPolicy, PULL_POLICIES);
  checkEnum(errs, `${path}.terminationMessagePolicy`, c.terminationMessagePolicy, TERMINATION_MESSAGE_POLICIES);
  checkArray(errs, `${path}.command`, c.command);
  checkArray(errs, `${path}.args`, c.args);
  for (const list of ['command', 'args'] as const) {
    const arr = c[list];
    if (Array.isArray(arr)) arr.forEach((v, i) => checkString(errs, `${path}.${list}[${i}]`, v));
  }

  validatePorts(errs, path, c.ports);
  validateEnv(errs, path, c.env);
  validateVolumeMounts(errs, ctx, c.volumeMounts);
  validateResources(errs, path, c.resources);
  validateContainerSecurityContext(errs, path, c.securityContext);

  // Native sidecars (KEP-753): an init container's restartPolicy, if set,
  // must be Always; regular containers may not set it.
  const restartPolicy = c.restartPolicy;
  const isSidecar = ctx.isInit && restartPolicy === 'Always';
  if (present(restartPolicy)) {
    if (!ctx.isInit) {
      errs.forbidden(`${path}.restartPolicy`, 'may not be set for non-init containers');
    } else if (restartPolicy !== 'Always') {
      errs.unsupported(`${path}.restartPolicy`, restartPolicy, ['Always']);
    }
  }
  // Plain init containers run to completion: no probes, no lifecycle hooks.
  if (ctx.isInit && !isSidecar) {
    for (const f of ['lifecycle', 'livenessProbe', 'readinessProbe', 'startupProbe'] as const) {
      if (present(c[f])) errs.forbidden(`${path}.${f}`, 'may not be set for init containers without restartPolicy=Always');
    }
  } else {
    validateProbe(errs, `${path}.livenessProbe`, c.livenessProbe, 'liveness');
    validateProbe(errs, `${path}.readinessProbe`, c.readinessProbe, 'readiness');
    validateProbe(errs, `${path}.startupProbe`, c.startupProbe, 'startup');
  }
}

// ---- pod ----

const RESTART_POLICIES = ['Always', 'OnFailure', 'Never'] as const;

/**
 * Validate a Pod (or a pod template `{metadata, spec}`) after the webhook's
 * patch and the v1 defaults. Returns human-readable errors; empty = valid.
 */
export function validatePod(pod: unknown, options: ValidatePodOptions = {}): string[] {
  const errs = new Errors();
  if (!isRecord(pod)) {
    errs.type('<root>', pod, 'an object');
    return errs.list;
  }
  validateMetadata(errs, pod.metadata);

  const spec = checkObject(errs, 'spec', pod.spec);
  if (!spec) {
    if (!present(pod.spec)) errs.required('spec');
    return errs.list;
  }

  const volumeNames = validateVolumes(errs, checkArray(errs, 'spec.volumes', spec.volumes));
  for (const name of options.volumeClaimTemplateNames ?? []) volumeNames.add(name);

  // Container names: DNS-1123 labels, unique across initContainers,
  // containers and ephemeralContainers.
  const containerNames = new Set<string>();
  const hostPorts = new Set<string>();
  const containers = checkArray(errs, 'spec.containers', spec.containers);
  if (containers.length === 0) errs.required('spec.containers');
  const lists: [string, unknown[], boolean][] = [
    ['spec.initContainers', checkArray(errs, 'spec.initContainers', spec.initContainers), true],
    ['spec.containers', containers, false],
  ];
  for (const [listPath, list, isInit] of lists) {
    list.forEach((raw, i) => {
      const path = `${listPath}[${i}]`;
      const c = checkObject(errs, path, raw);
      if (!c) return;
      if (!checkString(errs, `${path}.name`, c.name) || c.name === '') {
        if (!present(c.name) || c.name === '') errs.required(`${path}.name`);
      } else {
        for (const e of dns1123LabelErrors(c.name)) errs.invalid(`${path}.name`, c.name, e);
        if (containerNames.has(c.name)) errs.duplicate(`${path}.name`, c.name);
        containerNames.add(c.name);
      }
      validateContainer(errs, { path, isInit, volumeNames }, c);
      // checkHostPortConflicts (regular containers): protocol/hostIP/hostPort unique.
      if (!isInit && Array.isArray(c.ports)) {
        c.ports.forEach((p, j) => {
          if (!isRecord(p) || !isInt(p.hostPort) || p.hostPort === 0) return;
          const key = `${String(p.protocol)}/${typeof p.hostIP === 'string' ? p.hostIP : ''}/${p.hostPort}`;
          if (hostPorts.has(key)) errs.duplicate(`${path}.ports[${j}].hostPort`, key);
          hostPorts.add(key);
        });
      }
    });
  }

  checkEnum(errs, 'spec.restartPolicy', spec.restartPolicy, RESTART_POLICIES);
  if (present(spec.terminationGracePeriodSeconds)) {
    const v = spec.terminationGracePeriodSeconds;
    if (!isInt(v)) errs.type('spec.terminationGracePeriodSeconds', v, 'an integer');
    else if (v < 0) errs.invalid('spec.terminationGracePeriodSeconds', v, 'must be greater than or equal to 0');
  }

  // ValidatePodSecurityContext: IDs in 0..MaxInt32.
  const psc = checkObject(errs, 'spec.securityContext', spec.securityContext);
  if (psc) {
    checkId(errs, 'spec.securityContext.runAsUser', psc.runAsUser, 'user');
    checkId(errs, 'spec.securityContext.runAsGroup', psc.runAsGroup, 'group');
    checkId(errs, 'spec.securityContext.fsGroup', psc.fsGroup, 'group');
    checkArray(errs, 'spec.securityContext.supplementalGroups', psc.supplementalGroups).forEach((g, i) =>
      checkId(errs, `spec.securityContext.supplementalGroups[${i}]`, g, 'group'),
    );
  }
  return errs.list;
}
