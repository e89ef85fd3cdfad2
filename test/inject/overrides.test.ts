// Per-pod override annotations: parseOverrides (each key, valid and invalid values, error wording,
// unknown keys, the status annotation), resolveSettings (annotations over config, request vs limit)
// and resolveMode (auto by Kubernetes version).
import t from 'tap';
import { buildConfig } from '../../src/config/load.ts';
import { injectPod } from '../../src/inject/inject.ts';
import { OVERRIDE_KEYS, PREFIX, STATUS_ANNOTATION, type OverrideKey } from '../../src/inject/names.ts';
import { parseOverrides, resolveMode, resolveSettings } from '../../src/inject/overrides.ts';

/** The accepted form each error must state (the golden fixtures pin several of them). */
const FORMS: Record<OverrideKey, string> = {
  image: 'an image reference such as quay.io/thanos/thanos:v0.42.5',
  'objstore-secret': 'a Secret name, optionally with its key: NAME or NAME/KEY',
  'objstore-config-file': 'an absolute path such as /vault/secrets/objstore.yml',
  'block-duration': 'a Prometheus duration from 1m to 31d, such as 2h or 30m',
  compaction: 'one of auto, delayed, disabled',
  'sidecar-mode': 'one of auto, native, container',
  'prometheus-container': 'the name of a container in this pod',
  'run-as-user': 'a user id from 1 to 2147483647',
  'log-level': 'one of debug, info, warn, error',
  'cpu-request': 'a CPU quantity such as 100m or 0.5',
  'memory-request': 'a memory quantity such as 128Mi or 1Gi',
  'memory-limit': 'a memory quantity such as 512Mi or 1Gi',
  'cpu-limit': 'a CPU quantity such as 500m or 1',
  'min-time': 'a duration back from now such as -2h or -7d, or an RFC 3339 time such as 2026-01-01T00:00:00Z',
  'prometheus-scheme': 'http or https',
  'prometheus-http-client-secret': 'a Secret name, optionally with its key: NAME or NAME/KEY',
  'existing-sidecar': "share-user (set the pod-level user so that the pod's own sidecar can upload) or leave",
  'ephemeral-tsdb': 'allow, warn, skip (admit the pod without the sidecar) or deny (refuse the pod): what to do when its TSDB volume is deleted with the pod',
  'upload-history': 'true (upload the blocks Prometheus compacted before it was injected, once) or false',
};

const CASES: Record<OverrideKey, { valid: string[]; invalid: string[] }> = {
  image: {
    valid: ['quay.io/thanos/thanos:v0.40.0', 'thanos', 'registry:5000/thanos/thanos@sha256:0123456789abcdef', 'thanosio/thanos:main-2025-01-01'],
    invalid: ['not an image!', '', '   ', '-leading-dash', 'quay.io/thanos/thanos:v0.42.5 extra', 'x'.repeat(513), 'a"b'],
  },
  'objstore-secret': {
    valid: ['my-secret', 'my.secret', 'thanos-objstore/objstore.yml', 's3/KEY_1.yaml', 'a'.repeat(253)],
    invalid: ['Bad_Secret', 'a/b/c', 'name/', '/key', '', 'name/bad key', 'a'.repeat(254), '-secret'],
  },
  'objstore-config-file': {
    valid: ['/vault/secrets/objstore.yml', '/etc/thanos/bucket/objstore.yaml', '/x'],
    invalid: ['vault/secrets/objstore.yml', '', 'C:/objstore.yml', '/a:b', `/${'a'.repeat(4096)}`],
  },
  'block-duration': {
    valid: ['2h', '30m', '1m', '1h30m', '90s', '60000ms', '1d'],
    invalid: ['2 hours', '59s', '0s', '0', '2', 'h', '', '-2h', '2H', '1.5h'],
  },
  compaction: { valid: ['auto', 'delayed', 'disabled'], invalid: ['Delayed', 'off', '', 'enabled'] },
  'upload-history': { valid: ['true', 'false'], invalid: ['yes', 'True', '1', ''] },
  'sidecar-mode': { valid: ['auto', 'native', 'container'], invalid: ['sidecar', 'Native', '', 'init'] },
  'prometheus-container': {
    valid: ['prometheus', 'server-1', 'p', 'a'.repeat(63)],
    invalid: ['Prometheus', 'a_b', '-x', 'x-', 'a'.repeat(64), '', 'a.b'],
  },
  'run-as-user': {
    valid: ['1', '1000', '65534', '2147483647'],
    invalid: ['0', '-1', '2147483648', '1.5', 'root', '', '1e3', '0x10'],
  },
  'log-level': { valid: ['debug', 'info', 'warn', 'error'], invalid: ['verbose', 'INFO', 'warning', ''] },
  'cpu-request': { valid: ['100m', '0.5', '1', '2', '+1', '250m'], invalid: ['lots', '100 m', '-1', '1.', '', 'm', '100mi'] },
  'memory-request': { valid: ['128Mi', '1Gi', '1e9', '500M', '0.5Gi'], invalid: ['1Gi-ish', '128MB', 'Mi', '', '-1Gi', '1 Gi'] },
  'memory-limit': { valid: ['512Mi', '1Gi', '2G', '1073741824'], invalid: ['1Gi-ish', 'lots', '', '1gi', '512mb'] },
  'cpu-limit': { valid: ['500m', '1', '2.5'], invalid: ['one', '', '-1', '1 cpu'] },
  'prometheus-scheme': { valid: ['http', 'https'], invalid: ['HTTPS', 'tls', '', 'https://'] },
  'prometheus-http-client-secret': { valid: ['prometheus-client', 'prometheus-client/client.yml'], invalid: ['Bad_Name', 'a/b/c', 'name/', ''] },
  'min-time': {
    valid: ['-2h', '-7d', '-90m', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00.5+02:00', '0s'],
    invalid: ['2h ago', '', 'yesterday', '2026-01-01', '-2H', '2026-01-01T00:00:00'],
  },
  'existing-sidecar': { valid: ['share-user', 'leave'], invalid: ['share', 'Share-User', '', 'true', 'replace'] },
  'ephemeral-tsdb': { valid: ['allow', 'warn', 'skip', 'deny'], invalid: ['Deny', 'refuse', '', 'true', 'warn,deny'] },
};

void t.test('parseOverrides: every key, valid values', (t) => {
  t.same([...OVERRIDE_KEYS].sort(), Object.keys(CASES).sort(), 'the test covers every override key');
  for (const key of OVERRIDE_KEYS) {
    for (const value of CASES[key].valid) {
      const parsed = parseOverrides({ [`${PREFIX}${key}`]: value });
      t.same(parsed.errors, [], `${key}: ${JSON.stringify(value)} is valid`);
      t.same(parsed.warnings, []);
      t.same(parsed.values, { [key]: value }, `${key}: ${JSON.stringify(value)} is kept`);
    }
  }
  t.end();
});

void t.test('parseOverrides: every key, invalid values', (t) => {
  for (const key of OVERRIDE_KEYS) {
    for (const value of CASES[key].invalid) {
      const annotation = `${PREFIX}${key}`;
      const parsed = parseOverrides({ [annotation]: value });
      t.same(parsed.values, {}, `${key}: ${JSON.stringify(value.slice(0, 40))} gives no value`);
      t.equal(parsed.errors.length, 1, 'one error');
      const error = parsed.errors[0] ?? '';
      t.ok(error.startsWith(`annotation ${annotation}: `), 'the error names the annotation');
      if (value.length <= 60) {
        t.equal(error, `annotation ${annotation}: ${JSON.stringify(value)} is not valid; expected ${FORMS[key]}`, 'exact wording');
      } else {
        t.ok(error.includes(JSON.stringify(value).slice(0, 40)), 'the error quotes the (long) value');
        t.ok(error.endsWith(`is not valid; expected ${FORMS[key]}`), 'and states the accepted form');
      }
    }
  }
  t.end();
});

void t.test('parseOverrides: the golden fixtures wording', (t) => {
  const errors = parseOverrides({
    'thanos-injector/block-duration': '2 hours',
    'thanos-injector/cpu-request': 'lots',
    'thanos-injector/image': 'not an image!',
    'thanos-injector/log-level': 'verbose',
    'thanos-injector/memory-limit': '1Gi-ish',
    'thanos-injector/objstore-secret': 'Bad_Secret',
    'thanos-injector/run-as-user': '0',
    'thanos-injector/sidecar-mode': 'sidecar',
  }).errors;
  t.same(errors, [
    'annotation thanos-injector/block-duration: "2 hours" is not valid; expected a Prometheus duration from 1m to 31d, such as 2h or 30m',
    'annotation thanos-injector/cpu-request: "lots" is not valid; expected a CPU quantity such as 100m or 0.5',
    'annotation thanos-injector/image: "not an image!" is not valid; expected an image reference such as quay.io/thanos/thanos:v0.42.5',
    'annotation thanos-injector/log-level: "verbose" is not valid; expected one of debug, info, warn, error',
    'annotation thanos-injector/memory-limit: "1Gi-ish" is not valid; expected a memory quantity such as 512Mi or 1Gi',
    'annotation thanos-injector/objstore-secret: "Bad_Secret" is not valid; expected a Secret name, optionally with its key: NAME or NAME/KEY',
    'annotation thanos-injector/run-as-user: "0" is not valid; expected a user id from 1 to 2147483647',
    'annotation thanos-injector/sidecar-mode: "sidecar" is not valid; expected one of auto, native, container',
  ], 'all errors, in annotation order');
  t.end();
});

void t.test('parseOverrides: trimming, quoting, long values', (t) => {
  t.same(parseOverrides({ 'thanos-injector/log-level': '  debug\n' }).values, { 'log-level': 'debug' }, 'surrounding whitespace is trimmed');
  const padded = parseOverrides({ 'thanos-injector/log-level': ' verbose ' });
  t.same(padded.errors, ['annotation thanos-injector/log-level: " verbose " is not valid; expected one of debug, info, warn, error'], 'the error quotes the value as given');

  const newline = parseOverrides({ 'thanos-injector/image': 'a\nb' }).errors[0] ?? '';
  t.notMatch(newline, /\n/, 'control characters are escaped in the message');
  t.match(newline, /"a\\nb"/, 'as JSON');

  const long = parseOverrides({ 'thanos-injector/image': 'x'.repeat(600) }).errors[0] ?? '';
  t.ok(long.length < 250, `a long value is shortened in the message (${long.length} chars)`);
  t.match(long, /"x{10,}\.\.\."/, 'with an ellipsis inside the quotes');
  t.end();
});

void t.test('parseOverrides: unknown keys, status annotation, other annotations', (t) => {
  const parsed = parseOverrides({
    'thanos-injector/imagee': 'x',
    'thanos-injector/injected': 'true',
    [STATUS_ANNOTATION]: '{"not": "checked"} !!!',
    'example.com/image': 'not an image!',
    'thanos-injector.io/log-level': 'verbose',
    'sidecar.istio.io/inject': 'false',
    image: 'whatever',
    'thanos-injector/log-level': 'warn',
  });
  t.same(parsed.values, { 'log-level': 'warn' }, 'only the known key is read');
  t.same(parsed.errors, [], 'no error for unknown keys, the status annotation or other prefixes');
  t.same(parsed.warnings, ['unknown annotation thanos-injector/imagee ignored', 'unknown annotation thanos-injector/injected ignored'], 'unknown thanos-injector/ keys are warnings');
  t.same(parseOverrides(undefined), { values: {}, errors: [], warnings: [] }, 'no annotations');
  t.same(parseOverrides({}), { values: {}, errors: [], warnings: [] }, 'empty annotations');
  t.same(parseOverrides({ [STATUS_ANNOTATION]: '' }), { values: {}, errors: [], warnings: [] }, 'the status annotation alone');
  t.end();
});

void t.test('parseOverrides: block-duration must be a duration Prometheus accepts', (t) => {
  // Prometheus parses --storage.tsdb.{min,max}-block-duration with model.ParseDuration, whose
  // units must appear once each, largest first (y w d h m s ms): "30m2h" or "1h1h" make
  // Prometheus exit at start-up with "not a valid duration string".
  // Nor beyond Prometheus' ceiling for block durations (31d; 300y would not even parse there).
  for (const value of ['30m2h', '1h1h', '30s1m', '5ms1h', '32d', '300y', '99999999999999999999d', '59s']) {
    const parsed = parseOverrides({ 'thanos-injector/block-duration': value });
    t.same(parsed.values, {}, `${value} is not taken`);
    t.same(parsed.errors, [`annotation thanos-injector/block-duration: "${value}" is not valid; expected ${FORMS['block-duration']}`], `${value} is an error`);
  }
  t.end();
});

void t.test('parseOverrides: block-duration accepts 1m to 31d', (t) => {
  for (const value of ['1m', '30m', '2h', '1d12h', '31d']) t.same(parseOverrides({ 'thanos-injector/block-duration': value }).errors, [], `${value} is taken`);
  t.end();
});

void t.test('parseOverrides: objstore-secret keys must be Secret keys', (t) => {
  // A Secret key matches [-._a-zA-Z0-9]+ and may not be `.`, `..` or start with `..`
  // (IsConfigMapKey). `bucket/..` would point --objstore.config-file at /etc/thanos, a directory.
  for (const value of ['bucket/..', 'bucket/.', 'bucket/..data']) {
    const parsed = parseOverrides({ 'thanos-injector/objstore-secret': value });
    t.same(parsed.values, {}, `${value} is not taken`);
    t.equal(parsed.errors.length, 1, `${value} is an error`);
  }
  t.same(parseOverrides({ 'thanos-injector/objstore-secret': 'bucket/.objstore.yml' }).errors, [], 'a key may start with one dot');
  t.end();
});

void t.test('resolveSettings: config alone', (t) => {
  const config = buildConfig({});
  const { settings, errors } = resolveSettings(config, {}, '1.33');
  t.same(errors, []);
  t.same(settings, {
    image: 'quay.io/thanos/thanos:v0.42.5',
    logLevel: 'info',
    mode: 'native',
    compaction: 'auto',
    blockDuration: '2h',
    blockDurationExplicit: false,
    grpcPort: 10901,
    httpPort: 10902,
    objstore: { enabled: true, secretName: 'thanos-objstore', secretKey: 'objstore.yml', mountPath: '/etc/thanos/objstore' },
    grpcTls: { secretName: '', clientCa: false, minVersion: '1.3', mountPath: '/etc/thanos/grpc-tls' },
    prometheus: { scheme: 'http', httpClient: { secretName: '', secretKey: 'http-client.yml', mountPath: '/etc/thanos/prometheus-http-client' } },
    runAsUser: 65534,
    runAsUserExplicit: false,
    runAsGroup: 65534,
    fsGroup: 65534,
    resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '512Mi' } },
    extraArgs: [],
    waitForUploadsOnStop: true,
    uploadHistory: false,
    tracing: { secretName: '', secretKey: 'tracing.yml', mountPath: '/etc/thanos/tracing' },
    listenLocal: { grpc: false, http: false },
    env: [],
    volumes: [],
    volumeMounts: [],
  });

  const custom = buildConfig({
    image: 'example.com/thanos:1',
    logLevel: 'warn',
    sidecarMode: 'container',
    blockDuration: '1h',
    grpcPort: 20901,
    httpPort: 20902,
    objstore: { enabled: false, secretName: 'bucket', secretKey: 'cfg.yaml', mountPath: '/etc/bucket' },
    prometheus: { scheme: 'https', httpClient: { secretName: 'prom-client' } },
    securityContext: { runAsUser: 1000, runAsGroup: 2000, fsGroup: 3000 },
    resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { cpu: '1', memory: '1Gi' } },
    extraArgs: [],
    waitForUploadsOnStop: true,
    tracing: { secretName: 'tracing', secretKey: 'jaeger.yml' },
    listenLocal: { grpc: true },
    env: [{ name: 'AWS_ACCESS_KEY_ID', valueFrom: { secretKeyRef: { name: 'bucket', key: 'id' } } }],
    volumes: [{ name: 'bucket-csi', csi: { driver: 'secrets-store.csi.k8s.io', readOnly: true } }],
    volumeMounts: [{ name: 'bucket-csi', mountPath: '/mnt/bucket', readOnly: true }],
  });
  const resolved = resolveSettings(custom, {}, '1.33');
  t.same(resolved.errors, []);
  t.same(resolved.settings, {
    image: 'example.com/thanos:1',
    logLevel: 'warn',
    mode: 'container',
    compaction: 'auto',
    blockDuration: '1h',
    blockDurationExplicit: false,
    grpcPort: 20901,
    httpPort: 20902,
    objstore: { enabled: false, secretName: 'bucket', secretKey: 'cfg.yaml', mountPath: '/etc/bucket' },
    grpcTls: { secretName: '', clientCa: false, minVersion: '1.3', mountPath: '/etc/thanos/grpc-tls' },
    prometheus: { scheme: 'https', httpClient: { secretName: 'prom-client', secretKey: 'http-client.yml', mountPath: '/etc/thanos/prometheus-http-client' } },
    runAsUser: 1000,
    runAsUserExplicit: false,
    runAsGroup: 2000,
    fsGroup: 3000,
    resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { cpu: '1', memory: '1Gi' } },
    extraArgs: [],
    waitForUploadsOnStop: true,
    uploadHistory: false,
    tracing: { secretName: 'tracing', secretKey: 'jaeger.yml', mountPath: '/etc/thanos/tracing' },
    listenLocal: { grpc: true, http: false },
    env: [{ name: 'AWS_ACCESS_KEY_ID', valueFrom: { secretKeyRef: { name: 'bucket', key: 'id' } } }],
    volumes: [{ name: 'bucket-csi', csi: { driver: 'secrets-store.csi.k8s.io', readOnly: true } }],
    volumeMounts: [{ name: 'bucket-csi', mountPath: '/mnt/bucket', readOnly: true }],
  });
  t.end();
});

void t.test('resolveSettings: the bucket configuration comes from one place, the pod\'s annotation first', (t) => {
  const file = buildConfig({ objstore: { configFile: '/mnt/bucket/objstore.yml' } });
  const secret = buildConfig({});
  const objstore = (config: typeof file, annotations: Record<string, string>) => {
    const { settings, errors } = resolveSettings(config, parseOverrides(annotations).values, '1.33');
    return { objstore: settings.objstore, errors };
  };
  t.same(objstore(file, {}).objstore.configFile, '/mnt/bucket/objstore.yml', 'the configured file');
  t.same(objstore(secret, {}).objstore.configFile, undefined, 'no file configured: the Secret');
  t.same(objstore(file, { 'thanos-injector/objstore-secret': 'bucket/s3.yml' }).objstore, {
    enabled: true, secretName: 'bucket', secretKey: 's3.yml', mountPath: '/etc/thanos/objstore',
  }, "the pod's Secret replaces the configured file");
  t.same(objstore(secret, { 'thanos-injector/objstore-config-file': '/vault/secrets/objstore.yml' }).objstore.configFile, '/vault/secrets/objstore.yml', "the pod's file replaces the configured Secret");
  t.same(objstore(secret, { 'thanos-injector/objstore-config-file': '/vault/secrets/objstore.yml', 'thanos-injector/objstore-secret': 'bucket' }).errors, [
    'annotations thanos-injector/objstore-secret and thanos-injector/objstore-config-file both say where the bucket configuration is; expected one of them',
  ], 'both on one pod: an error');
  t.end();
});

void t.test('resolveSettings: annotation values override the config', (t) => {
  const config = buildConfig({});
  const before = structuredClone(config);
  const values = parseOverrides({
    'thanos-injector/image': 'quay.io/thanos/thanos:v0.40.0',
    'thanos-injector/objstore-secret': 'bucket/s3.yaml',
    'thanos-injector/block-duration': '30m',
    'thanos-injector/sidecar-mode': 'container',
    'thanos-injector/run-as-user': '1000',
    'thanos-injector/log-level': 'debug',
    'thanos-injector/cpu-request': '200m',
    'thanos-injector/memory-request': '1Gi',
    'thanos-injector/memory-limit': '2Gi',
  }).values;
  const { settings, errors } = resolveSettings(config, values, '1.33');
  t.same(errors, []);
  t.equal(settings.image, 'quay.io/thanos/thanos:v0.40.0');
  t.same(settings.objstore, { enabled: true, secretName: 'bucket', secretKey: 's3.yaml', mountPath: '/etc/thanos/objstore' });
  t.equal(settings.blockDuration, '30m');
  t.equal(settings.blockDurationExplicit, true);
  t.equal(settings.mode, 'container', 'sidecar-mode wins over auto on 1.33');
  t.equal(settings.runAsUser, 1000);
  t.equal(settings.runAsUserExplicit, true);
  t.equal(settings.logLevel, 'debug');
  t.same(settings.resources, { requests: { cpu: '200m', memory: '1Gi' }, limits: { memory: '2Gi' } });
  t.same(config, before, 'the config is not modified');

  const nameOnly = resolveSettings(config, { 'objstore-secret': 'bucket' }, '1.33').settings;
  t.same(nameOnly.objstore, { enabled: true, secretName: 'bucket', secretKey: 'objstore.yml', mountPath: '/etc/thanos/objstore' }, 'NAME keeps the configured key');

  const native = resolveSettings(buildConfig({ sidecarMode: 'container' }), { 'sidecar-mode': 'native' }, '1.28').settings;
  t.equal(native.mode, 'native', 'an explicit native wins over the config and the version');
  const auto = resolveSettings(buildConfig({ sidecarMode: 'container' }), { 'sidecar-mode': 'auto' }, '1.30').settings;
  t.equal(auto.mode, 'native', 'auto by annotation resolves by version');
  t.end();
});

void t.test('resolveSettings: requests above limits', (t) => {
  const config = buildConfig({});
  t.same(
    resolveSettings(config, { 'memory-request': '4Gi' }, '1.33').errors,
    ["annotation thanos-injector/memory-request: \"4Gi\" is above the sidecar's memory limit 512Mi; expected a request no larger than the limit"],
    'memory-request above the configured limit names memory-request',
  );
  t.same(
    resolveSettings(config, { 'memory-limit': '32Mi' }, '1.33').errors,
    ["annotation thanos-injector/memory-limit: \"32Mi\" is below the sidecar's memory request 64Mi; expected a limit no smaller than the request"],
    'memory-limit below the configured request names memory-limit',
  );
  t.same(
    resolveSettings(config, { 'memory-request': '3Gi', 'memory-limit': '2Gi' }, '1.33').errors,
    ["annotation thanos-injector/memory-request: \"3Gi\" is above the sidecar's memory limit 2Gi; expected a request no larger than the limit"],
    'both annotations: the request is named',
  );
  t.same(resolveSettings(config, { 'memory-request': '512Mi' }, '1.33').errors, [], 'request equal to the limit');
  t.same(resolveSettings(config, { 'memory-request': '0.5Gi' }, '1.33').errors, [], 'equal in other units');
  t.same(resolveSettings(config, { 'memory-request': '500M' }, '1.33').errors, [], '500M < 512Mi');
  t.equal(resolveSettings(config, { 'memory-request': '600M' }, '1.33').errors.length, 1, '600M > 512Mi');
  t.same(resolveSettings(config, { 'memory-request': '1Gi', 'memory-limit': '1Gi' }, '1.33').errors, [], 'equal annotations');
  t.same(resolveSettings(config, { 'cpu-request': '64' }, '1.33').errors, [], 'no CPU limit configured: any CPU request');

  const cpuLimited = buildConfig({ resources: { limits: { cpu: '100m' } } });
  t.same(
    resolveSettings(cpuLimited, { 'cpu-request': '200m' }, '1.33').errors,
    ["annotation thanos-injector/cpu-request: \"200m\" is above the sidecar's cpu limit 100m; expected a request no larger than the limit"],
    'cpu-request above the configured CPU limit',
  );
  t.same(resolveSettings(cpuLimited, { 'cpu-request': '0.1' }, '1.33').errors, [], '0.1 = 100m');

  const both = resolveSettings(cpuLimited, { 'cpu-request': '1', 'memory-request': '1Gi' }, '1.33').errors;
  t.equal(both.length, 2, 'one error per resource');
  t.end();
});

void t.test('resolveMode: auto by Kubernetes version', (t) => {
  const cases: [string, string, string][] = [
    ['auto', '1.28', 'container'],
    ['auto', 'v1.28.15', 'container'],
    ['auto', '1.27', 'container'],
    ['auto', '1.29', 'native'],
    ['auto', '1.29.0', 'native'],
    ['auto', '1.33', 'native'],
    ['auto', 'v1.34.2', 'native'],
    ['auto', 'v1.30.4-eks-a737599', 'native'],
    ['auto', '1.100', 'native'],
    ['auto', '2.0', 'native'],
    ['auto', 'garbage', 'container'],
    ['native', '1.28', 'native'],
    ['native', '1.20', 'native'],
    ['container', '1.33', 'container'],
    ['container', 'v1.34.2', 'container'],
  ];
  for (const [mode, version, expected] of cases) t.equal(resolveMode(mode, version), expected, `${mode} on ${version}`);
  t.end();
});

void t.test('injectPod: invalid overrides deny the pod with every problem', (t) => {
  const pod = {
    metadata: { name: 'p', annotations: { 'thanos-injector/log-level': 'verbose', 'thanos-injector/memory-request': '4Gi', 'thanos-injector/nope': 'x' } },
    spec: { containers: [{ name: 'prometheus', image: 'prom/prometheus' }] },
  };
  const result = injectPod(pod, { config: buildConfig({}), namespace: 'monitoring', kubernetesVersion: '1.33' });
  t.same(result, {
    outcome: 'denied',
    reason: 'invalid-annotation',
    message:
      'annotation thanos-injector/log-level: "verbose" is not valid; expected one of debug, info, warn, error; ' +
      "annotation thanos-injector/memory-request: \"4Gi\" is above the sidecar's memory limit 512Mi; expected a request no larger than the limit",
  });

  const warned = injectPod(
    { metadata: { name: 'p', annotations: { 'thanos-injector/nope': 'x' } }, spec: { containers: [{ name: 'prometheus', image: 'prom/prometheus' }] } },
    { config: buildConfig({}), namespace: 'monitoring', kubernetesVersion: '1.33' },
  );
  t.equal(warned.outcome, 'injected', 'an unknown key does not stop the injection');
  t.ok(warned.outcome === 'injected' && warned.warnings.includes('unknown annotation thanos-injector/nope ignored'), 'it is a warning');
  t.end();
});
