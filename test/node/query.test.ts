// 3. Query reads what `register` wrote, on a real node: the chart's Thanos Query (query.enabled) is
//    installed before any registration, as a user installs it; `thanos-injector register` then
//    writes the endpoints of the injected sidecars; the real Query lists each sidecar as a store
//    (/api/v1/stores) and answers PromQL with Prometheus' own series, carrying its external labels.
//    Both endpoint forms: pod IPs (--endpoints pod-ip), then the default dnssrv+ names, which Query
//    resolves through the cluster DNS (CoreDNS on the node) and the headless Service register made.
//    The injector's config here takes the bucket configuration from a file on a volume of its own,
//    credentials from env: the sidecars upload without any objstore Secret.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { thanosInjector } from '../support/e2e.ts';
import { MINIO_PASSWORD, MINIO_USER, root, SHORT_BLOCKS, startInjector, startNodeStack, waitFor } from '../support/node.ts';

t.setTimeout(900_000);

const stack = await startNodeStack(t, 'thanos-injector-node-query-');
const { cluster, minio, images } = stack;
const QUERY_NAMESPACE = 'thanos-injector';

// The bucket configuration the operator's way rather than ours: a file on a volume of the config's
// own (a ConfigMap here; a CSI driver or Vault in real life) whose credentials are $(VAR)s the
// sidecar's env takes from a Secret. No objstore Secret exists in these namespaces.
const credentials = (name: string) => ({ name: `BUCKET_${name.toUpperCase().replace('-', '_')}`, valueFrom: { secretKeyRef: { name: 'bucket-credentials', key: name } } });
await startInjector(t, stack, ['--set', `injection.image=${images.thanos}`, '--set', 'query.enabled=true', '--set', `query.image=${images.thanos}`,
  '--set', 'query.reloadInterval=5s', '--set', 'query.resources.requests.cpu=50m',
  '--set-json', `injection.env=${JSON.stringify([credentials('access-key'), credentials('secret-key')])}`,
  '--set-json', 'injection.volumes=[{"name":"bucket","configMap":{"name":"thanos-bucket"}}]',
  '--set-json', 'injection.volumeMounts=[{"name":"bucket","mountPath":"/etc/thanos/bucket","readOnly":true}]',
  '--set', 'injection.objstore.configFile=/etc/thanos/bucket/objstore.yml']);
await minio.createBucket('query');
/** A namespace labelled for injection, with the bucket's ConfigMap (credentials as $(VAR)s) and the credentials' Secret. */
async function bucketNamespace(namespace: string): Promise<void> {
  await cluster.kubectlOk(['create', 'namespace', namespace]);
  await cluster.kubectlOk(['label', 'namespace', namespace, 'thanos-injection=enabled']);
  const objstore = minio.objstore('query').replace(`access_key: ${MINIO_USER}`, 'access_key: $(BUCKET_ACCESS_KEY)').replace(`secret_key: ${MINIO_PASSWORD}`, 'secret_key: $(BUCKET_SECRET_KEY)');
  await cluster.kubectlOk(['-n', namespace, 'create', 'configmap', 'thanos-bucket', `--from-literal=objstore.yml=${objstore}`]);
  await cluster.kubectlOk(['-n', namespace, 'create', 'secret', 'generic', 'bucket-credentials', `--from-literal=access-key=${MINIO_USER}`, `--from-literal=secret-key=${MINIO_PASSWORD}`]);
}
await bucketNamespace('monitoring');

// The seed's ConfigMap and Deployment, on the 3.x image this time, in `namespace`, with its own
// external label cluster=<cluster>.
interface Manifest {
  kind: string;
  metadata: { namespace?: string };
  data?: Record<string, string>;
  spec?: { template: { metadata: { annotations?: Record<string, string> }; spec: { containers: { image?: string; imagePullPolicy?: string; resources?: unknown; args?: string[] }[] } } };
}
async function applySeed(namespace: string, cluster_: string): Promise<void> {
  const seed = parseAllDocuments(readFileSync(join(root, 'test/fixtures/inject/seed-deployment.yaml'), 'utf8')).map((d) => d.toJS() as Manifest);
  for (const doc of seed) {
    doc.metadata.namespace = namespace;
    if (doc.data) doc.data['prometheus.yml'] = (doc.data['prometheus.yml'] ?? '').replace('cluster: "prometheus-k8s"', `cluster: "${cluster_}"`);
    const prometheus = doc.spec?.template.spec.containers[0];
    if (!prometheus) continue;
    prometheus.image = images.prometheus3;
    prometheus.imagePullPolicy = 'IfNotPresent';
    prometheus.resources = { requests: { cpu: '100m', memory: '128Mi' } };
    // Short blocks, so the first upload comes within a minute.
    prometheus.args?.push(...SHORT_BLOCKS);
  }
  await cluster.kubectlOk(['apply', '-f', '-'], seed.map((d) => JSON.stringify(d)).join('\n'));
}
await applySeed('monitoring', 'prometheus-k8s');

interface PodJson {
  metadata: { name: string };
  status: { podIP?: string; conditions?: { type: string; status: string }[] };
}
async function readyPod(namespace: string, selector: string): Promise<PodJson> {
  return waitFor(`a Ready pod ${selector} in ${namespace}`, async () => {
    const list = JSON.parse(await cluster.kubectlOk(['-n', namespace, 'get', 'pods', '-l', selector, '-o', 'json'])) as { items: PodJson[] };
    return list.items.find((pod) => pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
  }, 180_000, 1000).catch(async (error: Error) => {
    const described = await cluster.kubectl(['-n', namespace, 'describe', 'pods', '-l', selector]);
    throw new Error(`${error.message}\n${described.stdout.slice(-4000)}`);
  });
}

/** GET a path of the Query pod's HTTP port through the apiserver's pod proxy, parsed. */
async function queryApi<T>(pod: string, path: string): Promise<T> {
  return JSON.parse(await cluster.kubectlOk(['get', '--raw', `/api/v1/namespaces/${QUERY_NAMESPACE}/pods/${pod}:10902/proxy${path}`])) as T;
}

void t.test('3. the real Thanos Query reads the endpoints register wrote (pod IPs): the sidecar is a store, PromQL answers with its external labels', async (t) => {
  const prometheus = await readyPod('monitoring', 'app=prometheus');
  const query = await readyPod(QUERY_NAMESPACE, 'app.kubernetes.io/component=query');
  t.pass(`Query ${query.metadata.name} Ready before any registration (on the chart's empty endpoints ConfigMap)`);

  const registered = await thanosInjector(['register', '--query-namespace', QUERY_NAMESPACE, '--endpoints', 'pod-ip', '-n', 'monitoring'], cluster.env);
  t.equal(registered.code, 0, `register exits 0: ${registered.stdout.trim().split('\n').slice(-3).join(' | ')}${registered.stderr}`);
  const endpoints = await cluster.kubectlOk(['-n', QUERY_NAMESPACE, 'get', 'configmap', 'thanos-query-endpoints', '-o', 'jsonpath={.data.endpoints\\.yaml}']);
  t.match(endpoints, `${prometheus.status.podIP}:10901`, 'the ConfigMap holds the sidecar\'s pod IP');

  const store = await healthyStore(query.metadata.name, `${prometheus.status.podIP}:10901`);
  t.ok(store.labelSets.some((set) => set.cluster === 'prometheus-k8s'), `the store carries Prometheus' external labels: ${JSON.stringify(store.labelSets)}`);

  const answer = await upSeries(query.metadata.name, 1);
  t.same(answer.map((r) => [r.metric.cluster, r.metric.job, r.value[1]]), [['prometheus-k8s', 'prometheus', '1']], 'up{job="prometheus"} = 1, with cluster="prometheus-k8s"');
});

void t.test('the bucket configuration as a file on a volume of the config, its credentials from env: the sidecar uploads', async (t) => {
  const prometheus = await readyPod('monitoring', 'app=prometheus');
  interface Spec { volumes: { name: string; configMap?: unknown; secret?: unknown }[]; initContainers: { name: string; args: string[]; env?: unknown[] }[] }
  const spec = (JSON.parse(await cluster.kubectlOk(['-n', 'monitoring', 'get', 'pod', prometheus.metadata.name, '-o', 'json'])) as { spec: Spec }).spec;
  const sidecar = spec.initContainers.find((c) => c.name === 'thanos-sidecar');
  t.ok(sidecar?.args.includes('--objstore.config-file=/etc/thanos/bucket/objstore.yml'), 'the sidecar reads the file on the config\'s volume');
  t.same(sidecar?.env?.length, 2, 'with the credentials in its env');
  t.notOk(spec.volumes.some((v) => v.secret !== undefined), 'and no Secret volume');
  const uploaded = await waitFor('a block of prometheus-k8s in MinIO', async () => {
    const keys = await minio.keys('query');
    return keys.some((key) => key.endsWith('/meta.json')) ? keys : undefined;
  }, 300_000, 5000).catch(async (error: Error) => {
    const log = await cluster.kubectl(['-n', 'monitoring', 'logs', prometheus.metadata.name, '-c', 'thanos-sidecar', '--tail=30']);
    throw new Error(`${error.message}\n--- sidecar ---\n${log.stdout}`);
  });
  t.pass(`uploaded with credentials substituted from env: ${uploaded.filter((key) => key.endsWith('/meta.json')).join(', ')}`);
});

void t.test('3. with the default dnssrv+ endpoints, Query finds a sidecar through the cluster DNS', async (t) => {
  // A second injected Prometheus, whose address no pod-ip file ever held: Query can only reach it
  // through the SRV record of the headless Service register makes.
  await bucketNamespace('team-b');
  await applySeed('team-b', 'team-b');
  const teamB = await readyPod('team-b', 'app=prometheus');
  const query = await readyPod(QUERY_NAMESPACE, 'app.kubernetes.io/component=query');

  const registered = await thanosInjector(['register', '--query-namespace', QUERY_NAMESPACE], cluster.env);
  t.equal(registered.code, 0, `register exits 0: ${registered.stdout.trim().split('\n').slice(-3).join(' | ')}${registered.stderr}`);
  const endpoints = await cluster.kubectlOk(['-n', QUERY_NAMESPACE, 'get', 'configmap', 'thanos-query-endpoints', '-o', 'jsonpath={.data.endpoints\\.yaml}']);
  t.match(endpoints, 'dnssrv+_grpc._tcp.thanos-sidecar.team-b.svc.cluster.local', 'the ConfigMap holds the dnssrv+ name of team-b');
  t.notMatch(endpoints, `${teamB.status.podIP}`, 'and no pod IP');

  const store = await healthyStore(query.metadata.name, `${teamB.status.podIP}:10901`);
  t.ok(store.labelSets.some((set) => set.cluster === 'team-b'), `Query resolved the SRV record to team-b's sidecar: ${JSON.stringify(store.labelSets)}`);
  const answer = await upSeries(query.metadata.name, 2);
  t.same(answer.map((r) => r.metric.cluster).sort(), ['prometheus-k8s', 'team-b'], 'PromQL through Query answers from both Prometheus, each with its external label');
});

interface Store {
  name: string;
  lastError: string | null;
  labelSets: Record<string, string>[];
}

/** The store Query lists under `address`, once it has no error. */
function healthyStore(queryPod: string, address: string): Promise<Store> {
  return waitFor(`Query to list ${address} as a healthy store`, async () => {
    const stores = await queryApi<{ data: Record<string, Store[]> }>(queryPod, '/api/v1/stores');
    return Object.values(stores.data).flat().find((s) => s.name === address && s.lastError === null);
  }, 180_000, 2000);
}

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

/** `up{job="prometheus"}` through Query, once it has `count` series. */
function upSeries(queryPod: string, count: number): Promise<Sample[]> {
  return waitFor(`PromQL through Query to return ${count} series of up{job="prometheus"}`, async () => {
    const result = await queryApi<{ status: string; data: { result: Sample[] } }>(queryPod, `/api/v1/query?query=${encodeURIComponent('up{job="prometheus"}')}`);
    return result.status === 'success' && result.data.result.length === count ? result.data.result : undefined;
  }, 120_000, 2000);
}
