// 3. Query reads what `register` wrote, on a real node: the chart's Thanos Query (query.enabled) is
//    installed before any registration, as a user installs it; `thanos-injector register` then
//    writes the endpoints of the injected sidecar; the real Query lists the sidecar as a store
//    (/api/v1/stores) and answers PromQL with Prometheus' own series, carrying its external labels.
//    Endpoints as pod IPs (--endpoints pod-ip).
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { thanosInjector } from '../e2e/support.ts';
import { root, startInjector, startNodeStack, waitFor } from './support.ts';

t.setTimeout(900_000);

const stack = await startNodeStack(t, 'thanos-injector-node-query-');
const { cluster, minio, images } = stack;
const QUERY_NAMESPACE = 'thanos-injector';

await startInjector(t, stack, ['--set', `injection.image=${images.thanos}`, '--set', 'query.enabled=true', '--set', `query.image=${images.thanos}`,
  '--set', 'query.reloadInterval=5s', '--set', 'query.resources.requests.cpu=50m']);
await cluster.kubectlOk(['create', 'namespace', 'monitoring']);
await cluster.kubectlOk(['label', 'namespace', 'monitoring', 'thanos-injection=enabled']);
await minio.createBucket('query');
await cluster.kubectlOk(['-n', 'monitoring', 'create', 'secret', 'generic', 'thanos-objstore', `--from-literal=objstore.yml=${minio.objstore('query')}`]);

// The seed's ConfigMap and Deployment, on the 3.x image this time.
interface Manifest {
  kind: string;
  spec?: { template: { spec: { containers: { image?: string; imagePullPolicy?: string; resources?: unknown }[] } } };
}
const seed = parseAllDocuments(readFileSync(join(root, 'test/fixtures/inject/seed-deployment.yaml'), 'utf8')).map((d) => d.toJS() as Manifest);
for (const doc of seed) {
  const prometheus = doc.spec?.template.spec.containers[0];
  if (!prometheus) continue;
  prometheus.image = images.prometheus3;
  prometheus.imagePullPolicy = 'IfNotPresent';
  prometheus.resources = { requests: { cpu: '100m', memory: '128Mi' } };
}
await cluster.kubectlOk(['apply', '-f', '-'], seed.map((d) => JSON.stringify(d)).join('\n'));

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
  t.pass(`Query ${query.metadata.name} Ready before any registration (the endpoints ConfigMap does not exist yet)`);

  const registered = await thanosInjector(['register', '--query-namespace', QUERY_NAMESPACE, '--endpoints', 'pod-ip'], cluster.env);
  t.equal(registered.code, 0, `register exits 0: ${registered.stdout.trim().split('\n').slice(-3).join(' | ')}${registered.stderr}`);
  const endpoints = await cluster.kubectlOk(['-n', QUERY_NAMESPACE, 'get', 'configmap', 'thanos-query-endpoints', '-o', 'jsonpath={.data.endpoints\\.yaml}']);
  t.match(endpoints, `${prometheus.status.podIP}:10901`, 'the ConfigMap holds the sidecar\'s pod IP');

  interface Store {
    name: string;
    lastError: string | null;
    labelSets: Record<string, string>[];
  }
  const store = await waitFor('Query to list the sidecar as a store', async () => {
    const stores = await queryApi<{ data: Record<string, Store[]> }>(query.metadata.name, '/api/v1/stores');
    return Object.values(stores.data).flat().find((s) => s.name === `${prometheus.status.podIP}:10901` && s.lastError === null);
  }, 180_000, 2000);
  t.ok(store.labelSets.some((set) => set.cluster === 'prometheus-k8s'), `the store carries Prometheus' external labels: ${JSON.stringify(store.labelSets)}`);

  interface QueryResult {
    status: string;
    data: { result: { metric: Record<string, string>; value: [number, string] }[] };
  }
  const answer = await waitFor('PromQL through Query to return Prometheus\' own series', async () => {
    const result = await queryApi<QueryResult>(query.metadata.name, `/api/v1/query?query=${encodeURIComponent('up{job="prometheus"}')}`);
    return result.data.result.length > 0 ? result : undefined;
  }, 120_000, 2000);
  t.equal(answer.status, 'success');
  t.same(answer.data.result.map((r) => [r.metric.cluster, r.metric.job, r.value[1]]), [['prometheus-k8s', 'prometheus', '1']], 'up{job="prometheus"} = 1, with cluster="prometheus-k8s"');
});
