// Day 2 on a real node: an upgrade of the injector's configuration leaves running pods with the
// sidecar they were created with; the product names them and rolls them safely.
// - An HA pair shaped like the prometheus-community chart's StatefulSet (replica: ${POD_NAME}, each
//   TSDB on a PersistentVolume) and a single Prometheus (a Deployment), injected, registered by
//   `register --watch` (pod IPs) with the chart's Thanos Query;
// - `helm upgrade --reuse-values` changing the sidecar's log level, memory limit and image (a second
//   tag of the same Thanos image): `check -n` names each pod outdated with what differs (a warning:
//   exit 0), register's metric counts them;
// - `thanos-injector rollout`: the pair one at a time, each eviction only once the previous
//   replacement is ready and listed by Query, the Deployment restarted; a deduplicated query of the
//   pair answered every second throughout, and a range query over the rollout's window with no step
//   missing; afterwards every pod runs the new sidecar, `check` calls them current, the metric is 0.
import t from 'tap';
import { join } from 'node:path';
import { thanosInjector } from '../support/e2e.ts';
import { freePort } from '../support/net.ts';
import { localVolume, root, SHORT_BLOCKS, startInjector, startNodeStack, startProcess, waitFor } from '../support/node.ts';

t.setTimeout(1_200_000);

const stack = await startNodeStack(t, 'thanos-injector-node-day2-');
const { cluster, minio, images, node } = stack;
const QUERY_NAMESPACE = 'thanos-injector';
const NAMESPACE = 'monitoring';
/** A second tag of the Thanos image the node holds: what an upgrade to a new release looks like to the pods. */
const UPGRADED_IMAGE = `${images.thanos.replace(/:[^:/]+$/, '')}:v0.42.5-day2`;
{
  const tagged = await node.ctr(['images', 'tag', images.thanos, UPGRADED_IMAGE]);
  if (tagged.code !== 0) throw new Error(`ctr images tag: ${tagged.stderr}`);
}

const injector = await startInjector(t, stack, ['--set', `injection.image=${images.thanos}`, '--set', 'query.enabled=true', '--set', `query.image=${images.thanos}`,
  '--set', 'query.reloadInterval=5s', '--set', 'query.resources.requests.cpu=50m']);

await minio.createBucket('day2');
await cluster.kubectlOk(['create', 'namespace', NAMESPACE]);
await cluster.kubectlOk(['label', 'namespace', NAMESPACE, 'thanos-injection=enabled']);
await cluster.kubectlOk(['-n', NAMESPACE, 'create', 'secret', 'generic', 'thanos-objstore', `--from-literal=objstore.yml=${minio.objstore('day2')}`]);
for (const ordinal of [0, 1]) await localVolume(stack, NAMESPACE, `storage-volume-prometheus-server-${ordinal}`, `day2-${ordinal}`);

const prometheusConfig = (labels: string) => `global:\n  scrape_interval: 5s\n  external_labels:\n${labels}scrape_configs:\n- job_name: prometheus\n  static_configs:\n  - targets: [localhost:9090]\n`;
const server = () => ({
  name: 'prometheus-server',
  image: images.prometheus3,
  args: ['--config.file=/etc/config/prometheus.yml', '--storage.tsdb.path=/data', '--storage.tsdb.retention.time=15d', ...SHORT_BLOCKS],
  ports: [{ containerPort: 9090 }],
  readinessProbe: { httpGet: { path: '/-/ready', port: 9090 }, periodSeconds: 5 },
  resources: { requests: { cpu: '50m', memory: '128Mi' } },
  volumeMounts: [{ name: 'config-volume', mountPath: '/etc/config' }, { name: 'storage-volume', mountPath: '/data' }],
});
const securityContext = { fsGroup: 65534, runAsGroup: 65534, runAsNonRoot: true, runAsUser: 65534 };
const pair = { 'app.kubernetes.io/name': 'prometheus', 'app.kubernetes.io/instance': 'pair' };
const single = { 'app.kubernetes.io/name': 'prometheus', 'app.kubernetes.io/instance': 'single' };
await cluster.kubectlOk(['apply', '-f', '-'], [
  { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'prometheus-server', namespace: NAMESPACE }, data: { 'prometheus.yml': prometheusConfig('    cluster: eu1\n    replica: ${POD_NAME}\n') } },
  { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'prometheus-single', namespace: NAMESPACE }, data: { 'prometheus.yml': prometheusConfig('    cluster: single\n') } },
  {
    apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'prometheus-server', namespace: NAMESPACE },
    spec: {
      serviceName: 'prometheus-server-headless', podManagementPolicy: 'Parallel', replicas: 2, selector: { matchLabels: pair },
      template: {
        metadata: { labels: pair },
        spec: { containers: [server()], securityContext, terminationGracePeriodSeconds: 30, volumes: [{ name: 'config-volume', configMap: { name: 'prometheus-server' } }] },
      },
      volumeClaimTemplates: [{ metadata: { name: 'storage-volume' }, spec: { storageClassName: '', accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }],
    },
  },
  {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'prometheus-single', namespace: NAMESPACE },
    spec: {
      replicas: 1, selector: { matchLabels: single },
      template: {
        // The seed's shape: its TSDB on an emptyDir, which this test accepts.
        metadata: { labels: single, annotations: { 'thanos-injector/ephemeral-tsdb': 'allow' } },
        spec: {
          containers: [server()], securityContext,
          volumes: [{ name: 'config-volume', configMap: { name: 'prometheus-single' } }, { name: 'storage-volume', emptyDir: {} }],
        },
      },
    },
  },
].map((o) => JSON.stringify(o)).join('\n'));

// Registration as the chart's watch runs it, here a process of the test: pod IPs, so Query follows
// each new pod within seconds. Like the chart's, it is restarted when the configuration changes.
const metricsPort = await freePort();
const startRegister = () => startProcess(t, process.execPath, [join(root, 'src/main.ts'), 'register', '--watch', '--resync', '5', '--metrics-port', String(metricsPort),
  '--metrics-address', '127.0.0.1', '--query-namespace', QUERY_NAMESPACE, '--endpoints', 'pod-ip', '-n', NAMESPACE,
  '--webhook-config', 'tsi-thanos-sidecar-injector', '--config', join(stack.work, 'config.yaml')], root, cluster.env);
let registerWatch = startRegister();

interface PodJson {
  metadata: { name: string; uid: string; labels?: Record<string, string> };
  spec: { initContainers?: { name: string; image: string; args: string[]; resources?: { limits?: Record<string, string> } }[] };
  status: { podIP?: string; conditions?: { type: string; status: string }[] };
}
const isReady = (pod: PodJson) => pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
async function readyPods(namespace: string, count: number): Promise<PodJson[]> {
  return waitFor(`${count} Ready pod(s) in ${namespace}`, async () => {
    const ready = (JSON.parse(await cluster.kubectlOk(['-n', namespace, 'get', 'pods', '-o', 'json'])) as { items: PodJson[] }).items.filter(isReady);
    return ready.length === count ? ready : undefined;
  }, 240_000, 2000);
}
async function queryApi<T>(path: string): Promise<T> {
  const [query] = await readyPods(QUERY_NAMESPACE, 1);
  return JSON.parse(await cluster.kubectlOk(['get', '--raw', `/api/v1/namespaces/${QUERY_NAMESPACE}/pods/${query!.metadata.name}:10902/proxy${path}`])) as T;
}
interface Series { metric: Record<string, string>; values?: [number, string][] }
const UP = 'up{job="prometheus",cluster="eu1"}';
/** The pair's series through Query, deduplicated: how many (asked at the Query pod's IP, as fast as a client would). */
async function dedupInstant(queryIp: string): Promise<number> {
  const response = await fetch(`http://${queryIp}:10902/api/v1/query?query=${encodeURIComponent(UP)}&dedup=true`, { signal: AbortSignal.timeout(5000) });
  const answer = (await response.json()) as { status: string; data: { result: Series[] } };
  return answer.status === 'success' ? answer.data.result.length : -1;
}
async function outdatedMetric(): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const line = text.split('\n').find((l) => l.startsWith(`thanos_injector_outdated_sidecar_pods{namespace="${NAMESPACE}"} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}
const sidecarOf = (pod: PodJson) => pod.spec.initContainers?.find((c) => c.name === 'thanos-sidecar');
/** The 'sidecar up to date' rows of `check -n`, by pod. */
function currentRows(stdout: string): string[] {
  return stdout.split('\n').filter((line) => line.includes('sidecar up to date'));
}

await readyPods(NAMESPACE, 3);
await waitFor('Query to list the three sidecars', async () => {
  const stores = await queryApi<{ data: Record<string, { name: string; lastError: string | null }[]> }>('/api/v1/stores');
  return Object.values(stores.data).flat().filter((s) => s.lastError === null).length === 3 ? true : undefined;
}, 180_000, 2000).catch((error: Error) => {
  throw new Error(`${error.message}; register: ${registerWatch.log().slice(-2000)}`);
});
const queryIp = (await readyPods(QUERY_NAMESPACE, 1))[0]!.status.podIP!;
await waitFor('a deduplicated answer for the pair', async () => ((await dedupInstant(queryIp)) === 1 ? true : undefined), 120_000, 2000);

void t.test('helm upgrade changes the sidecar: check names each running pod outdated with what differs, the metric counts them', async (t) => {
  t.equal(await waitFor('the metric at 0 before the upgrade', outdatedMetric, 60_000, 1000), 0, 'nothing outdated before');
  const before = await thanosInjector(['check', '-n', NAMESPACE], cluster.env);
  t.equal(currentRows(before.stdout).filter((row) => / ok /.test(row)).length, 3, `each pod current before:\n${currentRows(before.stdout).join('\n')}`);

  await injector.upgrade(['--set', 'injection.logLevel=debug', '--set', 'injection.resources.limits.memory=768Mi', '--set', `injection.image=${UPGRADED_IMAGE}`]);
  const exited = new Promise((resolve) => registerWatch.child.once('exit', resolve));
  registerWatch.child.kill('SIGTERM');
  await exited;
  registerWatch = startRegister();
  const check = await thanosInjector(['check', '-n', NAMESPACE], cluster.env);
  t.comment(check.stdout);
  t.equal(check.code, 0, 'outdated sidecars are a warning: they still upload (exit 0)');
  const rows = currentRows(check.stdout);
  t.equal(rows.length, 3, 'one row per pod');
  for (const row of rows) {
    t.match(row, / warn .*outdated: image /, 'a warning: outdated');
    t.match(row, `image ${images.thanos} -> ${UPGRADED_IMAGE}`, 'the image, before and after');
    t.match(row, 'flags --log.level=info -> --log.level=debug', 'the flag');
    t.match(row, /resources \{.*memory:512Mi.*\} -> \{.*memory:768Mi.*\}/, 'the memory limit');
    t.match(row, /roll it: kubectl -n monitoring rollout restart (statefulset\/prometheus-server|deployment\/prometheus-single), or thanos-injector rollout -n monitoring/, 'and how to roll it');
  }
  t.equal(await waitFor('register to count the outdated pods', async () => ((await outdatedMetric()) === 3 ? 3 : undefined), 60_000, 1000), 3, 'thanos_injector_outdated_sidecar_pods{namespace="monitoring"} 3');
  const events = JSON.parse(await cluster.kubectlOk(['-n', NAMESPACE, 'get', 'events', '--field-selector', 'reason=ThanosSidecarOutdated', '-o', 'json'])) as { items: { message: string }[] };
  t.ok(events.items.length >= 3, `a ThanosSidecarOutdated event on each pod: ${events.items[0]?.message ?? ''}`);
});

void t.test('rollout: the pair one at a time while Query keeps answering, the Deployment restarted; every pod current after', async (t) => {
  const before = new Map((await readyPods(NAMESPACE, 3)).map((pod) => [pod.metadata.name, pod.metadata.uid]));
  const dry = await thanosInjector(['rollout', '-n', NAMESPACE, '--dry-run'], cluster.env);
  t.equal(dry.code, 0, dry.stderr);
  t.match(dry.stdout, /monitoring\s+evict one at a time \(the replicas of StatefulSet\/prometheus-server\)/);
  t.match(dry.stdout, /monitoring\s+restart Deployment prometheus-single/);
  t.match(dry.stdout, 'dry run: nothing done');

  // Every second, the pair's series through Query, deduplicated: it must never go missing.
  const answers: number[] = [];
  let polling = true;
  const poller = (async () => {
    while (polling) {
      answers.push(await dedupInstant(queryIp).catch(() => -1));
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  })();
  const started = Date.now();
  const rollout = await thanosInjector(['rollout', '-n', NAMESPACE, '--timeout', '5m'], cluster.env);
  const ended = Date.now();
  polling = false;
  await poller;
  t.comment(rollout.stdout);
  t.equal(rollout.code, 0, `rollout exits 0 ${rollout.stderr}`);
  t.match(rollout.stdout, 'thanos query: Service thanos-injector/tsi-thanos-sidecar-injector-query:9090');
  const replaced = [...rollout.stdout.matchAll(/monitoring\/(prometheus-server-\d): replaced by \1 in \d+ s: ready, listed by Thanos Query; sidecar current/g)].map((m) => m[1]);
  t.same(replaced, ['prometheus-server-0', 'prometheus-server-1'], 'each replica replaced, in order, listed by Query before the next');
  t.match(rollout.stdout, /Deployment prometheus-single: rolled out in \d+ s/);
  t.match(rollout.stdout, 'rollout done');
  t.comment(`rollout took ${((ended - started) / 1000).toFixed(0)} s; ${answers.length} deduplicated queries: ${answers.join(' ')}`);
  t.ok(answers.length >= (ended - started) / 2000, 'Query was asked all along (at least every 2 s)');
  t.same(answers.filter((n) => n !== 1), [], 'every answer held the pair\'s one deduplicated series');

  // No step of the rollout's window without a sample: count_over_time over 20 s windows, every 10 s.
  const range = await queryApi<{ data: { result: Series[] } }>(`/api/v1/query_range?query=${encodeURIComponent(`count_over_time(${UP}[20s])`)}&start=${Math.floor(started / 1000)}&end=${Math.floor(ended / 1000) - 10}&step=10&dedup=true`);
  const steps = Math.floor((Math.floor(ended / 1000) - 10 - Math.floor(started / 1000)) / 10) + 1;
  t.equal(range.data.result.length, 1, 'one series over the window');
  t.equal(range.data.result[0]?.values?.length, steps, `a value at each of the ${steps} steps: no gap`);

  const after = await readyPods(NAMESPACE, 3);
  for (const pod of after) {
    t.not(pod.metadata.uid, before.get(pod.metadata.name), `${pod.metadata.name}: a new pod`);
    const sidecar = sidecarOf(pod);
    t.equal(sidecar?.image, UPGRADED_IMAGE, `${pod.metadata.name}: the new image`);
    t.ok(sidecar?.args.includes('--log.level=debug'), `${pod.metadata.name}: the new flag`);
    t.equal(sidecar?.resources?.limits?.memory, '768Mi', `${pod.metadata.name}: the new limit`);
  }
  const check = await thanosInjector(['check', '-n', NAMESPACE], cluster.env);
  t.equal(check.code, 0, check.stdout);
  // The Deployment's old pod may still be terminating (kubectl's rollout is done once the new one is available): not judged.
  const rows = currentRows(check.stdout);
  t.same(rows.filter((row) => !/ ok .*is what the current configuration injects|skip .*the pod is terminating/.test(row)), [], 'check: no sidecar outdated');
  t.same(after.map((pod) => rows.some((row) => row.includes(`pod ${pod.metadata.name}: thanos-sidecar is what the current configuration injects (${UPGRADED_IMAGE})`))), [true, true, true], 'each new pod current');
  t.equal(await waitFor('the metric back at 0', async () => ((await outdatedMetric()) === 0 ? 0 : undefined), 60_000, 1000), 0);
  const again = await thanosInjector(['rollout', '-n', NAMESPACE], cluster.env);
  t.match(again.stdout, 'nothing to roll', 'a second rollout has nothing to do');
});
