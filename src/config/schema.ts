// The injector's configuration: one YAML file, every field optional. The schema is the single
// source of truth for field names, defaults and the accepted form quoted in error messages
// (each leaf's `description`), and for the chart's `injection` values (values.schema.json is
// generated from it: test/config/chart-schema.test.ts). Patterns stay within what both
// JavaScript and Go's RE2 (helm's schema check) accept: no lookaround.
import Type from 'typebox';
import { DURATION_PATTERN, QUANTITY_PATTERN } from '../units.ts';
import { EPHEMERAL_TSDB_ACTIONS } from '../inject/tsdb-volume.ts';

/** One number and unit: valid as a Go and as a Prometheus duration. */
const SIMPLE_DURATION = '^[0-9]+(ms|s|m|h)$';
const SIMPLE_DURATION_FORM = 'a duration such as 30s, 5m or 1h';
export const MIN_TIME_PATTERN = '^(-?[0-9]+(ms|s|m|h|d|w|y)|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2}))$';
export const MIN_TIME_FORM = 'a duration back from now such as -2h or -7d, or an RFC 3339 time such as 2026-01-01T00:00:00Z';

const SECRET_NAME = '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*';
/** A Kubernetes object name (DNS subdomain): Secrets, ConfigMaps. */
export const OBJECT_NAME_PATTERN = `^${SECRET_NAME}$`;
/** An absolute path as a container mounts it (no `:`, which the kubelet refuses in mount paths). */
export const ABSOLUTE_PATH_PATTERN = '^/[^:]*$';
/** A Secret's name; `optional`: empty means none. */
const secretName = (value: string, optional = false) =>
  Type.String({
    maxLength: 253,
    pattern: optional ? `^(${SECRET_NAME})?$` : OBJECT_NAME_PATTERN,
    default: value,
    description: `a Secret name (lowercase letters, digits, - and .)${optional ? ', or empty for none' : ''}`,
  });
const secretKey = (value: string) =>
  Type.String({ maxLength: 253, pattern: '^\\.?[-_a-zA-Z0-9][-._a-zA-Z0-9]*$', default: value, description: 'a Secret key (letters, digits, -, _ and ., not starting with ..)' });

const quantity = (value: string | undefined) =>
  Type.String({
    pattern: QUANTITY_PATTERN.source,
    description: 'a Kubernetes quantity such as 100m, 128Mi or 1Gi',
    ...(value === undefined ? {} : { default: value }),
  });
const userId = (value: number) =>
  Type.Integer({ minimum: 0, maximum: 2147483647, default: value, description: 'an integer from 0 to 2147483647' });
const absolutePath = (value: string) =>
  value === ''
    ? Type.String({ pattern: `^(${ABSOLUTE_PATH_PATTERN.slice(1, -1)})?$`, default: value, description: 'an absolute path, or empty for none' })
    : Type.String({ pattern: ABSOLUTE_PATH_PATTERN, default: value, description: 'an absolute path' });
const DNS_LABEL = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';
const objectName = (what: string) => Type.String({ maxLength: 253, pattern: OBJECT_NAME_PATTERN, description: `a ${what} name (lowercase letters, digits, - and .)` });
const keyRef = (what: string) =>
  Type.Object(
    { name: objectName(what), key: Type.String({ minLength: 1, description: `a key of the ${what}` }), optional: Type.Optional(Type.Boolean({ description: 'true or false' })) },
    { additionalProperties: false },
  );

/** A sidecar environment variable: a value, or one source (Kubernetes' EnvVar). */
const EnvVar = Type.Object(
  {
    name: Type.String({ pattern: '^[-._a-zA-Z][-._a-zA-Z0-9]*$', maxLength: 253, description: 'a variable name (letters, digits, _, - and ., not starting with a digit)' }),
    value: Type.Optional(Type.String({ description: 'a string' })),
    valueFrom: Type.Optional(
      Type.Object(
        {
          secretKeyRef: Type.Optional(keyRef('Secret')),
          configMapKeyRef: Type.Optional(keyRef('ConfigMap')),
          fieldRef: Type.Optional(Type.Object({ fieldPath: Type.String({ minLength: 1, description: 'a field path such as metadata.name' }), apiVersion: Type.Optional(Type.String()) }, { additionalProperties: false })),
          resourceFieldRef: Type.Optional(
            Type.Object(
              { resource: Type.String({ pattern: '^(limits|requests)\\.(cpu|memory|ephemeral-storage)$', description: 'limits.cpu, limits.memory, requests.cpu, requests.memory or ...ephemeral-storage' }), containerName: Type.Optional(Type.String()), divisor: Type.Optional(quantity(undefined)) },
              { additionalProperties: false },
            ),
          ),
        },
        { additionalProperties: false, minProperties: 1, maxProperties: 1, description: 'one of secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef' },
      ),
    ),
  },
  { additionalProperties: false },
);

/** The volume sources a pod's volume may have; their content is checked by the apiserver. */
export const VOLUME_SOURCES = ['configMap', 'secret', 'emptyDir', 'projected', 'csi', 'downwardAPI', 'persistentVolumeClaim', 'ephemeral', 'hostPath', 'image', 'nfs'] as const;
const Volume = Type.Object(
  {
    name: Type.String({ pattern: DNS_LABEL, maxLength: 63, description: 'a volume name (lowercase letters, digits and -)' }),
    ...Object.fromEntries(VOLUME_SOURCES.map((source) => [source, Type.Optional(Type.Object({}, { additionalProperties: true, description: `a Kubernetes ${source} volume source` }))])),
  },
  { additionalProperties: false, minProperties: 2, maxProperties: 2, description: `a name and one source: ${VOLUME_SOURCES.join(', ')}` },
);
const VolumeMount = Type.Object(
  {
    name: Type.String({ pattern: DNS_LABEL, maxLength: 63, description: 'the name of a volume of volumes or of the pod' }),
    mountPath: Type.String({ pattern: '^/[^:]*$', description: 'an absolute path' }),
    readOnly: Type.Optional(Type.Boolean({ description: 'true or false' })),
    subPath: Type.Optional(Type.String({ pattern: '^[^/]', description: 'a relative path' })),
    subPathExpr: Type.Optional(Type.String({ pattern: '^[^/]', description: 'a relative path with $(VAR)' })),
  },
  { additionalProperties: false },
);

/** The log levels of both Thanos and the injector itself. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;

const port = (value: number) =>
  Type.Integer({ minimum: 1, maximum: 65535, default: value, description: 'a port number from 1 to 65535' });

export const ConfigSchema = Type.Object(
  {
    image: Type.String({ minLength: 1, pattern: '^\\S+$', default: 'quay.io/thanos/thanos:v0.42.5', description: 'an image reference such as quay.io/thanos/thanos:v0.42.5' }),
    logLevel: Type.Enum([...LOG_LEVELS], { default: 'info', description: 'one of debug, info, warn, error' }),
    /** native: a restartable init container; container: a regular container; auto: native from Kubernetes 1.29. */
    sidecarMode: Type.Enum(['auto', 'native', 'container'], { default: 'auto', description: 'one of auto, native, container' }),
    /**
     * Which back ends inject: webhook (the webhook alone); policy (the MutatingAdmissionPolicy of
     * `thanos-injector policy` alone: the apiserver injects the common shapes itself, with no
     * webhook and no server to run, and leaves the other pods uninjected); both (the policy the
     * common shapes, the webhook the rest); auto (both where the cluster runs the policy,
     * Kubernetes >= 1.36.6, else webhook). The chart writes the mode it installed; `check` expects
     * the back ends it names.
     */
    mode: Type.Enum(['auto', 'webhook', 'policy', 'both'], { default: 'auto', description: 'one of auto, webhook, policy, both' }),
    /** Read by sidecarMode auto when the cluster's own version cannot be read, and by the offline CLI. */
    kubernetesVersion: Type.String({ pattern: '^v?[0-9]+\\.[0-9]+(\\.[0-9]+)?([-+].*)?$', default: '1.33', description: 'a version such as 1.33 or v1.34.2' }),
    /**
     * How Prometheus compacts while blocks are uploaded: disabled (equal block durations), delayed
     * (Prometheus >= 3.9 and Thanos >= 0.41: compaction waits for the upload), auto (delayed when both
     * images' tags say so, else disabled).
     */
    compaction: Type.Enum(['auto', 'delayed', 'disabled'], { default: 'auto', description: 'one of auto, delayed, disabled' }),
    /** Prometheus' min = max TSDB block duration with compaction disabled (Thanos recommends 2h). */
    blockDuration: Type.String({ pattern: DURATION_PATTERN.source, minLength: 2, default: '2h', description: 'a Prometheus duration such as 2h or 30m' }),
    /** Sidecar --log.format (Thanos' default: logfmt). */
    logFormat: Type.Optional(Type.Enum(['logfmt', 'json'], { description: 'logfmt or json' })),
    /** Sidecar --min-time: the oldest data it serves. */
    minTime: Type.Optional(Type.String({ pattern: MIN_TIME_PATTERN, description: MIN_TIME_FORM })),
    /** Sidecar --prometheus.ready_timeout (Thanos' default: 10m). */
    readyTimeout: Type.Optional(Type.String({ pattern: SIMPLE_DURATION, description: SIMPLE_DURATION_FORM })),
    /** Sidecar --prometheus.get_config_interval (30s) and --prometheus.get_config_timeout. */
    getConfigInterval: Type.Optional(Type.String({ pattern: SIMPLE_DURATION, description: SIMPLE_DURATION_FORM })),
    getConfigTimeout: Type.Optional(Type.String({ pattern: SIMPLE_DURATION, description: SIMPLE_DURATION_FORM })),
    /** More sidecar flags, after the injector's; a flag the injector sets is refused (buildConfig). */
    extraArgs: Type.Array(Type.String({ pattern: '^--[a-z]', description: 'a flag such as --hash-func=SHA256' }), { default: [], description: 'a list of sidecar flags such as --hash-func=SHA256' }),
    /** Sidecar environment variables (e.g. bucket credentials for $(VAR) in the objstore config). */
    env: Type.Array(EnvVar, { default: [], description: 'a list of environment variables (name, and value or valueFrom)' }),
    /** Volumes added to the pod (renamed if the pod has one of that name) and mounts added to the sidecar. */
    volumes: Type.Array(Volume, { default: [], description: 'a list of volumes' }),
    volumeMounts: Type.Array(VolumeMount, { default: [], description: 'a list of volume mounts (name, mountPath)' }),
    grpcPort: port(10901),
    httpPort: port(10902),
    /**
     * Bind the sidecar's gRPC and/or HTTP server to 127.0.0.1 only (a proxy such as kube-rbac-proxy
     * or a mesh in front): that port is then not declared on the sidecar, and HTTP gets no probes.
     */
    listenLocal: Type.Object(
      { grpc: Type.Boolean({ default: false, description: 'true or false' }), http: Type.Boolean({ default: false, description: 'true or false' }) },
      { additionalProperties: false, default: {} },
    ),
    objstore: Type.Object(
      {
        /** Off: the sidecar only serves Prometheus' data over gRPC and no Prometheus flag is touched. */
        enabled: Type.Boolean({ default: true, description: 'true or false' }),
        secretName: secretName('thanos-objstore'),
        secretKey: secretKey('objstore.yml'),
        mountPath: absolutePath('/etc/thanos/objstore'),
        /** The objstore config as a file something else provides (volumes/volumeMounts, a CSI driver, Vault's agent): no Secret is mounted. */
        configFile: absolutePath(''),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Sidecar --tracing.config-file from a Secret (empty name: no tracing). */
    tracing: Type.Object(
      { secretName: secretName('', true), secretKey: secretKey('tracing.yml'), mountPath: absolutePath('/etc/thanos/tracing') },
      { additionalProperties: false, default: {} },
    ),
    /**
     * TLS for the sidecar's gRPC StoreAPI (a Query outside the cluster): a kubernetes.io/tls Secret
     * (tls.crt, tls.key; ca.crt to require client certificates), empty name: plain gRPC.
     */
    grpcTls: Type.Object(
      {
        secretName: secretName('', true),
        clientCa: Type.Boolean({ default: false, description: 'true or false' }),
        minVersion: Type.Enum(['1.2', '1.3'], { default: '1.3', description: '1.2 or 1.3' }),
        mountPath: absolutePath('/etc/thanos/grpc-tls'),
      },
      { additionalProperties: false, default: {} },
    ),
    /**
     * Prometheus behind TLS or authentication (--web.config.file): the scheme the sidecar calls it
     * with, and a Secret holding the sidecar's --prometheus.http-client-file (empty name: none).
     */
    prometheus: Type.Object(
      {
        scheme: Type.Enum(['http', 'https'], { default: 'http', description: 'http or https' }),
        httpClient: Type.Object(
          {
            secretName: secretName('', true),
            secretKey: secretKey('http-client.yml'),
            mountPath: absolutePath('/etc/thanos/prometheus-http-client'),
          },
          { additionalProperties: false, default: {} },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Pod-level user and groups set where the pod leaves them unset (the seed's hard-link failure). */
    securityContext: Type.Object(
      { runAsUser: userId(65534), runAsGroup: userId(65534), fsGroup: userId(65534) },
      { additionalProperties: false, default: {} },
    ),
    /**
     * Pods that bring their own Thanos sidecar are admitted as written (never a second sidecar).
     * shareUser also sets the pod-level user and groups (securityContext above) where the pod leaves
     * them unset, so that sidecar can hard-link and upload Prometheus' blocks: everywhere, or only in
     * the namespaces listed. Per pod: annotation existing-sidecar (share-user or leave).
     */
    existingSidecar: Type.Object(
      {
        shareUser: Type.Boolean({ default: false, description: 'true or false' }),
        namespaces: Type.Array(Type.String({ pattern: DNS_LABEL, maxLength: 63, description: 'a namespace name (lowercase letters, digits and -, at most 63)' }), { default: [], description: 'a list of namespace names' }),
      },
      { additionalProperties: false, default: {} },
    ),
    /**
     * The sidecar's preStop hook waits, within the pod's grace period, for an upload in flight (a
     * SIGTERM would cancel it) and, when the TSDB is deleted with the pod, for the blocks cut and not
     * uploaded yet. Needs /bin/sh in the sidecar image (the official Thanos image has busybox).
     */
    waitForUploadsOnStop: Type.Boolean({ default: true, description: 'true or false' }),
    /**
     * A pod whose TSDB volume is deleted with it (emptyDir, a generic ephemeral or inline CSI volume)
     * loses its head and every block not yet uploaded at each rollout: allow (inject, say nothing
     * but the status annotation), warn (inject with a warning), skip (admit it without the sidecar),
     * deny (refuse the pod). Per namespace in namespaces; per pod: annotation ephemeral-tsdb.
     */
    ephemeralTsdb: Type.Object(
      {
        action: Type.Enum([...EPHEMERAL_TSDB_ACTIONS], { default: 'warn', description: 'one of allow, warn, skip, deny' }),
        namespaces: Type.Record(
          Type.String({ pattern: DNS_LABEL, maxLength: 63 }),
          Type.Enum([...EPHEMERAL_TSDB_ACTIONS], { description: 'one of allow, warn, skip, deny' }),
          { default: {}, description: 'a mapping of namespace names to one of allow, warn, skip, deny' },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    resources: Type.Object(
      {
        requests: Type.Object({ cpu: quantity('50m'), memory: quantity('64Mi') }, { additionalProperties: false, default: {} }),
        limits: Type.Object({ cpu: Type.Optional(quantity(undefined)), memory: quantity('512Mi') }, { additionalProperties: false, default: {} }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Never injected, whatever the labels say (defence in depth behind the webhook's selectors). */
    excludedNamespaces: Type.Array(Type.String(), { default: ['kube-system', 'kube-public', 'kube-node-lease'], description: 'a list of namespace names' }),
    /** The injector's own namespace, excluded too (default: the POD_NAMESPACE environment variable). */
    injectorNamespace: Type.String({ default: '', description: 'a namespace name' }),
    /** What the webhook answers when the injector itself fails: Ignore admits without a sidecar, Fail denies. */
    failurePolicy: Type.Enum(['Ignore', 'Fail'], { default: 'Ignore', description: 'Ignore or Fail' }),
  },
  { additionalProperties: false },
);

export type Config = Type.Static<typeof ConfigSchema>;

/** The Secret settings of the sidecar, as configured (Config) or resolved for one pod (inject's Settings). */
interface SecretSettings {
  objstore: { enabled: boolean; secretName: string; mountPath: string; configFile?: string };
  grpcTls: { secretName: string; mountPath: string };
  prometheus: { httpClient: { secretName: string; mountPath: string } };
  tracing: { secretName: string; mountPath: string };
}

/** A Secret the sidecar mounts read-only: the setting that asks for it, the volume's base name, the Secret and where it goes. */
export interface SecretMount {
  setting: 'objstore' | 'grpcTls' | 'prometheus.httpClient' | 'tracing';
  volume: string;
  secretName: string;
  mountPath: string;
}

/**
 * The Secrets the sidecar mounts for these settings, in the order they are added: the bucket's
 * (unless the bucket configuration is a file something else provides), gRPC TLS, Prometheus' http
 * client and tracing, each when named. The one list both the config check and the injection use.
 */
export function sidecarSecretMounts(settings: SecretSettings): SecretMount[] {
  const { objstore, grpcTls, prometheus, tracing } = settings;
  const mount = (setting: SecretMount['setting'], volume: string, { secretName, mountPath }: { secretName: string; mountPath: string }): SecretMount =>
    ({ setting, volume, secretName, mountPath });
  const mounts: SecretMount[] = [];
  if (objstore.enabled && !objstore.configFile) mounts.push(mount('objstore', 'thanos-objstore', objstore));
  if (grpcTls.secretName !== '') mounts.push(mount('grpcTls', 'thanos-grpc-tls', grpcTls));
  if (prometheus.httpClient.secretName !== '') mounts.push(mount('prometheus.httpClient', 'thanos-prometheus-http-client', prometheus.httpClient));
  if (tracing.secretName !== '') mounts.push(mount('tracing', 'thanos-tracing', tracing));
  return mounts;
}
