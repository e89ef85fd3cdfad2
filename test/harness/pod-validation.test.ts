import t from 'tap';
import { applyPodDefaults } from './pod-defaults.ts';
import { labelValueErrors, portNameErrors, qualifiedNameErrors, validatePod } from './pod-validation.ts';
import { compareQuantities, parseQuantity } from './quantity.ts';

// A loose, mutable pod shape for building violations.
type Obj = Record<string, unknown>;
interface TestPod {
  metadata: { name: string; annotations: Record<string, string>; labels: Record<string, string> };
  spec: { initContainers: Obj[]; containers: Obj[]; volumes: Obj[]; securityContext: Obj } & Obj;
}

/** A valid Prometheus pod with a native-sidecar Thanos container, as after injection. */
function validPod(): TestPod {
  return {
    metadata: {
      name: 'prometheus-0',
      annotations: { 'thanos-injector/status': 'injected', 'prometheus.io/scrape': 'true' },
      labels: { app: 'prometheus', 'app.kubernetes.io/name': 'prometheus', empty: '' },
    },
    spec: {
      securityContext: { runAsUser: 65534, runAsGroup: 65534, fsGroup: 2000, supplementalGroups: [0] },
      initContainers: [
        { name: 'init-chown', image: 'busybox:1.36', command: ['sh', '-c', 'true'], volumeMounts: [{ name: 'data', mountPath: '/data' }] },
        {
          name: 'thanos-sidecar',
          image: 'quay.io/thanos/thanos:v0.37.2',
          restartPolicy: 'Always',
          args: ['sidecar', '--tsdb.path=/prometheus'],
          ports: [
            { name: 'grpc', containerPort: 10901 },
            { name: 'http-sidecar', containerPort: 10902, protocol: 'TCP' },
          ],
          env: [
            { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
            { name: 'OBJSTORE_CONFIG', value: '' },
          ],
          readinessProbe: { httpGet: { port: 'http-sidecar', path: '/-/ready' } },
          livenessProbe: { httpGet: { port: 10902, path: '/-/healthy' } },
          lifecycle: { preStop: { exec: { command: ['sleep', '1'] } } },
          resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '0.5', memory: '256Mi' } },
          securityContext: { allowPrivilegeEscalation: false, runAsUser: 1000 },
          volumeMounts: [
            { name: 'data', mountPath: '/prometheus', subPath: 'prometheus-db' },
            { name: 'objstore', mountPath: '/etc/thanos', readOnly: true },
          ],
        },
      ],
      containers: [
        {
          name: 'prometheus',
          image: 'quay.io/prometheus/prometheus:v3.1.0',
          ports: [{ name: 'web', containerPort: 9090 }],
          resources: { requests: { cpu: '1', memory: '1Gi' }, limits: { cpu: '1000m', memory: '1073741824' } },
          volumeMounts: [{ name: 'data', mountPath: '/prometheus', subPath: 'prometheus-db' }],
        },
      ],
      volumes: [
        { name: 'data', emptyDir: {} },
        { name: 'objstore', secret: { secretName: 'thanos-objstore' } },
      ],
    },
  };
}

const errorsOf = (pod: unknown, opts?: Parameters<typeof validatePod>[1]) => validatePod(applyPodDefaults(pod), opts);
const sidecar = (p: TestPod): Obj => p.spec.initContainers[1] as Obj;
const prom = (p: TestPod): Obj => p.spec.containers[0] as Obj;

void t.test('a valid injected pod passes (with and without defaults)', (t) => {
  t.same(errorsOf(validPod()), []);
  t.same(validatePod(validPod()), [], 'absent defaulted fields are not errors');
  t.end();
});

// Each case: a rule name, a mutation that violates it, and the expected error.
const violations: [string, (p: TestPod) => void, RegExp][] = [
  // container names
  ['container name not a DNS-1123 label', (p) => { prom(p).name = 'Prometheus'; }, /spec\.containers\[0\]\.name: Invalid value: "Prometheus"/],
  ['container name too long', (p) => { prom(p).name = 'a'.repeat(64); }, /no more than 63/],
  ['container name required', (p) => { delete prom(p).name; }, /spec\.containers\[0\]\.name: Required value/],
  ['container name duplicated across init and regular containers', (p) => { prom(p).name = 'thanos-sidecar'; }, /spec\.containers\[0\]\.name: Duplicate value: "thanos-sidecar"/],
  ['no containers', (p) => { p.spec.containers = []; }, /spec\.containers: Required value/],
  // image
  ['image required', (p) => { delete sidecar(p).image; }, /spec\.initContainers\[1\]\.image: Required value/],
  ['image with whitespace', (p) => { sidecar(p).image = ' thanos '; }, /leading or trailing whitespace/],
  ['unsupported imagePullPolicy', (p) => { sidecar(p).imagePullPolicy = 'Sometimes'; }, /imagePullPolicy: Unsupported value/],
  // ports
  ['port name too long', (p) => { sidecar(p).ports = [{ name: 'a-very-long-port-name', containerPort: 1 }]; }, /ports\[0\]\.name.*no more than 15/],
  ['port name with uppercase', (p) => { sidecar(p).ports = [{ name: 'Grpc', containerPort: 1 }]; }, /only alpha-numeric/],
  ['port name without a letter', (p) => { sidecar(p).ports = [{ name: '10901', containerPort: 1 }]; }, /at least one letter/],
  ['port name with --', (p) => { sidecar(p).ports = [{ name: 'a--b', containerPort: 1 }]; }, /consecutive hyphens/],
  ['port name with leading -', (p) => { sidecar(p).ports = [{ name: '-grpc', containerPort: 1 }]; }, /begin or end with a hyphen/],
  ['port name duplicated in a container', (p) => { sidecar(p).ports = [{ name: 'grpc', containerPort: 1 }, { name: 'grpc', containerPort: 2 }]; }, /ports\[1\]\.name: Duplicate value: "grpc"/],
  ['containerPort 0', (p) => { sidecar(p).ports = [{ name: 'grpc', containerPort: 0 }]; }, /containerPort: Required value/],
  ['containerPort too big', (p) => { sidecar(p).ports = [{ containerPort: 65536 }]; }, /containerPort: Invalid value: 65536/],
  ['containerPort as a string (undecodable)', (p) => { sidecar(p).ports = [{ containerPort: '80' }]; }, /must be an integer/],
  ['unsupported protocol', (p) => { sidecar(p).ports = [{ containerPort: 1, protocol: 'HTTP' }]; }, /protocol: Unsupported value: "HTTP"/],
  ['hostPort conflict', (p) => {
    prom(p).ports = [{ containerPort: 9090, hostPort: 9090 }];
    p.spec.containers.push({ name: 'other', image: 'x:1', ports: [{ containerPort: 9091, hostPort: 9090 }] });
  }, /hostPort: Duplicate value/],
  // env
  ['env name required', (p) => { sidecar(p).env = [{ value: 'x' }]; }, /env\[0\]\.name: Required value/],
  ['env name with =', (p) => { sidecar(p).env = [{ name: 'A=B', value: 'x' }]; }, /env\[0\]\.name: Invalid value/],
  ['env value and valueFrom', (p) => { sidecar(p).env = [{ name: 'A', value: 'x', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }]; }, /may not be specified when `value` is not empty/],
  ['env valueFrom without a source', (p) => { sidecar(p).env = [{ name: 'A', valueFrom: {} }]; }, /must specify one of/],
  // volumes
  ['volume name not a label', (p) => { p.spec.volumes.push({ name: 'Bad_Name', emptyDir: {} }); }, /spec\.volumes\[2\]\.name: Invalid value/],
  ['volume name duplicated', (p) => { p.spec.volumes.push({ name: 'data', emptyDir: {} }); }, /spec\.volumes\[2\]\.name: Duplicate value: "data"/],
  ['volume with two sources', (p) => { p.spec.volumes.push({ name: 'two', emptyDir: {}, secret: { secretName: 's' } }); }, /more than 1 volume type/],
  ['secret volume without secretName', (p) => { p.spec.volumes.push({ name: 's', secret: {} }); }, /secret\.secretName: Required value/],
  // volumeMounts
  ['mount of a missing volume', (p) => { (sidecar(p).volumeMounts as Obj[]).push({ name: 'tsdb', mountPath: '/x' }); }, /volumeMounts\[2\]\.name: Not found: "tsdb"/],
  ['duplicate mountPath', (p) => { (sidecar(p).volumeMounts as Obj[]).push({ name: 'data', mountPath: '/prometheus' }); }, /mountPath: Invalid value: "\/prometheus": must be unique/],
  ['mountPath required', (p) => { (sidecar(p).volumeMounts as Obj[]).push({ name: 'data' }); }, /mountPath: Required value/],
  ['absolute subPath', (p) => { (sidecar(p).volumeMounts as Obj[])[0] = { name: 'data', mountPath: '/p', subPath: '/abs' }; }, /must be a relative path/],
  ['subPath with ..', (p) => { (sidecar(p).volumeMounts as Obj[])[0] = { name: 'data', mountPath: '/p', subPath: 'a/../b' }; }, /must not contain '\.\.'/],
  // resources
  ['cpu request above limit', (p) => { sidecar(p).resources = { requests: { cpu: '600m' }, limits: { cpu: '0.5' } }; }, /requests\[cpu\]: Invalid value: "600m": must be less than or equal to cpu limit of 0\.5/],
  ['memory request above limit', (p) => { sidecar(p).resources = { requests: { memory: '1G' }, limits: { memory: '512Mi' } }; }, /requests\[memory\].*less than or equal to memory limit/],
  ['unparseable quantity', (p) => { sidecar(p).resources = { limits: { cpu: '1 core' } }; }, /limits\[cpu\]: Invalid value: "1 core"/],
  ['negative quantity', (p) => { sidecar(p).resources = { requests: { cpu: '-1' } }; }, /greater than or equal to 0/],
  // securityContext
  ['runAsUser out of range', (p) => { sidecar(p).securityContext = { runAsUser: 2147483648 }; }, /securityContext\.runAsUser: Invalid value: 2147483648/],
  ['negative runAsGroup', (p) => { sidecar(p).securityContext = { runAsGroup: -1 }; }, /runAsGroup: Invalid value: -1/],
  ['pod fsGroup out of range', (p) => { p.spec.securityContext.fsGroup = 2147483648; }, /spec\.securityContext\.fsGroup: Invalid value/],
  ['allowPrivilegeEscalation false with privileged', (p) => { sidecar(p).securityContext = { allowPrivilegeEscalation: false, privileged: true }; }, /cannot set `allowPrivilegeEscalation` to false and `privileged` to true/],
  // init containers and restartPolicy
  ['plain init container with a readiness probe', (p) => { (p.spec.initContainers[0] as Obj).readinessProbe = { exec: { command: ['true'] } }; }, /initContainers\[0\]\.readinessProbe: Forbidden: may not be set for init containers without restartPolicy=Always/],
  ['plain init container with lifecycle', (p) => { (p.spec.initContainers[0] as Obj).lifecycle = { preStop: { exec: { command: ['true'] } } }; }, /initContainers\[0\]\.lifecycle: Forbidden/],
  ['plain init container with liveness and startup probes', (p) => {
    (p.spec.initContainers[0] as Obj).livenessProbe = { exec: { command: ['true'] } };
    (p.spec.initContainers[0] as Obj).startupProbe = { exec: { command: ['true'] } };
  }, /initContainers\[0\]\.livenessProbe: Forbidden[^]*initContainers\[0\]\.startupProbe: Forbidden/],
  ['sidecar lost its restartPolicy (probes now forbidden)', (p) => { delete sidecar(p).restartPolicy; }, /initContainers\[1\]\.readinessProbe: Forbidden/],
  ['init container restartPolicy other than Always', (p) => { sidecar(p).restartPolicy = 'OnFailure'; }, /initContainers\[1\]\.restartPolicy: Unsupported value: "OnFailure"/],
  ['regular container with restartPolicy', (p) => { prom(p).restartPolicy = 'Always'; }, /containers\[0\]\.restartPolicy: Forbidden: may not be set for non-init containers/],
  // probes
  ['liveness successThreshold not 1', (p) => { sidecar(p).livenessProbe = { httpGet: { port: 1 }, successThreshold: 2 }; }, /livenessProbe\.successThreshold: Invalid value: 2: must be 1/],
  ['probe with two handlers', (p) => { sidecar(p).readinessProbe = { httpGet: { port: 1 }, exec: { command: ['x'] } }; }, /more than 1 handler type/],
  ['probe without a handler', (p) => { sidecar(p).readinessProbe = { periodSeconds: 5 }; }, /readinessProbe: Required value: must specify a handler type/],
  // metadata
  ['annotation key with two slashes', (p) => { p.metadata.annotations['a/b/c'] = 'x'; }, /metadata\.annotations: Invalid value: "a\/b\/c"/],
  ['annotation key with a bad prefix', (p) => { p.metadata.annotations['Thanos_Injector/status'] = 'x'; }, /prefix part/],
  ['annotation key with an empty name', (p) => { p.metadata.annotations['thanos.io/'] = 'x'; }, /name part must be non-empty/],
  ['annotation key name too long', (p) => { p.metadata.annotations[`x/${'a'.repeat(64)}`] = 'x'; }, /name part must be no more than 63/],
  ['annotations over 256 KiB', (p) => { p.metadata.annotations.big = 'x'.repeat(256 * 1024); }, /metadata\.annotations: Too long: must have at most 262144 bytes/],
  ['annotation value not a string', (p) => { (p.metadata.annotations as Obj).n = 1; }, /must be a string/],
  ['label value too long', (p) => { p.metadata.labels.app = 'a'.repeat(64); }, /metadata\.labels\["app"\]: Invalid value/],
  ['label value with bad characters', (p) => { p.metadata.labels.app = 'a b'; }, /metadata\.labels\["app"\]/],
  ['label key invalid', (p) => { p.metadata.labels['-bad'] = 'x'; }, /metadata\.labels: Invalid value: "-bad"/],
];

for (const [rule, mutate, expected] of violations) {
  void t.test(`rejects: ${rule}`, (t) => {
    const pod = validPod();
    mutate(pod);
    const errors = errorsOf(pod);
    t.match(errors.join('\n'), expected, errors.join('\n') || '(no errors)');
    t.end();
  });
}

void t.test('accepts the edge of each rule', (t) => {
  const p = validPod();
  prom(p).name = 'a'.repeat(63);
  sidecar(p).ports = [{ name: 'abcdefghijklmn1', containerPort: 65535, protocol: 'SCTP' }, { name: 'a-1', containerPort: 1, protocol: 'UDP' }];
  sidecar(p).resources = { requests: { cpu: '500m', memory: '1Gi' }, limits: { cpu: '0.5', memory: '1024Mi' } };
  sidecar(p).securityContext = { runAsUser: 2147483647, runAsGroup: 0, privileged: true };
  p.metadata.annotations[`${'a'.repeat(253)}/${'b'.repeat(63)}`] = 'x';
  p.metadata.annotations['UPPER.Case_ok'] = 'x';
  p.metadata.labels.v = `a${'-'.repeat(61)}z`;
  (sidecar(p).volumeMounts as Obj[]).push({ name: 'data', mountPath: '/x', subPath: 'a/..b/c..' });
  t.same(errorsOf(p), []);
  t.end();
});

void t.test('StatefulSet template: mounts may refer to volumeClaimTemplates', (t) => {
  const p = validPod();
  prom(p).volumeMounts = [{ name: 'prometheus-db', mountPath: '/prometheus' }];
  t.match(errorsOf(p).join('\n'), /Not found: "prometheus-db"/);
  t.same(errorsOf(p, { volumeClaimTemplateNames: ['prometheus-db'] }), []);
  t.end();
});

void t.test('non-pod input is reported, not thrown', (t) => {
  t.match(validatePod(null).join(), /must be an object/);
  t.match(validatePod({ metadata: {} }).join(), /spec: Required value/);
  t.match(validatePod({ spec: { containers: 'x' } }).join(), /spec\.containers.*must be an array/);
  t.end();
});

void t.test('name helpers', (t) => {
  t.same(qualifiedNameErrors('thanos-injector/status'), []);
  t.same(qualifiedNameErrors('example.com/My_Name.1'), []);
  t.not(qualifiedNameErrors('/x').length, 0);
  t.not(qualifiedNameErrors('x_').length, 0);
  t.same(labelValueErrors(''), []);
  t.not(labelValueErrors('-x').length, 0);
  t.same(portNameErrors('http-metrics'), []);
  t.equal(portNameErrors('-').length, 2); // no letter; leading hyphen
  t.end();
});

void t.test('quantities', (t) => {
  const eq = (a: string | number, b: string | number) => {
    const qa = parseQuantity(a);
    const qb = parseQuantity(b);
    if (!qa || !qb) return t.fail(`unparseable ${a} or ${b}`);
    t.equal(compareQuantities(qa, qb), 0, `${a} == ${b}`);
  };
  eq('1', '1000m');
  eq('0.5', '500m');
  eq('.5', '500m');
  eq('1.', '1');
  eq('1Ki', '1024');
  eq('1Mi', '1048576');
  eq('1Gi', '1024Mi');
  eq('1Ti', '1024Gi');
  eq('1k', '1000');
  eq('1M', '1000k');
  eq('1G', '1e9');
  eq('1T', '1E12');
  eq('1E', '1e18');
  eq('1e3', '1k');
  eq('1.5e-3', '1500u');
  eq('100n', '0.1u');
  eq(2, '2000m');
  eq('+1', '1');
  const lt = (a: string, b: string) => t.equal(compareQuantities(parseQuantity(a)!, parseQuantity(b)!), -1, `${a} < ${b}`);
  lt('1G', '1Gi');
  lt('999m', '1');
  lt('-1', '0');
  for (const bad of ['', '1 ', 'abc', '1e', '1KI', '1.2.3', '.', 'm', '1ki', '1.5Gi5']) {
    t.equal(parseQuantity(bad), undefined, `invalid: ${JSON.stringify(bad)}`);
  }
  t.end();
});
