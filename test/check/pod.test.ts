// A namespace's injection state and one pod's: would it be injected and why, is it injected, and
// the objstore Secret its sidecar reads. The pod is the seed's Prometheus Deployment
// (examples/prometheus-deployment.yaml) as the controller creates it, before and after the
// injector's own patch.
import t from 'tap';
import { readFileSync } from 'node:fs';
import type { V1Deployment, V1MutatingWebhook, V1MutatingWebhookConfiguration, V1Namespace, V1Pod, V1Secret } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { checkNamespace } from '../../src/check/namespace.ts';
import { checkObjstoreSecret, checkPodDecision, checkPodInjected, objstoreReference, withoutSidecar } from '../../src/check/pod.ts';
import { buildConfig } from '../../src/config/load.ts';
import { applyPatchInPlace } from '../../src/inject/patch.ts';
import { injectPod } from '../../src/inject/inject.ts';

const config = buildConfig({ injectorNamespace: 'thanos-injector' });
const example = parseAllDocuments(readFileSync(new URL('../../examples/prometheus-deployment.yaml', import.meta.url), 'utf8')).map((doc) => doc.toJS() as { kind: string });
const deployment = example.find((doc) => doc.kind === 'Deployment') as V1Deployment;
t.ok(example.find((doc) => doc.kind === 'ConfigMap'), 'the example has its ConfigMap');

/** The pod the ReplicaSet creates from the example's template, as stored without injection. */
function plainPod(labels: Record<string, string> = {}, annotations: Record<string, string> = {}): V1Pod {
  const template = structuredClone(deployment.spec?.template);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'prometheus-deploy-5c8f7b6d4-x2x9k',
      namespace: 'monitoring',
      uid: '0f6b3c1e-4c1d-4f57-9b0e-1b2c3d4e5f60',
      labels: { ...template?.metadata?.labels, 'pod-template-hash': '5c8f7b6d4', ...labels },
      annotations,
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'prometheus-deploy-5c8f7b6d4', uid: 'rs-uid', controller: true }],
    },
    spec: template?.spec ?? { containers: [] },
    status: { phase: 'Pending' },
  };
}

/** The same pod as the webhook stores it: the engine's patch applied. */
function injectedPod(labels: Record<string, string> = {}, annotations: Record<string, string> = {}): V1Pod {
  const pod = plainPod(labels, annotations);
  const injection = injectPod(pod, { config, namespace: 'monitoring', kubernetesVersion: '1.34' });
  if (injection.outcome !== 'injected') throw new Error(`the example was not injected: ${JSON.stringify(injection)}`);
  applyPatchInPlace(pod, injection.patch);
  return pod;
}

const selector = (scope: 'namespace' | 'pod'): Pick<V1MutatingWebhook, 'namespaceSelector' | 'objectSelector'> => ({
  namespaceSelector: {
    matchExpressions: [
      scope === 'namespace' ? { key: 'thanos-injection', operator: 'In', values: ['enabled'] } : { key: 'thanos-injection', operator: 'DoesNotExist' },
      { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'kube-public', 'kube-node-lease', 'thanos-injector'] },
    ],
  },
  objectSelector: scope === 'namespace'
    ? { matchExpressions: [{ key: 'thanos-injection', operator: 'NotIn', values: ['disabled'] }] }
    : { matchLabels: { 'thanos-injection': 'enabled' } },
});
const webhookConfiguration: V1MutatingWebhookConfiguration = {
  metadata: { name: 'tsi-thanos-sidecar-injector' },
  webhooks: (['namespace', 'pod'] as const).map((scope) => ({
    name: `${scope}.thanos-sidecar-injector.io`,
    admissionReviewVersions: ['v1'],
    sideEffects: 'None',
    clientConfig: { url: 'https://127.0.0.1:8443/mutate' },
    rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
    ...selector(scope),
  })),
};
const ns = (name: string, labels: Record<string, string> = {}): V1Namespace => ({ metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...labels } } });
const enabled = ns('monitoring', { 'thanos-injection': 'enabled' });

void t.test('namespace injection state', (t) => {
  t.match(checkNamespace('monitoring', enabled, config, webhookConfiguration), { status: 'ok', detail: /^labelled thanos-injection=enabled: Prometheus pods created here get the sidecar/ });
  const unset = checkNamespace('monitoring', ns('monitoring'), config, webhookConfiguration);
  t.equal(unset.status, 'warn', 'not labelled: a warning (pods may opt in one by one)');
  t.match(unset.detail, /only pods labelled thanos-injection=enabled are injected; .*kubectl label namespace monitoring thanos-injection=enabled --overwrite/);
  t.match(checkNamespace('monitoring', ns('monitoring', { 'thanos-injection': 'disabled' }), config, webhookConfiguration), { status: 'warn', detail: /not even pods labelled enabled/ });
  t.match(checkNamespace('monitoring', ns('monitoring', { 'thanos-injection': 'yes' }), config, webhookConfiguration), { status: 'warn', detail: /neither enabled nor disabled/ });
  t.match(checkNamespace('kube-system', ns('kube-system', { 'thanos-injection': 'enabled' }), config, webhookConfiguration), { status: 'warn', detail: /excluded by the injector configuration \(excludedNamespaces\)/ });
  t.match(checkNamespace('thanos-injector', ns('thanos-injector'), config, webhookConfiguration), { status: 'warn', detail: /the injector's own namespace/ });
  const legacy = buildConfig({ injectorNamespace: 'x' });
  t.match(checkNamespace('thanos-injector', ns('thanos-injector', { 'thanos-injection': 'enabled' }), legacy, webhookConfiguration), { status: 'warn', detail: /excluded by the webhooks' namespaceSelector/ });
  t.match(checkNamespace('nope', undefined, config, webhookConfiguration), { status: 'fail', detail: 'namespace nope not found' });
  t.end();
});

void t.test('would be injected: the webhooks select it and the injector accepts it', (t) => {
  const decision = checkPodDecision(plainPod(), enabled, config, webhookConfiguration);
  t.equal(decision.injectable, true);
  t.match(decision.row, { status: 'ok', detail: /^yes via namespace\.thanos-sidecar-injector\.io: pod prometheus-deploy-5c8f7b6d4-x2x9k is a Prometheus pod/ });
  const again = checkPodDecision(injectedPod(), enabled, config, webhookConfiguration);
  t.equal(again.row.status, 'ok', 'an injected pod is judged as its re-creation would be, not as already-injected');
  t.equal(withoutSidecar(injectedPod()).spec?.initContainers?.length, 0, 'the sidecar is left out for the decision');
  t.match(checkPodDecision(plainPod({ 'thanos-injection': 'enabled' }), ns('team-a'), config, webhookConfiguration).row, { status: 'ok', detail: /via pod\.thanos-sidecar-injector\.io/ });
  t.match(checkPodDecision(plainPod(), enabled, config, undefined).row, { status: 'ok', detail: /^yes: / }, 'without the configuration: the chart\'s selectors');
  t.end();
});

void t.test('not selected by any webhook: a failure, since a re-created pod loses the sidecar', (t) => {
  const decision = checkPodDecision(injectedPod(), ns('monitoring'), config, webhookConfiguration);
  t.equal(decision.injectable, false);
  t.equal(decision.row.status, 'fail');
  t.match(decision.row.detail, /no webhook selects it \(namespace monitoring is not labelled thanos-injection and the pod is not labelled thanos-injection\): a re-created pod \(rollout, eviction\) starts WITHOUT the sidecar; kubectl label namespace monitoring thanos-injection=enabled --overwrite/);
  t.match(checkPodDecision(plainPod(), ns('monitoring'), config, undefined).row, { status: 'fail' }, 'the same without the configuration');
  t.end();
});

void t.test("the injector's own reasons: opted out, excluded and agent mode are warnings; no Prometheus and refusals fail", (t) => {
  t.match(checkPodDecision(plainPod({ 'thanos-injection': 'disabled' }), enabled, config, webhookConfiguration).row, {
    status: 'warn', detail: 'no: the pod is labelled thanos-injection=disabled (pod-opted-out)',
  });
  t.match(checkPodDecision(plainPod(), ns('kube-system', { 'thanos-injection': 'enabled' }), config, webhookConfiguration).row, { status: 'warn', detail: /namespace-excluded/ });
  const agent = plainPod();
  if (agent.spec) agent.spec.containers = [{ name: 'prometheus', image: 'quay.io/prometheus/prometheus:v3.5.0', args: ['--agent', '--config.file=/etc/prometheus/prometheus.yml'] }];
  t.match(checkPodDecision(agent, enabled, config, webhookConfiguration).row, { status: 'warn', detail: /^no: container prometheus runs Prometheus in agent mode .* \(agent-mode\)$/ });
  const web = plainPod();
  if (web.spec) web.spec.containers = [{ name: 'web', image: 'nginx:1.27' }];
  t.match(checkPodDecision(web, enabled, config, webhookConfiguration).row, { status: 'fail', detail: /no-prometheus.*thanos-injector\/prometheus-container: NAME/ });
  t.match(checkPodDecision(plainPod({}, { 'thanos-injector/block-duration': 'banana' }), enabled, config, webhookConfiguration).row, {
    status: 'fail', detail: /^no: the webhook would refuse the pod \(invalid-annotation\): annotation thanos-injector\/block-duration: "banana" is not valid/,
  });
  t.match(checkPodDecision(plainPod({}, { 'thanos-injector/prometheus-container': 'prom' }), enabled, config, webhookConfiguration).row, {
    status: 'fail', detail: /"prom" is not a container of this pod/,
  });
  t.end();
});

void t.test('is injected: the sidecar, how it runs, the status annotation', (t) => {
  const row = checkPodInjected(injectedPod(), true);
  t.equal(row.status, 'ok', row.detail);
  t.match(row.detail, /^thanos-sidecar present as a native sidecar \(init container, restartPolicy Always\); thanos-injector\/status: injector \d+\.\d+\.\d+, mode native, Prometheus container prometheus$/);
  const missing = checkPodInjected(plainPod(), true);
  t.equal(missing.status, 'fail');
  t.match(missing.detail, /no thanos-sidecar: the pod was created while the webhook was not called or did not answer .*kubectl -n monitoring delete pod prometheus-deploy-5c8f7b6d4-x2x9k/);
  t.match(checkPodInjected(plainPod(), false), { status: 'skip' }, 'not injected, as decided');
  const byHand = injectedPod();
  delete byHand.metadata?.annotations?.['thanos-injector/status'];
  t.match(checkPodInjected(byHand, true), { status: 'warn', detail: /without a readable thanos-injector\/status annotation/ });
  const unlabelled = injectedPod();
  delete unlabelled.metadata?.labels?.['thanos-injector/injected'];
  t.match(checkPodInjected(unlabelled, true), { status: 'warn', detail: /not labelled thanos-injector\/injected=true/ });
  t.end();
});

const objstoreSecret = (data: Record<string, string>): V1Secret => ({
  metadata: { name: 'thanos-objstore', namespace: 'monitoring' },
  type: 'Opaque',
  data: Object.fromEntries(Object.entries(data).map(([key, value]) => [key, Buffer.from(value).toString('base64')])),
});
const S3 = 'type: S3\nconfig:\n  bucket: thanos\n  endpoint: minio.monitoring.svc:9000\n  access_key: a\n  secret_key: b\n  insecure: true\n';

void t.test('which objstore Secret: the volume the sidecar mounts, else the annotation, else the configuration', (t) => {
  t.same(objstoreReference(injectedPod(), config), {
    kind: 'secret', name: 'thanos-objstore', key: 'objstore.yml', how: 'mounted by thanos-sidecar for --objstore.config-file=/etc/thanos/objstore/objstore.yml',
  });
  t.same(objstoreReference(injectedPod({}, { 'thanos-injector/objstore-secret': 'bucket/s3.yaml' }), config), {
    kind: 'secret', name: 'bucket', key: 's3.yaml', how: 'mounted by thanos-sidecar for --objstore.config-file=/etc/thanos/objstore/s3.yaml',
  });
  t.same(objstoreReference(plainPod({}, { 'thanos-injector/objstore-secret': 'bucket' }), config), {
    kind: 'secret', name: 'bucket', key: 'objstore.yml', how: 'annotation thanos-injector/objstore-secret',
  });
  t.match(objstoreReference(plainPod(), config), { kind: 'secret', name: 'thanos-objstore', how: /injector configuration/ });
  t.match(objstoreReference(plainPod(), buildConfig({ objstore: { enabled: false } })), { kind: 'none', reason: /objstore\.enabled: false/ });
  t.same(objstoreReference(plainPod({}, { 'thanos-injector/objstore-config-file': '/vault/secrets/objstore.yml' }), config), {
    kind: 'none', reason: 'the bucket configuration is the file /vault/secrets/objstore.yml (annotation thanos-injector/objstore-config-file), which the pod provides: no Secret to look at',
  });
  t.match(objstoreReference(plainPod(), buildConfig({ objstore: { configFile: '/mnt/bucket/objstore.yml' } })), { kind: 'none', reason: /file \/mnt\/bucket\/objstore\.yml \(injector configuration objstore\.configFile\)/ });
  t.end();
});

void t.test('the objstore Secret exists, has the key, and holds an objstore configuration', (t) => {
  const reference = objstoreReference(injectedPod(), config);
  t.match(checkObjstoreSecret('monitoring', reference, objstoreSecret({ 'objstore.yml': S3 })), {
    status: 'ok', detail: /^Secret monitoring\/thanos-objstore key objstore\.yml: type S3 \(mounted by thanos-sidecar/,
  });
  const missing = checkObjstoreSecret('monitoring', reference, undefined);
  t.equal(missing.status, 'fail');
  t.match(missing.detail, /^Secret monitoring\/thanos-objstore not found .*the pod cannot start; kubectl -n monitoring create secret generic thanos-objstore --from-file=objstore\.yml=bucket\.yml/);
  t.match(checkObjstoreSecret('monitoring', reference, objstoreSecret({ 'bucket.yml': S3 })), { status: 'fail', detail: /has no key objstore\.yml \(keys: bucket\.yml;/ });
  t.match(checkObjstoreSecret('monitoring', reference, objstoreSecret({ 'objstore.yml': 'bucket: thanos\n' })), { status: 'fail', detail: /is not a Thanos objstore configuration/ });
  t.match(checkObjstoreSecret('monitoring', reference, objstoreSecret({ 'objstore.yml': 'type: [' })), { status: 'fail', detail: /is not valid YAML/ });
  t.match(checkObjstoreSecret('monitoring', { kind: 'none', reason: 'off' }, undefined), { status: 'skip', detail: 'off' });
  t.end();
});

void t.test('a pod with its own Thanos sidecar is not injected by choice: a warning, not a failure to fix', (t) => {
  const pod = plainPod();
  pod.spec!.containers.push({ name: 'thanos', image: 'thanosio/thanos:v0.36.1', args: ['sidecar', '--tsdb.path=/prometheus'] });
  const decision = checkPodDecision(pod, enabled, config, webhookConfiguration);
  t.equal(decision.injectable, false);
  t.match(decision.row, { status: 'warn', detail: /^no: container thanos already runs a Thanos sidecar.*\(existing-sidecar\)$/ });
  t.notMatch(decision.row.detail, 'name the Prometheus container', 'no advice meant for pods without Prometheus');
  t.end();
});
