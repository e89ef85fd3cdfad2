// 4. The injector in the cluster, as users install it (the README's "Install in a cluster"), from a
//    real OCI registry: the image built from our Dockerfile (buildah, on a local Node 24 base:
//    test/cluster/images.ts) pushed with `buildah push`, the chart packaged and pushed with
//    `helm push`, to go-containerregistry's registry (built from its Go module like the other tools:
//    test/cluster/registry/, 16 s cold) on 127.0.0.1 in the test's network namespace, plain HTTP,
//    for this file only; `helm install` (and later `helm upgrade`) from that registry with the
//    chart's defaults (2 replicas, certs.mode=auto, no webhook.url, injection.mode auto: both on this
//    cluster, so its post-install hook applies the policy) in a namespace that enforces Pod
//    Security "restricted". The node's containerd, started by this process in the same network
//    namespace (so on the same loopback), pulls the image over plain HTTP (a hosts.toml under the
//    node's registry config_path says so, as for any plain-HTTP registry; containerd 1.6 also
//    defaults a loopback host to plain HTTP without it): the image is not imported for this file,
//    containerd holds none of it before the install, and the registry's log shows containerd
//    fetching its config and every layer during the install. The apiserver calls the webhook through
//    its Service; the user's existing Prometheus is restarted and comes back injected; the
//    registration CronJob (same image) records it; `check` sees the whole chain. Then admissions
//    keep flowing while an injector pod is deleted and while `helm upgrade` rolls the Deployment:
//    not one pod is admitted without the sidecar, not one request fails. A helm upgrade of what is
//    injected leaves the Prometheus pod outdated (check says what differs) until `rollout`. Last,
//    helm uninstall: its pre-delete hook deletes the webhook configuration before the injector goes
//    (no creation refused, with failurePolicy Fail), the garbage collector what it owned, and
//    nothing of the release is left; running pods keep their sidecar, new ones start without.
import t from 'tap';
import { mkdirSync, readFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import * as https from 'node:https';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { ensureCosign, ensureRegistry } from '../cluster/build.ts';
import { copyImage, IMAGE_ARCHES } from '../cluster/images.ts';
import { thanosInjector } from '../support/e2e.ts';
import { root, startNodeStack, waitFor } from '../support/node.ts';
import { OciRegistry } from '../support/registry.ts';

t.setTimeout(900_000);
const execFileAsync = promisify(execFile);

// The injector's image is left out of containerd: it comes from the registry below.
const stack = await startNodeStack(t, 'thanos-injector-node-install-', { importInjector: false });
const { cluster, minio, images, node, work } = stack;
const RELEASE = 'thanos-injector';
const NAMESPACE = 'thanos-injector';
const FULLNAME = `${RELEASE}-thanos-sidecar-injector`;
/** The version users install: package.json's, as the chart's version and appVersion (the image's tag). */
const VERSION = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;

// The registry, for this file: the image and the chart pushed to it as a user pushes them.
const registry = await OciRegistry.start(t, (await ensureRegistry()).registry);
const IMAGE_REPOSITORY = `${registry.host}/thanos-sidecar-injector`;
const IMAGE = `${IMAGE_REPOSITORY}:${VERSION}`;
const CHART = `oci://${registry.host}/charts/thanos-sidecar-injector`;
/** helm's OCI flags for CHART. */
const FROM_REGISTRY = ['--version', VERSION, '--plain-http'];
/** helm's cache, config and registry config in the test's folder, not the home directory. */
const HELM_HOMES = { HELM_CACHE_HOME: join(work, 'helm', 'cache'), HELM_CONFIG_HOME: join(work, 'helm', 'config'), HELM_DATA_HOME: join(work, 'helm', 'data') };
{
  const pushStarted = Date.now();
  // The release's image: a multi-arch index of linux/amd64 and linux/arm64.
  await copyImage(IMAGE_ARCHES.map((arch) => images.injectorPlatforms[arch]), `docker://${IMAGE}`, work, ['--tls-verify=false']);
  const packaged = join(work, 'chart');
  mkdirSync(packaged);
  await cluster.helmOk(['package', join(root, 'charts/thanos-sidecar-injector'), '--version', VERSION, '--app-version', VERSION, '--destination', packaged], undefined, { env: HELM_HOMES });
  await cluster.helmOk(['push', join(packaged, `thanos-sidecar-injector-${VERSION}.tgz`), `oci://${registry.host}/charts`, '--plain-http'], undefined, { env: HELM_HOMES });
  t.comment(`registry on ${registry.host}: image ${IMAGE} (buildah push) and chart ${CHART}:${VERSION} (helm push) in ${((Date.now() - pushStarted) / 1000).toFixed(1)} s`);
}
// containerd pulls from it over plain HTTP (the node's registry config_path).
t.comment(`containerd: ${node.plainHttpRegistry(registry.host)}`);
/** Injector pods deleted one after the other under load (a lost call is a race: give it chances). */
const DELETIONS = 3;

interface PodJson {
  metadata: { name: string; annotations?: Record<string, string>; deletionTimestamp?: string };
  spec: { containers: { name: string }[]; initContainers?: { name: string }[] };
  status: { conditions?: { type: string; status: string }[]; containerStatuses?: { name: string; image: string; imageID: string }[] };
}
/** The names of the pod's containers, init containers (the native sidecar is one) included. */
const containers = (pod: PodJson) => [...(pod.spec.initContainers ?? []), ...pod.spec.containers].map((c) => c.name).sort();
const ready = (pod: PodJson) => pod.metadata.deletionTimestamp === undefined && pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;

async function pods(namespace: string, selector: string): Promise<PodJson[]> {
  return (JSON.parse(await cluster.kubectlOk(['-n', namespace, 'get', 'pods', '-l', selector, '-o', 'json'])) as { items: PodJson[] }).items;
}

/** The injector pods, once exactly `count` are Ready and none is terminating. */
function injectorPods(count: number): Promise<PodJson[]> {
  return waitFor(`${count} Ready injector pods and none terminating`, async () => {
    const list = await pods(NAMESPACE, 'app.kubernetes.io/component=webhook');
    return list.length === count && list.every(ready) ? list : undefined;
  }, 240_000, 1000).catch(async (error: Error) => {
    const described = await cluster.kubectl(['-n', NAMESPACE, 'describe', 'pods', '-l', 'app.kubernetes.io/component=webhook']);
    throw new Error(`${error.message}\n${described.stdout.slice(-4000)}`);
  });
}

// The user's cluster before the install: a namespace with the seed's Prometheus, running.
await cluster.kubectlOk(['create', 'namespace', 'monitoring']);
{
  const docs = parseAllDocuments(readFileSync(join(root, 'test/fixtures/inject/seed-deployment.yaml'), 'utf8')).map((d) => d.toJS() as {
    kind: string;
    spec?: { template: { spec: { containers: { image?: string; imagePullPolicy?: string; resources?: unknown }[] } } };
  });
  for (const doc of docs) {
    const prometheus = doc.spec?.template.spec.containers[0];
    if (!prometheus) continue;
    prometheus.image = images.prometheus3;
    prometheus.imagePullPolicy = 'IfNotPresent';
    prometheus.resources = { requests: { cpu: '100m', memory: '128Mi' } };
  }
  await cluster.kubectlOk(['apply', '-f', '-'], docs.map((d) => JSON.stringify(d)).join('\n'));
}
await minio.createBucket('install');

/** The images containerd holds whose reference names the injector's repository. */
async function injectorImagesInContainerd(): Promise<string[]> {
  const listed = await node.ctr(['images', 'ls', '-q']);
  if (listed.code !== 0) throw new Error(`ctr images ls failed: ${listed.stderr}`);
  return listed.stdout.split('\n').filter((ref) => ref.includes('thanos-sidecar-injector')).sort();
}

void t.test('4. the image and the chart in the registry are signed with cosign: cosign verify passes with the public key, a signature moved to another image does not', async (t) => {
  const cosign = await ensureCosign();
  // A key pair made for this test (no password, nothing sent to a transparency log); sigstore's cache in the test's folder.
  const env = { ...process.env, COSIGN_PASSWORD: '', TUF_ROOT: join(work, 'sigstore'), HOME: work };
  const run = (args: string[]) => execFileAsync(cosign, args, { cwd: work, env, timeout: 120_000 }).then(
    (r) => ({ code: 0, out: `${r.stdout}${r.stderr}` }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` }),
  );
  t.equal((await run(['generate-key-pair', '--output-key-prefix', 'install'])).code, 0, 'cosign generate-key-pair');
  const registryFlags = ['--allow-http-registry', '--allow-insecure-registry'];
  const index = await registry.manifest('thanos-sidecar-injector', VERSION);
  const chart = await registry.manifest('charts/thanos-sidecar-injector', VERSION);
  const signed = [`${IMAGE_REPOSITORY}@${index.digest}`, `${registry.host}/charts/thanos-sidecar-injector@${chart.digest}`];
  for (const ref of signed) {
    const signing = await run(['sign', '--yes', '--key', 'install.key', '--tlog-upload=false', ...registryFlags, ref]);
    if (signing.code !== 0) t.comment(signing.out);
    t.equal(signing.code, 0, `cosign sign ${ref}`);
  }
  const verify = (ref: string) => run(['verify', '--key', 'install.pub', '--insecure-ignore-tlog=true', ...registryFlags, ref]);
  for (const ref of [IMAGE, `${registry.host}/charts/thanos-sidecar-injector:${VERSION}`]) {
    const verified = await verify(ref);
    if (verified.code !== 0) t.comment(verified.out);
    t.equal(verified.code, 0, `cosign verify ${ref}: the signature of what the tag resolves to`);
  }
  // Another image (the index's linux/amd64 one, a different digest) given the index's signature: refused.
  const other = index.manifests?.find((m) => m.platform?.architecture === 'amd64')?.digest ?? 'none';
  await registry.tagManifest('thanos-sidecar-injector', `${index.digest.replace(':', '-')}.sig`, `${other.replace(':', '-')}.sig`);
  const moved = await verify(`${IMAGE_REPOSITORY}@${other}`);
  t.not(moved.code, 0, 'cosign verify of another digest carrying that signature fails');
  t.match(moved.out, /invalid signature|no matching signatures|mismatch/i, `and says why: ${moved.out.trim().split('\n').at(-1) ?? ''}`);
});

void t.test('4. helm install from an OCI registry of the image built from our Dockerfile: the webhook runs in the cluster and injects through its Service', async (t) => {
  t.same((await registry.catalog()).sort(), ['charts/thanos-sidecar-injector', 'thanos-sidecar-injector'], 'the registry holds the pushed image and chart (/v2/_catalog)');
  const index = await registry.manifest('thanos-sidecar-injector', VERSION);
  const platforms = Object.fromEntries((index.manifests ?? []).map((m) => [`${m.platform?.os}/${m.platform?.architecture}`, m.digest]));
  t.same(Object.keys(platforms).sort(), ['linux/amd64', 'linux/arm64'], `${IMAGE} resolves to ${index.digest}, an index (${index.mediaType}) of an image for each platform`);
  const manifest = await registry.manifest('thanos-sidecar-injector', platforms['linux/amd64'] ?? 'none');
  const arm64 = await registry.manifest('thanos-sidecar-injector', platforms['linux/arm64'] ?? 'none');
  const blobs = [manifest.config.digest, ...manifest.layers.map((l) => l.digest)];
  t.ok(manifest.layers.length > 0, `linux/amd64: ${manifest.digest} (${manifest.layers.length} layers)`);
  t.same(await injectorImagesInContainerd(), [], 'before the install containerd holds no image of the injector (not imported)');

  await cluster.kubectlOk(['create', 'namespace', NAMESPACE]);
  await cluster.kubectlOk(['label', 'namespace', NAMESPACE, 'pod-security.kubernetes.io/enforce=restricted']);
  // The README's command, from the registry the image and chart were pushed to.
  const logFrom = registry.log().length;
  await cluster.helmOk(['install', RELEASE, CHART, ...FROM_REGISTRY, '-n', NAMESPACE, '--create-namespace', '--set', `image.repository=${IMAGE_REPOSITORY}`], undefined, { env: HELM_HOMES });

  const injectors = await injectorPods(2);
  t.pass(`2 injector pods Ready (${injectors.map((p) => p.metadata.name).join(', ')}) under Pod Security "restricted"`);
  const image = await cluster.kubectlOk(['-n', NAMESPACE, 'get', 'deployment', FULLNAME, '-o', 'jsonpath={.spec.template.spec.containers[0].image}']);
  t.equal(image, IMAGE, 'the Deployment runs the image pushed to the registry, at the chart\'s appVersion tag');
  for (const pod of injectors) {
    const status = pod.status.containerStatuses?.find((c) => c.name === 'injector');
    t.equal(status?.imageID, `${IMAGE_REPOSITORY}@${index.digest}`, `${pod.metadata.name} runs the registry's index (imageID)`);
  }
  t.same(await injectorImagesInContainerd(), [`${IMAGE_REPOSITORY}@${index.digest}`, IMAGE].sort(), 'containerd now holds the image under the registry\'s references (ctr images ls)');
  const requests = registry.requestsSince(logFrom);
  t.ok(requests.some((r) => /^GET \/v2\/charts\/thanos-sidecar-injector\/(manifests|blobs)\//.test(r)), 'helm fetched the chart from the registry');
  t.same(blobs.filter((digest) => !requests.includes(`GET /v2/thanos-sidecar-injector/blobs/${digest}`)), [], `containerd fetched the linux/amd64 image's config and ${manifest.layers.length} layers from the registry during the install`);
  const arm64Only = [arm64.config.digest, ...arm64.layers.map((l) => l.digest)].filter((digest) => !blobs.includes(digest));
  t.ok(arm64Only.length > 0 && arm64Only.every((digest) => !requests.includes(`GET /v2/thanos-sidecar-injector/blobs/${digest}`)), `and none of the linux/arm64 image's own ${arm64Only.length} blobs: it pulled the platform the node needs`);
  const inside = await cluster.kubectlOk(['-n', NAMESPACE, 'exec', injectors[0]!.metadata.name, '-c', 'injector', '--', 'node', '-e',
    `const fs = require('fs'); let root; try { fs.writeFileSync('/app/probe', 'x'); root = 'writable'; } catch (e) { root = e.code; }
     fs.writeFileSync('/tmp/probe', 'x'); console.log(JSON.stringify({ uid: process.getuid(), gid: process.getgid(), root, node: process.version }));`]);
  const facts = JSON.parse(inside) as { uid: number; gid: number; root: string; node: string };
  t.same({ uid: facts.uid, gid: facts.gid, root: facts.root }, { uid: 65532, gid: 65532, root: 'EROFS' }, `runs as 65532:65532 on a read-only root filesystem, /tmp writable (${facts.node})`);
  const running = await cluster.kubectlOk(['-n', NAMESPACE, 'exec', injectors[0]!.metadata.name, '-c', 'injector', '--', 'node', '/app/dist/main.js', '--version']);
  t.equal(running, `thanos-injector ${VERSION}\n`, 'the pulled image says the release\'s version (--version)');

  const webhooks = await waitFor('the webhooks\' caBundle set by the injector (certs.mode=auto)', async () => {
    const config = await cluster.getJson<{ webhooks: { name: string; clientConfig: { caBundle?: string; url?: string; service?: { name: string; namespace: string } } }[] }>(['get', 'mutatingwebhookconfiguration', FULLNAME]);
    return config?.webhooks.every((w) => w.clientConfig.caBundle) ? config.webhooks : undefined;
  }, 60_000, 500);
  t.same(webhooks.map((w) => [w.clientConfig.url, w.clientConfig.service?.name]), webhooks.map(() => [undefined, FULLNAME]), 'every webhook calls the Service, none a URL');
  // Mode auto is both on this cluster: the post-install hook (the same image) applied the policy.
  const policy = await cluster.getJson<{ metadata: { annotations?: Record<string, string> } }>(['get', 'mutatingadmissionpolicy', FULLNAME]);
  t.match(policy?.metadata.annotations?.['thanos-injector/generation'], /^[0-9a-f]{12}$/, `injection mode auto is both here: the hook applied MutatingAdmissionPolicy ${FULLNAME}`);

  // The README's next steps: the objstore Secret, the namespace label, a restart.
  await cluster.kubectlOk(['-n', 'monitoring', 'create', 'secret', 'generic', 'thanos-objstore', `--from-literal=objstore.yml=${minio.objstore('install')}`]);
  await cluster.kubectlOk(['label', 'namespace', 'monitoring', 'thanos-injection=enabled']);
  await cluster.kubectlOk(['-n', 'monitoring', 'rollout', 'restart', 'deployment', 'prometheus-deploy']);
  await cluster.kubectlOk(['-n', 'monitoring', 'rollout', 'status', 'deployment', 'prometheus-deploy', '--timeout=240s'], undefined, { timeoutMs: 250_000 });
  const [prometheus] = (await pods('monitoring', 'app=prometheus')).filter(ready);
  t.ok(prometheus, 'the restarted Prometheus is Ready');
  t.same(containers(prometheus!), ['prometheus', 'thanos-sidecar'], 'with the sidecar');
  const described = await cluster.kubectlOk(['-n', 'monitoring', 'describe', 'pod', prometheus!.metadata.name]);
  t.match(described, /^\s+thanos-sidecar:$/m, '`kubectl describe pod` lists the thanos-sidecar container');
  t.match(described, /thanos-injector\/status:\s+\{"version"/, 'and the thanos-injector/status annotation');
  // Mode auto is both here: the policy takes the seed's shape (its emptyDir warning given by the
  // ValidatingAdmissionPolicy); the webhook serves the shapes it leaves (the load test below).
  t.match(prometheus!.metadata.annotations?.['thanos-injector/status'], /"policy":"[0-9a-f]{12}"/, 'injected by the policy the hook applied');

  // The registration CronJob (every minute, the same image) records the pod and lists its namespace.
  await waitFor('the Event ThanosSidecarRegistered on the Prometheus pod', async () => {
    const events = await cluster.kubectlOk(['-n', 'monitoring', 'get', 'events', '--field-selector', `reason=ThanosSidecarRegistered,involvedObject.name=${prometheus!.metadata.name}`, '-o', 'name']);
    return events.trim() || undefined;
  }, 180_000, 2000);
  const endpoints = await cluster.kubectlOk(['-n', NAMESPACE, 'get', 'configmap', 'thanos-query-endpoints', '-o', 'jsonpath={.data.endpoints\\.yaml}']);
  t.match(endpoints, 'dnssrv+_grpc._tcp.thanos-sidecar.monitoring.svc.cluster.local', 'the endpoints ConfigMap lists the namespace\'s sidecars');

  const check = await thanosInjector(['check', '-n', 'monitoring', '--pod', prometheus!.metadata.name, '-o', 'json'], cluster.env);
  const rows = Object.fromEntries((JSON.parse(check.stdout || '{"checks":[]}') as { checks: { name: string; status: string; detail: string }[] }).checks.map((r) => [r.name, r]));
  t.comment(Object.values(rows).map((r) => `${r.status} ${r.name}: ${r.detail}`).join('\n'));
  for (const row of ['injector reachable', 'caBundle', 'namespace injection', 'pod would be injected', 'pod injected', 'objstore secret', 'prometheus external_labels']) {
    t.equal(rows[row]?.status, 'ok', `check: ${row}: ${rows[row]?.detail ?? 'missing'}`);
  }
});

void t.test('4. no failed admission while an injector pod is deleted and while helm upgrade rolls the Deployment', async (t) => {
  const admissions = new Admissions();
  const steady = await admissions.during(() => new Promise((resolve) => setTimeout(resolve, 5000)));
  t.ok(steady.injected >= 5 && steady.failures.length === 0, `steady: ${steady.injected} dry-run pods, all injected`);

  for (let round = 1; round <= DELETIONS; round++) {
    const [victim] = await injectorPods(2);
    const deleted = await admissions.during(async () => {
      await cluster.kubectlOk(['-n', NAMESPACE, 'delete', 'pod', victim!.metadata.name, '--wait=true'], undefined, { timeoutMs: 120_000 });
      await injectorPods(2);
    });
    t.same(deleted.failures, [], `${round}/${DELETIONS}: injector pod ${victim!.metadata.name} deleted and replaced: ${deleted.injected} dry-run pods, all injected`);
    t.ok(deleted.injected >= 10, `admissions kept flowing through it (${deleted.injected})`);
  }

  const before = new Set((await injectorPods(2)).map((p) => p.metadata.name));
  const rolled = await admissions.during(async () => {
    await cluster.helmOk(['upgrade', RELEASE, CHART, ...FROM_REGISTRY, '-n', NAMESPACE, '--reuse-values', '--set', 'logLevel=debug'], undefined, { env: HELM_HOMES });
    await cluster.kubectlOk(['-n', NAMESPACE, 'rollout', 'status', 'deployment', FULLNAME, '--timeout=240s'], undefined, { timeoutMs: 250_000 });
    const after = await injectorPods(2);
    if (after.some((p) => before.has(p.metadata.name))) throw new Error('helm upgrade did not replace the injector pods');
  });
  t.same(rolled.failures, [], `helm upgrade rolled both injector pods: ${rolled.injected} dry-run pods, all injected`);
  t.ok(rolled.injected >= 10, `admissions kept flowing through the roll (${rolled.injected})`);
});

void t.test('4. helm upgrade of what is injected (the README\'s own command): check names the pod outdated, rollout brings it current', async (t) => {
  await cluster.helmOk(['upgrade', RELEASE, CHART, ...FROM_REGISTRY, '-n', NAMESPACE, '--reuse-values', '--set', 'injection.logLevel=debug', '--set', 'injection.resources.limits.memory=768Mi'], undefined, { env: HELM_HOMES });
  await cluster.kubectlOk(['-n', NAMESPACE, 'rollout', 'status', 'deployment', FULLNAME, '--timeout=240s'], undefined, { timeoutMs: 250_000 });
  await injectorPods(2);
  const check = await thanosInjector(['check', '-n', 'monitoring'], cluster.env);
  const row = check.stdout.split('\n').find((line) => line.startsWith('sidecar up to date'));
  t.equal(check.code, 0, 'a warning, not a failure');
  // Mode auto is both here: the seed's Deployment (its emptyDir warned about) is the policy's, judged by its generation too.
  t.match(row, /warn .*outdated: injected by policy generation [0-9a-f]{12}; the current configuration makes generation [0-9a-f]{12}; flags --log\.level=info -> --log\.level=debug; resources \{.*memory:512Mi.*\} -> \{.*memory:768Mi.*\}; roll it: kubectl -n monitoring rollout restart deployment\/prometheus-deploy/, row ?? check.stdout);
  const rollout = await thanosInjector(['rollout', '-n', 'monitoring', '--timeout', '4m'], cluster.env);
  t.equal(rollout.code, 0, rollout.stdout + rollout.stderr);
  t.match(rollout.stdout, /restarting Deployment prometheus-deploy[\s\S]*Deployment prometheus-deploy: rolled out in \d+ s[\s\S]*rollout done/);
  const after = await thanosInjector(['check', '-n', 'monitoring'], cluster.env);
  t.match(after.stdout, /sidecar up to date\s+ok\s+pod prometheus-deploy-[a-z0-9-]+: thanos-sidecar is what the current configuration injects/, 'current after the rollout');
});

void t.test('4. helm uninstall: the webhook configuration goes first (no pod creation refused, even with failurePolicy Fail), then nothing of ours is left; running pods keep their sidecar, new ones start without, rollout re-creates them without', async (t) => {
  await cluster.helmOk(['upgrade', RELEASE, CHART, ...FROM_REGISTRY, '-n', NAMESPACE, '--reuse-values', '--set', 'webhook.failurePolicy=Fail'], undefined, { env: HELM_HOMES });
  // What the injector made at run time is owned by the webhook configuration by now (register runs every minute).
  const uid = (await cluster.getJson<{ metadata: { uid: string } }>(['get', 'mutatingwebhookconfiguration', FULLNAME]))?.metadata.uid;
  const owned = [['-n', 'monitoring', 'service', 'thanos-sidecar'], ['-n', NAMESPACE, 'configmap', 'thanos-query-endpoints'], ['-n', NAMESPACE, 'secret', `${FULLNAME}-tls`]];
  for (const object of owned) {
    await waitFor(`${object.join(' ')} owned by the webhook configuration`, async () => {
      const found = await cluster.getJson<{ metadata: { ownerReferences?: { uid: string }[] } }>(['get', ...object]);
      return found?.metadata.ownerReferences?.some((o) => o.uid === uid) ? true : undefined;
    }, 150_000, 2000);
    t.pass(`${object.slice(2).join('/')} is owned by MutatingWebhookConfiguration ${FULLNAME}`);
  }
  const [running] = (await pods('monitoring', 'app=prometheus')).filter(ready);

  // While helm uninstall runs: pod creations (dry runs), and when the webhook configuration and the injector's Deployment disappear.
  const gone: Record<string, number> = {};
  let watching = true;
  const watched = [['webhook configuration', `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${FULLNAME}`], ['injector Deployment', `/apis/apps/v1/namespaces/${NAMESPACE}/deployments/${FULLNAME}`]] as const;
  const watcher = (async () => {
    while (watching && watched.some(([kind]) => gone[kind] === undefined)) {
      for (const [kind, path] of watched) {
        if (gone[kind] === undefined && (await cluster.kubectl(['get', '--raw', path])).code !== 0) gone[kind] = Date.now();
      }
    }
  })();
  const admissions = new Admissions();
  const during = await admissions.during(() => cluster.helmOk(['uninstall', RELEASE, '-n', NAMESPACE, '--wait', '--timeout', '3m'], undefined, { env: HELM_HOMES, timeoutMs: 200_000 }));
  watching = false;
  await watcher;
  t.ok(gone['webhook configuration'] !== undefined && gone['injector Deployment'] !== undefined, 'both gone');
  t.ok(gone['webhook configuration']! < gone['injector Deployment']!, `the webhook configuration went ${gone['injector Deployment']! - gone['webhook configuration']!} ms before the injector's Deployment`);
  const refused = during.failures.filter((failure) => !failure.startsWith('admitted without the sidecar'));
  t.same(refused, [], `no pod creation refused during the uninstall (failurePolicy Fail): ${during.injected} injected, ${during.failures.length - refused.length} admitted without the sidecar once the webhook was gone`);

  let stillThere = '';
  await waitFor('the garbage collector to delete what the webhook configuration owned', async () => {
    stillThere = (await cluster.kubectlOk(['get', 'services,configmaps,secrets', '-A', '-l', 'app.kubernetes.io/managed-by=thanos-sidecar-injector', '-o', 'custom-columns=NAMESPACE:.metadata.namespace,NAME:.metadata.name,KIND:.kind,OWNERS:.metadata.ownerReferences[*].uid', '--no-headers'])).trim();
    return stillThere === '' ? true : undefined;
  }, 60_000, 1000).catch(() => undefined);
  t.equal(stillThere, '', 'no Service, ConfigMap or Secret labelled app.kubernetes.io/managed-by=thanos-sidecar-injector in any namespace');
  const kinds = 'all,configmaps,secrets,serviceaccounts,roles,rolebindings,clusterroles,clusterrolebindings,mutatingwebhookconfigurations';
  let leftovers = '';
  // The pods of finished registration Jobs go with their Job, through the garbage collector too.
  await waitFor('nothing of the release left', async () => {
    leftovers = (await cluster.kubectlOk(['get', kinds, '-A', '-l', `app.kubernetes.io/instance=${RELEASE}`, '-o', 'name'])).trim();
    return leftovers === '' ? true : undefined;
  }, 60_000, 1000).catch(() => undefined);
  t.equal(leftovers, '', 'nothing of the release left, the uninstall hook\'s Job, ServiceAccount and RBAC included');
  t.equal(await cluster.getJson(['get', 'mutatingwebhookconfiguration', FULLNAME]), undefined, 'no webhook configuration');
  t.equal(await cluster.getJson(['get', 'mutatingadmissionpolicy', FULLNAME]), undefined, 'no injection policy (the hook applied it, the uninstall hook deleted it)');
  await waitFor('the garbage collector to delete the warnings\' policy with it', async () => ((await cluster.getJson(['get', 'validatingadmissionpolicy', FULLNAME])) === undefined ? true : undefined), 60_000, 1000);
  t.pass('nor the ValidatingAdmissionPolicy of its warnings (owned by it)');
  t.equal((await cluster.kubectlOk(['get', 'mutatingadmissionpolicybindings,validatingadmissionpolicybindings', '-o', 'name'])).trim(), '', 'and no binding');

  const still = await cluster.getJson<PodJson>(['-n', 'monitoring', 'get', 'pod', running!.metadata.name]);
  t.ok(still && ready(still), 'the injected Prometheus keeps running');
  t.same(containers(still!), ['prometheus', 'thanos-sidecar'], 'with its sidecar');
  await cluster.kubectlOk(['-n', 'monitoring', 'run', 'fresh-prometheus', `--image=${images.prometheus3}`, '--image-pull-policy=IfNotPresent', '--restart=Never', '--labels=app=fresh']);
  const fresh = await cluster.getJson<PodJson>(['-n', 'monitoring', 'get', 'pod', 'fresh-prometheus']);
  t.same(containers(fresh!), ['fresh-prometheus'], 'a new Prometheus pod is created without the sidecar');

  const rollout = await thanosInjector(['rollout', '-n', 'monitoring', '--timeout', '4m'], cluster.env);
  t.equal(rollout.code, 0, rollout.stdout + rollout.stderr);
  t.match(rollout.stdout, 'configuration: none (no injector is installed');
  t.match(rollout.stdout, /Deployment prometheus-deploy: rolled out in \d+ s/);
  const [recreated] = (await pods('monitoring', 'app=prometheus')).filter(ready);
  t.not(recreated?.metadata.name, running!.metadata.name, 'a new pod');
  t.same(containers(recreated!), ['prometheus'], 'rollout after the uninstall: re-created without the sidecar');
});

/**
 * Creates Prometheus pods with dryRun=All (admission runs, nothing is stored), two at a time, for
 * as long as an action runs (and 3 s after it, while replaced pods drain), and tells how many came
 * back injected and which did not (the default failurePolicy Ignore turns a failed call into a pod
 * admitted without the sidecar, so both count).
 */
class Admissions {
  private readonly agent = new https.Agent({
    keepAlive: true,
    ca: readFileSync(cluster.certs.ca),
    cert: readFileSync(cluster.certs.admin),
    key: readFileSync(cluster.certs.adminKey),
  });

  private create(): Promise<string | undefined> {
    const pod = JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { generateName: 'dry-run-', labels: { app: 'prometheus-dry-run' } },
      spec: { containers: [{ name: 'prometheus', image: images.prometheus3, args: ['--config.file=/etc/prometheus/prometheus.yml', '--storage.tsdb.path=/prometheus'] }] },
    });
    return new Promise((resolve) => {
      const request = https.request(`${cluster.server}/api/v1/namespaces/monitoring/pods?dryRun=All`, { method: 'POST', agent: this.agent, headers: { 'content-type': 'application/json' }, timeout: 30_000 }, (response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString()));
        response.on('end', () => {
          if (response.statusCode !== 201) return resolve(`HTTP ${response.statusCode}: ${body.slice(0, 300)}`);
          const created = JSON.parse(body) as PodJson;
          const injected = containers(created).includes('thanos-sidecar') && created.metadata.annotations?.['thanos-injector/status'] !== undefined;
          resolve(injected ? undefined : `admitted without the sidecar (${new Date().toISOString()})`);
        });
      });
      request.on('timeout', () => request.destroy(new Error('no answer in 30 s')));
      request.on('error', (error) => resolve(error.message));
      request.end(pod);
    });
  }

  async during(action: () => Promise<unknown>): Promise<{ injected: number; failures: string[] }> {
    const apiserverLog = join(cluster.dir, 'logs', 'kube-apiserver.log');
    const logFrom = readFileSync(apiserverLog).length;
    let running = true;
    let injected = 0;
    const failures: string[] = [];
    const worker = async () => {
      while (running) {
        const failure = await this.create();
        if (failure) failures.push(failure);
        else injected++;
      }
    };
    const workers = [worker(), worker()];
    try {
      await action();
      await new Promise((resolve) => setTimeout(resolve, 3000));
    } finally {
      running = false;
      await Promise.all(workers);
    }
    if (failures.length > 0) {
      // The apiserver's own words for each failed call (with failurePolicy Ignore it logs and admits).
      const log = readFileSync(apiserverLog).subarray(logFrom).toString().split('\n');
      failures.push(...log.filter((line) => /^W.*failed calling webhook/i.test(line)).slice(0, 5).map((line) => `kube-apiserver: ${line.slice(0, 600)}`));
    }
    return { injected, failures };
  }
}
