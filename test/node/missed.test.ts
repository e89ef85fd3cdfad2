// 5. Missed pods come back, on a real node: with the webhook's failurePolicy Ignore and the injector
//    down, the seed's Deployment starts a Prometheus pod without the sidecar; `register` reports it
//    (exit 3, a ThanosSidecarMissing event on the pod); once the injector is back,
//    `register --restart-uninjected` deletes it, and its replacement runs injected and uploads.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { thanosInjector } from '../support/e2e.ts';
import { root, SHORT_BLOCKS, startInjector, startNodeStack, waitFor } from '../support/node.ts';

t.setTimeout(900_000);

const stack = await startNodeStack(t, 'thanos-injector-node-missed-');
const { cluster, minio, images } = stack;
const injector = await startInjector(t, stack, ['--set', `injection.image=${images.thanos}`, '--set', 'webhook.failurePolicy=Ignore']);
await cluster.kubectlOk(['create', 'namespace', 'monitoring']);
await cluster.kubectlOk(['label', 'namespace', 'monitoring', 'thanos-injection=enabled']);
await minio.createBucket('missed');
await cluster.kubectlOk(['-n', 'monitoring', 'create', 'secret', 'generic', 'thanos-objstore', `--from-literal=objstore.yml=${minio.objstore('missed')}`]);

interface PodJson {
  metadata: { name: string; uid: string };
  spec: { containers: { name: string }[]; initContainers?: { name: string }[] };
  status: { conditions?: { type: string; status: string }[] };
}
const hasSidecar = (pod: PodJson) => [...pod.spec.containers, ...(pod.spec.initContainers ?? [])].some((c) => c.name === 'thanos-sidecar');
const isReady = (pod: PodJson) => pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;

async function prometheusPods(): Promise<PodJson[]> {
  return (JSON.parse(await cluster.kubectlOk(['-n', 'monitoring', 'get', 'pods', '-l', 'app=prometheus', '-o', 'json'])) as { items: PodJson[] }).items;
}

void t.test('5. a Prometheus pod started while the injector was down is reported, restarted once it is back, and then runs injected and uploads', async (t) => {
  await injector.stop();
  interface Manifest {
    kind: string;
    metadata: { annotations?: Record<string, string> };
    spec?: { template: { metadata: { annotations?: Record<string, string> }; spec: { containers: { image?: string; imagePullPolicy?: string; resources?: unknown; args?: string[] }[] } } };
  }
  const seed = parseAllDocuments(readFileSync(join(root, 'test/fixtures/inject/seed-deployment.yaml'), 'utf8')).map((d) => d.toJS() as Manifest);
  for (const doc of seed) {
    if (!doc.spec) continue;
    const prometheus = doc.spec.template.spec.containers[0]!;
    prometheus.args?.push(...SHORT_BLOCKS);
    prometheus.image = images.prometheus3;
    prometheus.imagePullPolicy = 'IfNotPresent';
    prometheus.resources = { requests: { cpu: '100m', memory: '128Mi' } };
  }
  await cluster.kubectlOk(['apply', '-f', '-'], seed.map((d) => JSON.stringify(d)).join('\n'));
  const missed = await waitFor('the pod started without the injector', async () => (await prometheusPods()).find(isReady), 180_000, 1000);
  t.notOk(hasSidecar(missed), 'failurePolicy Ignore: the pod was admitted without the sidecar, and runs');

  const reported = await thanosInjector(['register', '--query-namespace', 'thanos-injector'], cluster.env);
  t.equal(reported.code, 3, 'register exits 3: labelled Prometheus pods run without the sidecar');
  t.match(reported.stdout, new RegExp(`monitoring\\s+${missed.metadata.name}\\s+ReplicaSet/\\S+\\s+not restarted \\(use --restart-uninjected\\)`), 'and lists the pod, not restarted');
  const events = await cluster.kubectlOk(['-n', 'monitoring', 'get', 'events', '--field-selector', `reason=ThanosSidecarMissing,involvedObject.name=${missed.metadata.name}`, '-o', 'name']);
  t.ok(events.trim().length > 0, 'a ThanosSidecarMissing event on the pod');

  await injector.start();
  const restarted = await thanosInjector(['register', '--query-namespace', 'thanos-injector', '--restart-uninjected'], cluster.env);
  t.match(restarted.stdout, new RegExp(`${missed.metadata.name}\\s+ReplicaSet/\\S+\\s+deleted so that ReplicaSet/\\S+ recreates it injected`), `register --restart-uninjected deletes it (exit ${restarted.code})`);

  const replacement = await waitFor('the replacement pod Ready with the sidecar', async () => {
    const pods = await prometheusPods();
    return pods.find((pod) => pod.metadata.uid !== missed.metadata.uid && hasSidecar(pod) && isReady(pod));
  }, 180_000, 1000);
  t.ok(hasSidecar(replacement), `the replacement ${replacement.metadata.name} runs injected`);
  const blocks = await waitFor('a block of the replacement in the bucket', async () => {
    const metas = (await minio.keys('missed')).filter((k) => k.endsWith('/meta.json'));
    return metas.length > 0 ? metas : undefined;
  }, 300_000, 5000);
  t.ok(blocks.length >= 1, `it uploads: ${blocks.join(', ')}`);
  const after = await thanosInjector(['register', '--query-namespace', 'thanos-injector'], cluster.env);
  t.equal(after.code, 0, `register finds nothing missing any more: ${after.stdout.trim().split('\n').slice(-1).join('')}`);
});
