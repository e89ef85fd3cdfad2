// The seed's story on a real node: real Prometheus, the real Thanos sidecar and a real MinIO bucket
// (its happy path, the seed's Deployment injected and uploading, is core.test.ts).
// 1. The seed's manual set-up (no injection): Prometheus as nobody, the hand-added sidecar as the
//    Thanos image's uid 1001, a shared emptyDir: the sidecar logs the seed's
//    "hard link ... operation not permitted" and the bucket stays empty.
// 7. `thanos-injector check --pod` on the pod of 1 says what the test saw: the broken sidecar
//    fails on the hard-link error with its fix.
// 2b. The seed's user's next step: the PersistentVolume of 1 (its thanos/ folder owned by the old
//    sidecar's uid 1001, mode 2750: the "create upload dir: permission denied" trap) is reused by the
//    injected pod. The injector's fsGroup makes the kubelet give the volume's files to the pod's
//    group, group-writable, before the containers start, so the new sidecar (uid 65534) can write
//    there, and the blocks left behind are uploaded. (Volumes whose ownership the kubelet does not
//    manage, such as hostPath, keep the trap: `check` names it and its fix, test/check/uploads.test.ts.)
// 3.3 The seed's own step 3.3 in a labelled namespace: Prometheus and its hand-made sidecar named
//    `thanos` (no ports declared). The injector recognises it by what it runs: the pod is created
//    with exactly one sidecar, its own, and runs (before: a second sidecar that crash-looped on
//    "address already in use"). Annotated thanos-injector/existing-sidecar: share-user, the pod
//    gets only the pod-level user (the seed's step 8), and its own container uploads.
// Blocks are cut every 20 s (SHORT_BLOCKS, by hand as the post does), the first uploaded within
// about a minute.
import { ulidTime as blockTime } from '../../src/check/uploads.ts';
import t from 'tap';
import { admissions, containerLog, localVolume, SHORT_BLOCKS, startInjector, startNodeStack, waitFor } from '../support/node.ts';
import { ready, seedHelpers, UPLOAD_DEADLINE_MS, type ContainerSpec, type PodJson, type PodTemplate } from '../support/seed.ts';

t.setTimeout(1_200_000);

/** When a block was written (its name, a ULID, begins with the time). */
const ulidTime = (ulid: string) => blockTime(ulid) ?? 0;


const stack = await startNodeStack(t, 'thanos-injector-node-seed-');
const { cluster, minio, images } = stack;
const { seedManifests, podOf, readyPod, check } = seedHelpers(stack);

/** The pod's prometheus-data volume (an emptyDir in the seed) on the claim. */
function onClaim(pod: PodTemplate, claim: string): void {
  pod.spec.volumes = pod.spec.volumes.map((v) => ((v as { name: string }).name === 'prometheus-data' ? { name: 'prometheus-data', persistentVolumeClaim: { claimName: claim } } : v));
}

// Scenario 1's set-up: the seed's Deployment with the sidecar added by hand, in a namespace without
// the label, its data on a PersistentVolume (reused in 2b).
await cluster.kubectlOk(['create', 'namespace', 'seed-manual']);
await localVolume(stack, 'seed-manual', 'prometheus-data');
await minio.createBucket('seed-manual');
await cluster.kubectlOk(['-n', 'seed-manual', 'create', 'configmap', 'thanos-bucket', `--from-literal=bucket.yml=${minio.objstore('seed-manual')}`]);
await cluster.kubectlOk(['apply', '-f', '-'], seedManifests('seed-manual', (pod) => {
  handMadeSidecar(pod, 'thanos-sidecar', 'thanos-bucket');
  onClaim(pod, 'prometheus-data');
}));

/** The sidecar added by hand as the post does (step 3.3 names it `thanos`), its bucket configuration from a ConfigMap. */
function handMadeSidecar(pod: PodTemplate, name: string, configMap: string): void {
  (pod.spec.containers[0] as ContainerSpec).args?.push(...SHORT_BLOCKS);
  pod.spec.containers.push({
    name,
    image: images.thanos,
    imagePullPolicy: 'IfNotPresent',
    args: ['sidecar', '--prometheus.url=http://localhost:9090', '--tsdb.path=/prometheus', '--objstore.config-file=/etc/thanos/bucket.yml'],
    volumeMounts: [
      { name: 'prometheus-data', mountPath: '/prometheus' },
      { name: 'bucket-config', mountPath: '/etc/thanos/' },
    ],
  });
  pod.spec.volumes.push({ name: 'bucket-config', configMap: { defaultMode: 420, name: configMap } });
}

// The injector, for 2b and 3.3 (in force once started: startInjector waits for the webhook to inject).
const injector = await startInjector(t, stack, ['--set', `injection.image=${images.thanos}`]);

// Scenario 3.3's set-up: the post's step 3.3 Deployment in a labelled namespace.
await cluster.kubectlOk(['create', 'namespace', 'seed-own-sidecar']);
await cluster.kubectlOk(['label', 'namespace', 'seed-own-sidecar', 'thanos-injection=enabled']);
await minio.createBucket('seed-own-sidecar');
await cluster.kubectlOk(['-n', 'seed-own-sidecar', 'create', 'configmap', 'bucket-cm', `--from-literal=bucket.yml=${minio.objstore('seed-own-sidecar')}`]);
await cluster.kubectlOk(['apply', '-f', '-'], seedManifests('seed-own-sidecar', (pod) => handMadeSidecar(pod, 'thanos', 'bucket-cm')));

void t.test('1. the seed\'s manual set-up: the sidecar cannot hard-link the blocks and nothing is uploaded', async (t) => {
  const pod = await readyPod('seed-manual', 'app=prometheus', 'the hand-made pod');
  t.equal(pod.spec.securityContext?.runAsUser, undefined, 'no pod securityContext (as in the seed)');
  const failure = await waitFor('the sidecar to log the hard-link failure', async () => {
    const log = await containerLog(cluster, 'seed-manual', pod.metadata.name, 'thanos-sidecar');
    return /hard link.*operation not permitted/.exec(log)?.[0];
  }, UPLOAD_DEADLINE_MS, 5000);
  t.match(failure, /hard link block: hard link file chunks\/000001: link \/prometheus\/\w+\/chunks\/000001 \/prometheus\/thanos\/upload\/\w+\/chunks\/000001: operation not permitted/, `the seed's message: ${failure}`);
  const owners = await cluster.kubectlOk(['-n', 'seed-manual', 'exec', pod.metadata.name, '-c', 'prometheus', '--', 'sh', '-c', 'stat -c "%u %n" /prometheus/01*/meta.json | head -1; stat -c "%u %n" /prometheus/thanos']);
  t.match(owners, /^65534 \/prometheus\/01\w+\/meta\.json\n1001 \/prometheus\/thanos\n$/, `blocks owned by nobody, the sidecar's folder by 1001:\n${owners}`);
  t.same(await minio.keys('seed-manual'), [], 'the bucket stays empty');
});

void t.test('7. check --pod names the broken sidecar of 1: the hard-link failure and its fix', async (t) => {
  const manual = (await podOf('seed-manual', 'app=prometheus'))!;
  const broken = await check('seed-manual', manual.metadata.name);
  t.comment(Object.values(broken.rows).map((r) => `${r.status} ${r.name}: ${r.detail}`).join('\n'));
  t.equal(broken.code, 1, 'exit 1');
  t.match(broken.rows['sidecar uploads'], { status: 'fail', detail: /cannot hard-link Prometheus' block files, so nothing is uploaded \(.*operation not permitted\): Prometheus and the sidecar run as different users/ }, 'the hard-link failure, named');
  t.match(broken.rows['sidecar uploads']?.detail, /runAsUser, runAsGroup, fsGroup/, 'and its fix');
  t.match(broken.rows['pod would be injected'], { status: 'fail' }, 'the namespace is not labelled: no webhook selects the pod');
});

void t.test('2b. the volume of 1 reused by the injected pod: fsGroup hands the old sidecar\'s folder to the pod\'s group, the blocks left behind are uploaded', async (t) => {
  const manual = (await podOf('seed-manual', 'app=prometheus'))!;
  const listed = await cluster.kubectlOk(['-n', 'seed-manual', 'exec', manual.metadata.name, '-c', 'prometheus', '--', 'sh', '-c', 'for d in /prometheus/01*; do [ -f "$d/meta.json" ] && basename "$d"; done; stat -c "%u %a" /prometheus/thanos']);
  const lines = listed.trim().split('\n');
  const [uid, mode] = (lines.pop() ?? '').split(' ');
  t.ok(uid === '1001' && (parseInt(mode ?? '', 8) & 0o022) === 0, `the trap is set: thanos/ belongs to uid 1001, writable by no one else (uid ${uid}, mode ${mode})`);
  const leftBehind = lines;
  t.ok(leftBehind.length >= 1, `blocks the broken set-up left on the volume: ${leftBehind.join(', ')}`);

  // What the seed's user does next: drop the hand-added sidecar, opt the namespace in, keep the volume.
  await cluster.kubectlOk(['-n', 'seed-manual', 'delete', 'deployment', 'prometheus-deploy', '--wait=true'], undefined, { timeoutMs: 120_000 });
  await waitFor('the hand-made pod to be gone', async () => ((await podOf('seed-manual', 'app=prometheus')) === undefined ? true : undefined), 120_000, 1000);
  await cluster.kubectlOk(['label', 'namespace', 'seed-manual', 'thanos-injection=enabled']);
  await cluster.kubectlOk(['-n', 'seed-manual', 'create', 'secret', 'generic', 'thanos-objstore', `--from-literal=objstore.yml=${minio.objstore('seed-manual')}`]);
  await cluster.kubectlOk(['apply', '-f', '-'], seedManifests('seed-manual', (pod) => {
    (pod.spec.containers[0] as ContainerSpec).args?.push(...SHORT_BLOCKS);
    onClaim(pod, 'prometheus-data');
  }));

  const pod = await readyPod('seed-manual', 'app=prometheus', 'the injected pod on the reused volume');
  t.match(pod.spec.securityContext, { runAsUser: 65534, fsGroup: 65534 }, 'the injector set one user and fsGroup');
  const owner = await cluster.kubectlOk(['-n', 'seed-manual', 'exec', pod.metadata.name, '-c', 'prometheus', '--', 'stat', '-c', '%u %g %A', '/prometheus/thanos']);
  t.match(owner.trim(), /^1001 65534 d...rw[xs]/, `the kubelet gave thanos/ to the pod's group, group-writable (uid stays): ${owner.trim()}`);
  const keys = await waitFor('every block left behind in the bucket', async () => {
    const all = await minio.keys('seed-manual');
    return leftBehind.every((ulid) => all.includes(`${ulid}/meta.json`)) ? all : undefined;
  }, UPLOAD_DEADLINE_MS, 5000);
  t.pass(`the blocks left behind are uploaded (${keys.filter((k) => k.endsWith('/meta.json')).length} block(s) in the bucket now)`);
  const log = await containerLog(cluster, 'seed-manual', pod.metadata.name, 'thanos-sidecar');
  t.notMatch(log, /permission denied|operation not permitted/, 'no permission error in the sidecar\'s log');
});

void t.test("3.3 the post's hand-made sidecar in a labelled namespace: created with exactly one sidecar, its own; with share-user it uploads", async (t) => {
  const pod = await readyPod('seed-own-sidecar', 'app=prometheus', 'the pod with its own sidecar');
  t.same(pod.spec.containers.map((c) => c.name), ['prometheus', 'thanos'], 'its containers as written: no second sidecar');
  t.equal(pod.spec.initContainers, undefined, 'no native sidecar added either');
  t.equal(pod.spec.securityContext?.runAsUser, undefined, 'nothing set without share-user');
  const statuses = pod.status.containerStatuses ?? [];
  t.equal(statuses.length, 2, 'both containers report a status');
  t.ok(statuses.every((s) => s.ready && s.restartCount === 0), `every container Ready, none restarted: ${statuses.map((s) => `${s.name} ready=${s.ready} restarts=${s.restartCount}`).join(', ')}`);
  const seen = await admissions(injector, 'skipped', 'existing-sidecar');
  t.ok(seen >= 1, `the webhook saw the pod and left it as written (${seen} admission(s) skipped for existing-sidecar)`);
  const checked = await check('seed-own-sidecar', pod.metadata.name);
  t.comment(Object.values(checked.rows).map((r) => `${r.status} ${r.name}: ${r.detail}`).join('\n'));
  t.match(checked.rows['own thanos sidecar'], { status: 'warn', detail: /container thanos runs its own Thanos sidecar.*share-user/ }, 'check names the hand-made sidecar and the share-user choice');
  t.match(checked.rows['pod would be injected'], { status: 'warn', detail: /\(existing-sidecar\)$/ }, 'not injected by choice: a warning');

  // The hand-made sidecar could not upload until now (different users): the bucket is empty, so what lands there next is the share-user pod's.
  t.same((await minio.keys('seed-own-sidecar')).filter((k) => k.endsWith('/meta.json')), [], 'nothing in the bucket before share-user');
  const patched = Date.now();
  await cluster.kubectlOk(['-n', 'seed-own-sidecar', 'patch', 'deployment', 'prometheus-deploy', '--type', 'merge', '-p',
    JSON.stringify({ spec: { template: { metadata: { annotations: { 'thanos-injector/existing-sidecar': 'share-user' } } } } })]);
  const shared = await waitFor('the re-created pod with share-user Ready', async () => {
    const list = JSON.parse(await cluster.kubectlOk(['-n', 'seed-own-sidecar', 'get', 'pods', '-l', 'app=prometheus', '-o', 'json'])) as { items: PodJson[] };
    return list.items.find((found) => ready(found) && found.metadata.annotations?.['thanos-injector/existing-sidecar'] === 'share-user');
  }, 180_000, 2000);
  t.match(shared.spec.securityContext, { runAsUser: 65534, runAsGroup: 65534, fsGroup: 65534 }, 'one user for both containers');
  t.same(shared.spec.containers.map((c) => c.name), ['prometheus', 'thanos'], 'still its own containers only');
  t.match(JSON.parse(shared.metadata.annotations?.['thanos-injector/status'] ?? '{}'), { existingSidecar: 'thanos' }, 'the status annotation says what was done');
  const blocks = await waitFor('a block from the hand-made sidecar in the bucket', async () => {
    const metas = (await minio.keys('seed-own-sidecar')).filter((k) => /^[0-9A-Z]{26}\/meta\.json$/.test(k));
    return metas.length > 0 ? metas : undefined;
  }, UPLOAD_DEADLINE_MS, 5000);
  // A block's name holds the time it was written: these are the share-user pod's (its emptyDir started empty).
  t.ok(blocks.every((key) => ulidTime(key.slice(0, 26)) > patched), `its own container uploads, blocks written after the patch: ${blocks.join(', ')}`);
  t.ok(await admissions(injector, 'skipped', 'existing-sidecar') > seen, 'the webhook saw the re-created pod too');
  const log = await containerLog(cluster, 'seed-own-sidecar', shared.metadata.name, 'thanos');
  t.notMatch(log, /operation not permitted/, 'no hard-link failure in its log');
});
