import t from 'tap';
import { applyPodDefaults, defaultPullPolicy, imageTag } from './pod-defaults.ts';

void t.test('imagePullPolicy: Always for :latest or no tag and no digest, else IfNotPresent', (t) => {
  const cases: [string, 'Always' | 'IfNotPresent'][] = [
    ['nginx', 'Always'],
    ['nginx:latest', 'Always'],
    ['docker.io/library/nginx', 'Always'],
    ['localhost:5000/thanos', 'Always'], // a registry port is not a tag
    ['localhost:5000/thanos:latest', 'Always'],
    ['quay.io/thanos/thanos:v0.37.2', 'IfNotPresent'],
    ['localhost:5000/thanos:v1', 'IfNotPresent'],
    [`quay.io/thanos/thanos@sha256:${'a'.repeat(64)}`, 'IfNotPresent'], // digest, no tag
    [`quay.io/thanos/thanos:latest@sha256:${'a'.repeat(64)}`, 'Always'], // the tag still says latest
    [`quay.io/thanos/thanos:v1@sha256:${'a'.repeat(64)}`, 'IfNotPresent'],
    ['Invalid/UPPER:tag', 'IfNotPresent'], // does not parse: the defaulter ignores the error
    ['', 'IfNotPresent'],
  ];
  for (const [image, policy] of cases) t.equal(defaultPullPolicy(image), policy, image);
  t.equal(imageTag('nginx'), 'latest');
  t.equal(imageTag('nginx:1.27'), '1.27');
  t.end();
});

void t.test('container, pod and volume defaults', (t) => {
  const pod = {
    metadata: { name: 'p' },
    spec: {
      initContainers: [{ name: 'init', image: 'busybox:1.36' }],
      containers: [
        {
          name: 'prometheus',
          image: 'prom/prometheus',
          ports: [{ name: 'web', containerPort: 9090 }],
          readinessProbe: { httpGet: { port: 'web' } },
          livenessProbe: { tcpSocket: { port: 9090 }, periodSeconds: 5, timeoutSeconds: 0 },
          env: [{ name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
          resources: { limits: { cpu: '1', memory: '1Gi' }, requests: { cpu: '500m' } },
        },
        { name: 'explicit', image: 'x:latest', imagePullPolicy: 'Never', terminationMessagePolicy: 'FallbackToLogsOnError' },
      ],
      volumes: [
        { name: 'tls', secret: { secretName: 's' } },
        { name: 'cfg', configMap: { name: 'c', defaultMode: 256 } },
        { name: 'data', emptyDir: {} },
        { name: 'bare' },
      ],
    },
  };
  const before = JSON.stringify(pod);
  const out = applyPodDefaults(pod);
  t.equal(JSON.stringify(pod), before, 'input untouched');

  const spec = out.spec as Record<string, unknown>;
  t.equal(spec.restartPolicy, 'Always');
  t.equal(spec.dnsPolicy, 'ClusterFirst');
  t.equal(spec.schedulerName, 'default-scheduler');
  t.same(spec.securityContext, {});
  t.equal(spec.terminationGracePeriodSeconds, 30);
  t.equal(spec.enableServiceLinks, true);

  const [prom, explicit] = out.spec.containers as Record<string, unknown>[];
  t.match(prom, {
    imagePullPolicy: 'Always',
    terminationMessagePath: '/dev/termination-log',
    terminationMessagePolicy: 'File',
    ports: [{ name: 'web', containerPort: 9090, protocol: 'TCP' }],
    readinessProbe: { httpGet: { port: 'web', path: '/', scheme: 'HTTP' }, timeoutSeconds: 1, periodSeconds: 10, successThreshold: 1, failureThreshold: 3 },
    // explicit values stay; a zero int32 counts as unset
    livenessProbe: { periodSeconds: 5, timeoutSeconds: 1 },
    env: [{ valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } }],
    // requests default from limits per resource; existing requests stay
    resources: { limits: { cpu: '1', memory: '1Gi' }, requests: { cpu: '500m', memory: '1Gi' } },
  });
  t.match(explicit, { imagePullPolicy: 'Never', terminationMessagePolicy: 'FallbackToLogsOnError' });
  t.match(out.spec.initContainers[0], { imagePullPolicy: 'IfNotPresent', terminationMessagePolicy: 'File' });

  const vols = out.spec.volumes as unknown as Record<string, unknown>[];
  t.same(vols[0]?.secret, { secretName: 's', defaultMode: 420 });
  t.same(vols[1]?.configMap, { name: 'c', defaultMode: 256 });
  t.same(vols[2]?.emptyDir, {});
  t.same(vols[3], { name: 'bare', emptyDir: {} }, 'a volume without a source becomes an emptyDir');
  t.end();
});

void t.test('defaults are idempotent and leave explicit pod values alone', (t) => {
  const pod = {
    spec: {
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 0,
      enableServiceLinks: false,
      securityContext: { runAsUser: 1000 },
      containers: [{ name: 'c', image: 'x:1' }],
    },
  };
  const once = applyPodDefaults(pod);
  t.same(applyPodDefaults(once), once);
  t.match(once.spec, { restartPolicy: 'Never', terminationGracePeriodSeconds: 0, enableServiceLinks: false, securityContext: { runAsUser: 1000 } });
  t.notOk('resources' in (once.spec.containers[0] ?? {}), 'no resources added when there are none');
  t.end();
});

void t.test('hostNetwork: hostPort defaults to containerPort', (t) => {
  const out = applyPodDefaults({ spec: { hostNetwork: true, containers: [{ name: 'c', image: 'x:1', ports: [{ containerPort: 80 }] }] } });
  t.match(out.spec.containers[0]?.ports[0], { containerPort: 80, hostPort: 80, protocol: 'TCP' });
  t.end();
});

void t.test('non-pod values pass through', (t) => {
  t.equal(applyPodDefaults(null), null);
  t.same(applyPodDefaults({ metadata: {} }), { metadata: {} });
  t.end();
});
