// `thanos-injector register` end to end, against a real control plane (test/cluster): the command
// runs as a real process with the cluster's KUBECONFIG, as the chart's Job would, and everything
// is checked through kubectl. No webhook is installed: injected pods are created with the label and
// a thanos-sidecar container, and a labelled namespace gets its Prometheus pods WITHOUT a sidecar.
// There is no kubelet: "running" pods get their IP and readiness through the status subresource.
import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import type { ExecResult } from '../cluster/cluster.ts';
import { freePort, waitFor } from '../support/net.ts';
import { root, startE2e, thanosInjector } from '../support/e2e.ts';

interface ObjectJson {
  metadata: { name: string; namespace?: string; uid: string; resourceVersion: string; labels?: Record<string, string>; ownerReferences?: { kind: string; name: string; uid: string }[] };
}
interface ServiceJson extends ObjectJson {
  spec: { clusterIP: string; selector?: Record<string, string>; ports: { name: string; port: number; targetPort: string | number; protocol: string }[] };
}
interface ConfigMapJson extends ObjectJson {
  data?: Record<string, string>;
}
interface EventJson {
  metadata: { name: string };
  type: string;
  reason: string;
  message: string;
  involvedObject: { kind: string; name: string; uid: string };
}

const { cluster, work } = await startE2e(t, 'thanos-injector-register-e2e-');
const getService = (namespace: string) => cluster.getJson<ServiceJson>(['-n', namespace, 'get', 'service', 'thanos-sidecar']);
const getConfigMap = (name = 'thanos-query-endpoints') => cluster.getJson<ConfigMapJson>(['-n', 'monitoring', 'get', 'configmap', name]);
const getPod = (namespace: string, name: string) => cluster.getJson<ObjectJson>(['-n', namespace, 'get', 'pod', name]);
async function events(namespace: string, reason: string): Promise<EventJson[]> {
  const list = await cluster.getJson<{ items: EventJson[] }>(['-n', namespace, 'get', 'events', '--field-selector', `reason=${reason}`]);
  return list?.items ?? [];
}

/** The addresses of endpoints.yaml, checking that targets.yaml lists the same. */
function addressesOf(configMap: ConfigMapJson | undefined): string[] {
  const endpoints = parse(configMap?.data?.['endpoints.yaml'] ?? 'endpoints: []') as { endpoints: { address: string; strict: boolean; group: boolean }[] };
  const targets = parse(configMap?.data?.['targets.yaml'] ?? '[{targets: []}]') as { targets: string[] }[];
  const addresses = endpoints.endpoints.map((e) => e.address);
  if (JSON.stringify(targets[0]?.targets) !== JSON.stringify(addresses)) throw new Error(`targets.yaml and endpoints.yaml disagree: ${JSON.stringify({ endpoints, targets })}`);
  return addresses;
}


/** `node src/main.ts register --query-namespace monitoring ARGS` with the cluster's KUBECONFIG. */
function register(args: string[], env: Record<string, string> = cluster.env): Promise<ExecResult> {
  return thanosInjector(['register', '--query-namespace', 'monitoring', ...args], env);
}

/** `register --watch ARGS` running in the background (killed at the test's end if still running). */
function watchRegister(t: Test, args: string[]): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['src/main.ts', 'register', '--query-namespace', 'monitoring', '--watch', ...args], {
    cwd: root,
    env: { ...process.env, ...cluster.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return { child, output: () => output, exited };
}

const prometheus = { name: 'prometheus', image: 'quay.io/prometheus/prometheus:v3.5.0', args: ['--storage.tsdb.path=/prometheus'] };
const sidecar = {
  name: 'thanos-sidecar',
  image: 'quay.io/thanos/thanos:v0.42.5',
  args: ['sidecar'],
  ports: [{ name: 'grpc', containerPort: 10901 }, { name: 'http', containerPort: 10902 }],
};
/** A pod as the webhook leaves it: labelled injected, with a thanos-sidecar container. */
const injectedPod = (namespace: string, name: string) => JSON.stringify({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace, labels: { app: 'prometheus', 'thanos-injector/injected': 'true' } },
  spec: { containers: [prometheus, sidecar] },
});
const plainPrometheus = (namespace: string, name: string) => JSON.stringify({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace, labels: { app: 'bare-prometheus' } }, spec: { containers: [prometheus] },
});
async function markRunning(namespace: string, name: string, ip: string): Promise<void> {
  const status = { status: { phase: 'Running', podIP: ip, podIPs: [{ ip }], conditions: [{ type: 'Ready', status: 'True' }] } };
  await cluster.kubectlOk(['-n', namespace, 'patch', 'pod', name, '--subresource=status', '--type=merge', '-p', JSON.stringify(status)]);
}

for (const namespace of ['monitoring', 'team-a', 'team-b', 'team-c', 'apps', 'team-w']) await cluster.kubectlOk(['create', 'namespace', namespace]);
await cluster.kubectlOk(['label', 'namespace', 'apps', 'thanos-injection=enabled']);
// The apiserver rejects pods until the namespace's default ServiceAccount exists.
for (const namespace of ['team-a', 'team-b', 'team-c', 'apps', 'team-w']) {
  await waitFor(`the default ServiceAccount in ${namespace}`, async () => ((await cluster.kubectl(['-n', namespace, 'get', 'serviceaccount', 'default'])).code === 0 ? true : undefined));
}

const dnssrv = (namespace: string) => `dnssrv+_grpc._tcp.thanos-sidecar.${namespace}.svc.cluster.local`;

void t.test('register --help and a bad flag', async (t) => {
  const help = await register(['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /^Usage: thanos-injector register \[flags\]/);
  for (const flag of ['--namespace', '--query-namespace', '--configmap', '--endpoints', '--cluster-domain', '--restart-uninjected', '--watch', '--resync', '--metrics-port', '--metrics-address', '--kubeconfig']) {
    t.match(help.stdout, flag, `documents ${flag}`);
  }
  const bad = await register(['--endpoints', 'dns']);
  t.equal(bad.code, 2);
  t.equal(bad.stderr, 'thanos-injector: --endpoints: "dns" is not valid; expected dnssrv or pod-ip\n');
  const once = await register(['--metrics-port', '9090']);
  t.equal(once.code, 2);
  t.equal(once.stderr, 'thanos-injector: --metrics-port serves the metrics of a running watch; give --watch too\n');
  const port = await register(['--watch', '--metrics-port', 'http']);
  t.equal(port.code, 2);
  t.equal(port.stderr, 'thanos-injector: --metrics-port: "http" is not valid; expected a port number from 0 to 65535\n');
  const owners = await register(['--webhook-config', 'tsi-thanos-sidecar-injector', '--policy', 'tsi-thanos-sidecar-injector']);
  t.equal(owners.code, 2);
  t.equal(owners.stderr, 'thanos-injector: --webhook-config and --policy both name the owner of what register writes; give one (--policy for an install in injection mode policy)\n');
  t.match(help.stdout, '--policy NAME', 'documents --policy');
});

void t.test('injected pods get a headless Service per namespace and an endpoints ConfigMap; a foreign Service is a conflict', async (t) => {
  for (const [namespace, name] of [['team-a', 'prom-0'], ['team-a', 'prom-1'], ['team-b', 'prom-0'], ['team-c', 'prom-0']] as const) {
    await cluster.kubectlOk(['apply', '-f', '-'], injectedPod(namespace, name));
  }
  // Someone else's Service of the same name in team-c: never touched.
  await cluster.kubectlOk(['apply', '-f', '-'], JSON.stringify({
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'thanos-sidecar', namespace: 'team-c', labels: { owner: 'team-c' } },
    spec: { selector: { app: 'other' }, ports: [{ name: 'web', port: 80 }] },
  }));
  const foreignBefore = await getService('team-c');

  const result = await register([]);
  t.equal(result.code, 0, result.stderr);
  t.equal(result.stderr, '', 'nothing on stderr');
  t.match(result.stdout, /NAMESPACE\s+INJECTED PODS\s+SERVICE\s+REGISTERED ENDPOINTS\nteam-a\s+2\s+created\s+1\nteam-b\s+1\s+created\s+1\nteam-c\s+1\s+conflict \(not ours\)\s+0\n/);
  t.match(result.stdout, 'ConfigMap monitoring/thanos-query-endpoints: created (2 endpoints, dnssrv mode)');
  t.match(result.stdout, 'Registered pods: 3 (3 newly registered)');
  t.match(result.stdout, 'Conflict: Service team-c/thanos-sidecar exists but is not labelled app.kubernetes.io/managed-by=thanos-sidecar-injector; left alone');

  for (const namespace of ['team-a', 'team-b']) {
    const service = await getService(namespace);
    t.equal(service?.spec.clusterIP, 'None', `${namespace}: headless`);
    t.same(service?.spec.selector, { 'thanos-injector/injected': 'true' }, `${namespace}: selects injected pods`);
    t.same(service?.spec.ports, [
      { name: 'grpc', port: 10901, targetPort: 'grpc', protocol: 'TCP' },
      { name: 'http', port: 10902, targetPort: 'http', protocol: 'TCP' },
    ], `${namespace}: ports grpc and http`);
    t.equal(service?.metadata.labels?.['app.kubernetes.io/managed-by'], 'thanos-sidecar-injector', `${namespace}: labelled as ours`);
  }
  const foreignAfter = await getService('team-c');
  t.equal(foreignAfter?.metadata.resourceVersion, foreignBefore?.metadata.resourceVersion, 'the foreign Service is untouched');
  t.same(foreignAfter?.spec.selector, { app: 'other' });

  const configMap = await getConfigMap();
  t.same(Object.keys(configMap?.data ?? {}).sort(), ['endpoints.yaml', 'targets.yaml']);
  t.same(parse(configMap?.data?.['endpoints.yaml'] ?? ''), {
    endpoints: [
      { address: dnssrv('team-a'), strict: false, group: false },
      { address: dnssrv('team-b'), strict: false, group: false },
    ],
  }, 'endpoints.yaml in --endpoint.sd-config-file format, sorted');
  t.same(parse(configMap?.data?.['targets.yaml'] ?? ''), [{ targets: [dnssrv('team-a'), dnssrv('team-b')] }], 'targets.yaml in --store.sd-files format');
  t.equal(configMap?.metadata.labels?.['app.kubernetes.io/managed-by'], 'thanos-sidecar-injector');
});

void t.test('a second run reports unchanged and writes nothing', async (t) => {
  const configMapBefore = await getConfigMap();
  const serviceBefore = await getService('team-a');
  const result = await register([]);
  t.equal(result.code, 0, result.stderr);
  t.match(result.stdout, /team-a\s+2\s+unchanged\s+1/);
  t.match(result.stdout, 'ConfigMap monitoring/thanos-query-endpoints: unchanged (2 endpoints, dnssrv mode)');
  t.match(result.stdout, 'Registered pods: 3 (0 newly registered)');
  t.equal((await getConfigMap())?.metadata.resourceVersion, configMapBefore?.metadata.resourceVersion, 'the ConfigMap resourceVersion is the same');
  t.equal((await getService('team-a'))?.metadata.resourceVersion, serviceBefore?.metadata.resourceVersion, 'the Service resourceVersion is the same');
});

void t.test('kubectl describe pod shows ThanosSidecarRegistered, once per pod', async (t) => {
  const described = await cluster.kubectlOk(['-n', 'team-a', 'describe', 'pod', 'prom-0']);
  t.match(described, /Normal\s+ThanosSidecarRegistered\s+.*thanos-injector-register\s+Registered with Thanos Query as dnssrv\+_grpc\._tcp\.thanos-sidecar\.team-a\.svc\.cluster\.local \(ConfigMap monitoring\/thanos-query-endpoints\)/);
  const registered = await events('team-a', 'ThanosSidecarRegistered');
  t.same(registered.map((e) => e.involvedObject.name).sort(), ['prom-0', 'prom-1'], 'one event per pod after two runs');
  t.ok(registered.every((e) => e.type === 'Normal' && e.involvedObject.kind === 'Pod'));
  t.same((await events('team-c', 'ThanosSidecarRegistered')).length, 0, 'no registration behind a conflicting Service');
});

void t.test('a namespace whose injected pods are gone loses our Service on the next run', async (t) => {
  await cluster.kubectlOk(['-n', 'team-b', 'delete', 'pod', 'prom-0', '--wait=true']);
  const result = await register([]);
  t.equal(result.code, 0, result.stderr);
  t.match(result.stdout, /team-b\s+0\s+deleted\s+0/);
  t.match(result.stdout, 'ConfigMap monitoring/thanos-query-endpoints: updated (1 endpoint, dnssrv mode)');
  t.equal(await getService('team-b'), undefined, 'the Service is deleted');
  t.ok(await getService('team-a'), 'the one in team-a stays');
  t.ok(await getService('team-c'), 'the foreign one stays, even after its namespace loses its pods');
  t.same(addressesOf(await getConfigMap()), [dnssrv('team-a')]);
  await cluster.kubectlOk(['-n', 'team-c', 'delete', 'pod', 'prom-0', '--wait=true']);
  const again = await register([]);
  t.equal(again.code, 0, again.stderr);
  t.ok(await getService('team-c'), 'a foreign Service is never deleted');
  t.notMatch(again.stdout, /team-c/, 'and not even listed once there are no injected pods');
});

void t.test('pod-ip mode lists each ready pod at <podIP>:10901', async (t) => {
  await markRunning('team-a', 'prom-0', '10.0.0.5');
  const result = await register(['--endpoints', 'pod-ip', '--configmap', 'pod-endpoints']);
  t.equal(result.code, 0, result.stderr);
  t.match(result.stdout, /team-a\s+2\s+unchanged\s+1/, 'one of the two pods is ready');
  t.same(addressesOf(await getConfigMap('pod-endpoints')), ['10.0.0.5:10901']);
  t.match(result.stdout, 'Registered pods: 1 (0 newly registered)', 'already registered (through dnssrv) earlier');
  await markRunning('team-a', 'prom-1', '10.0.0.4');
  const second = await register(['--endpoints', 'pod-ip', '--configmap', 'pod-endpoints']);
  t.equal(second.code, 0, second.stderr);
  t.same(addressesOf(await getConfigMap('pod-endpoints')), ['10.0.0.4:10901', '10.0.0.5:10901'], 'sorted');
});

void t.test('a labelled Prometheus pod without the sidecar: exit code 3 and a ThanosSidecarMissing warning', async (t) => {
  await cluster.kubectlOk(['apply', '-f', '-'], plainPrometheus('apps', 'bare'));
  const result = await register([]);
  t.equal(result.code, 3, result.stderr);
  t.match(result.stdout, 'Missing sidecar: 1 labelled Prometheus pod runs without thanos-sidecar');
  t.match(result.stdout, /NAMESPACE\s+POD\s+OWNER\s+ACTION\napps\s+bare\s+\(none\)\s+bare pod: never deleted; recreate it to inject/);
  const described = await cluster.kubectlOk(['-n', 'apps', 'describe', 'pod', 'bare']);
  t.match(described, /Warning\s+ThanosSidecarMissing\s+.*Prometheus runs without the thanos-sidecar container/);
  const again = await register([]);
  t.equal(again.code, 3);
  t.equal((await events('apps', 'ThanosSidecarMissing')).length, 1, 'a second run refreshes the same event');
  t.ok(await getPod('apps', 'bare'), 'never deleted without --restart-uninjected');
});

void t.test('--restart-uninjected deletes a ReplicaSet-owned pod, never a bare pod', async (t) => {
  await cluster.kubectlOk(['-n', 'apps', 'create', 'deployment', 'prometheus', '--image=quay.io/prometheus/prometheus:v3.5.0']);
  const first = await waitFor('the Deployment pod', async () => {
    const list = await cluster.getJson<{ items: ObjectJson[] }>(['-n', 'apps', 'get', 'pods', '-l', 'app=prometheus']);
    return list?.items[0];
  });
  const bareBefore = await getPod('apps', 'bare');
  const result = await register(['--restart-uninjected']);
  t.equal(result.code, 3, 'pods without the sidecar were found: still exit 3');
  t.match(result.stdout, new RegExp(`apps\\s+${first.metadata.name}\\s+ReplicaSet/prometheus-[a-z0-9]+\\s+deleted so that ReplicaSet/prometheus-[a-z0-9]+ recreates it injected`));
  t.match(result.stdout, /apps\s+bare\s+\(none\)\s+bare pod: never deleted/);
  const replacement = await waitFor('the replacement pod', async () => {
    const list = await cluster.getJson<{ items: ObjectJson[] }>(['-n', 'apps', 'get', 'pods', '-l', 'app=prometheus']);
    return list?.items.find((pod) => pod.metadata.uid !== first.metadata.uid && list.items.length === 1);
  });
  t.not(replacement.metadata.uid, first.metadata.uid, 'the ReplicaSet recreated it');
  t.equal((await getPod('apps', 'bare'))?.metadata.uid, bareBefore?.metadata.uid, 'the bare pod is still the same pod');
});

void t.test('--watch updates the ConfigMap within seconds of a new injected pod, and exits 0 on SIGTERM', async (t) => {
  const { child, output, exited } = watchRegister(t, ['--namespace', 'team-w', '--endpoints', 'pod-ip', '--configmap', 'watch-endpoints']);
  try {
    await waitFor('the first reconcile', async () => ((await getConfigMap('watch-endpoints')) ? true : undefined), 30_000);
    t.same(addressesOf(await getConfigMap('watch-endpoints')), [], 'starts empty');
    await cluster.kubectlOk(['apply', '-f', '-'], injectedPod('team-w', 'prom-w'));
    await markRunning('team-w', 'prom-w', '10.0.0.42');
    const started = Date.now();
    await waitFor('the new pod in the ConfigMap', async () => (addressesOf(await getConfigMap('watch-endpoints')).includes('10.0.0.42:10901') ? true : undefined), 15_000);
    const seconds = (Date.now() - started) / 1000;
    t.ok(seconds < 10, `the ConfigMap lists the pod ${seconds.toFixed(1)} s after it became ready`);
    t.ok(await getService('team-w'), 'and its namespace got the Service');
    await waitFor('the registered event', async () => ((await events('team-w', 'ThanosSidecarRegistered')).length === 1 ? true : undefined), 10_000);
    await cluster.kubectlOk(['-n', 'team-w', 'delete', 'pod', 'prom-w', '--wait=true']);
    await waitFor('the Service to go with the pod', async () => ((await getService('team-w')) === undefined ? true : undefined), 15_000);
    t.same(addressesOf(await getConfigMap('watch-endpoints')), [], 'and the address');
  } finally {
    child.kill('SIGTERM');
  }
  t.equal(await exited, 0, 'exit code 0 on SIGTERM');
  t.match(output(), 'SIGTERM: stopping the watch');
  t.notMatch(output(), /\n\s+at /, 'no stack trace');
});

void t.test('--watch --metrics-port: /metrics counts the Prometheus pods running without the sidecar and the registered ones', async (t) => {
  const port = await freePort();
  // apps (labelled enabled) holds the bare pod and the Deployment's pod from the tests above: both
  // run without the sidecar. A 1 s resync, because the informer watches injected pods only.
  const { child, output, exited } = watchRegister(t, ['--namespace', 'apps', '--endpoints', 'pod-ip', '--configmap', 'metrics-endpoints', '--resync', '1',
    '--metrics-port', String(port), '--metrics-address', '127.0.0.1']);
  const scrape = async (): Promise<Map<string, number>> => {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    return new Map(text.split('\n').filter((line) => line.startsWith('thanos_injector_')).map((line) => {
      const at = line.lastIndexOf(' ');
      return [line.slice(0, at), Number(line.slice(at + 1))];
    }));
  };
  try {
    await waitFor('readiness after the first reconcile', async () => ((await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.ok ? true : undefined), 30_000);
    const uninjected = (await cluster.getJson<{ items: ObjectJson[] }>(['-n', 'apps', 'get', 'pods']))?.items.length ?? 0;
    t.ok(uninjected >= 2, `apps holds ${uninjected} Prometheus pods without the sidecar`);
    const first = await scrape();
    t.equal(first.get('thanos_injector_uninjected_prometheus_pods'), uninjected, 'every one of them is counted');
    t.equal(first.get('thanos_injector_registered_pods'), 0);
    t.ok((first.get('thanos_injector_register_last_success_timestamp_seconds') ?? 0) > Date.now() / 1000 - 60, 'a recent successful reconcile');
    t.equal(first.get('thanos_injector_register_reconciles_total{result="failure"}'), 0);

    await cluster.kubectlOk(['-n', 'apps', 'delete', 'pod', 'bare', '--wait=true']);
    await cluster.kubectlOk(['apply', '-f', '-'], injectedPod('apps', 'prom-m'));
    await markRunning('apps', 'prom-m', '10.0.0.77');
    const after = await waitFor('the gauges to follow', async () => {
      const metrics = await scrape();
      return metrics.get('thanos_injector_uninjected_prometheus_pods') === uninjected - 1 && metrics.get('thanos_injector_registered_pods') === 1 ? metrics : undefined;
    }, 15_000);
    t.equal(after.get('thanos_injector_registered_endpoints'), 1, 'the new pod is one endpoint');
    t.same(addressesOf(await getConfigMap('metrics-endpoints')), ['10.0.0.77:10901']);
  } finally {
    child.kill('SIGTERM');
  }
  t.equal(await exited, 0, 'exit code 0 on SIGTERM');
  t.match(output(), `metrics on http://127.0.0.1:${port}/metrics`);
  await t.rejects(fetch(`http://127.0.0.1:${port}/metrics`), 'the metrics listener is closed');
});

void t.test('API failures: one line naming the operation and the HTTP status, exit code 1', async (t) => {
  // A ServiceAccount without any rights, through a kubeconfig of its own.
  await cluster.kubectlOk(['-n', 'monitoring', 'create', 'serviceaccount', 'nobody']);
  const token = (await cluster.kubectlOk(['-n', 'monitoring', 'create', 'token', 'nobody'])).trim();
  const admin = parse(await readFile(cluster.kubeconfig, 'utf8')) as { clusters: { cluster: Record<string, string> }[] };
  const clusterEntry = admin.clusters[0]?.cluster ?? {};
  const kubeconfig = join(work, 'nobody.kubeconfig');
  await writeFile(kubeconfig, stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'nobody',
    clusters: [{ name: 'e2e', cluster: clusterEntry }],
    users: [{ name: 'nobody', user: { token } }],
    contexts: [{ name: 'nobody', context: { cluster: 'e2e', user: 'nobody' } }],
  }));
  const forbidden = await register(['--kubeconfig', kubeconfig], {});
  t.equal(forbidden.code, 1);
  t.match(forbidden.stderr, /^thanos-injector: cannot (list|read) [^\n]+: HTTP 403 Forbidden: [^\n]+ is forbidden: User "system:serviceaccount:monitoring:nobody" cannot (list|get) resource [^\n]+\n$/);
  t.notMatch(forbidden.stderr, /\n\s+at /, 'no stack trace');

  // A port nothing listens on (found free, then closed).
  const port = await freePort();
  const unreachable = join(work, 'unreachable.kubeconfig');
  await writeFile(unreachable, stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'nobody',
    clusters: [{ name: 'e2e', cluster: { ...clusterEntry, server: `https://127.0.0.1:${port}` } }],
    users: [{ name: 'nobody', user: { token } }],
    contexts: [{ name: 'nobody', context: { cluster: 'e2e', user: 'nobody' } }],
  }));
  const refused = await register(['--kubeconfig', unreachable], {});
  t.equal(refused.code, 1);
  t.match(refused.stderr, /^thanos-injector: cannot [^\n]+: no answer from the API server https:\/\/127\.0\.0\.1:[0-9]+: ECONNREFUSED\n$/);

  const noNamespace = await register(['--query-namespace', 'nowhere', '--namespace', 'team-a']);
  t.equal(noNamespace.code, 1);
  t.match(noNamespace.stderr, 'thanos-injector: cannot create ConfigMap nowhere/thanos-query-endpoints: HTTP 404 Not Found: namespaces "nowhere" not found\n');
  t.match(noNamespace.stdout, 'ConfigMap nowhere/thanos-query-endpoints: create failed', 'the summary still prints');
});

void t.test('what register writes is owned by the webhook configuration: thanos-injector uninstall deletes it first, and the garbage collector the rest', async (t) => {
  const webhookConfiguration = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: 'thanos-sidecar-injector' },
    // Selects nothing: only its existence matters here.
    webhooks: [{
      name: 'pod.thanos-sidecar-injector.io', admissionReviewVersions: ['v1'], sideEffects: 'None',
      clientConfig: { url: 'https://127.0.0.1:9/mutate' }, namespaceSelector: { matchLabels: { 'no-such-label': 'x' } },
      rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
    }],
  };
  await cluster.kubectlOk(['apply', '-f', '-'], JSON.stringify(webhookConfiguration));
  const uid = (await cluster.getJson<ObjectJson>(['get', 'mutatingwebhookconfiguration', 'thanos-sidecar-injector']))?.metadata.uid;
  await cluster.kubectlOk(['create', 'namespace', 'team-o']);
  await waitFor('the default ServiceAccount in team-o', async () => ((await cluster.kubectl(['-n', 'team-o', 'get', 'serviceaccount', 'default'])).code === 0 ? true : undefined));
  await cluster.kubectlOk(['apply', '-f', '-'], injectedPod('team-o', 'prom-0'));
  const result = await register([]);
  // 3: the labelled Prometheus pod without the sidecar of an earlier test is still there; no API call failed.
  t.equal(result.code, 3, result.stderr);
  t.match(result.stdout, /team-o\s+1\s+created/);
  const owners = (object: ObjectJson | undefined) => object?.metadata.ownerReferences?.map((o) => `${o.kind}/${o.name}/${o.uid}`);
  const owner = [`MutatingWebhookConfiguration/thanos-sidecar-injector/${uid ?? ''}`];
  t.same(owners(await getService('team-o')), owner, 'a new Service is owned');
  t.same(owners(await getService('team-a')), owner, 'one written before without an owner is owned now');
  t.same(owners(await getConfigMap()), owner, 'the endpoints ConfigMap is owned');
  t.same(owners(await getService('team-c')), undefined, 'a foreign Service is not touched');

  const removed = await thanosInjector(['uninstall'], cluster.env);
  t.equal(removed.code, 0, removed.stderr);
  t.match(removed.stdout, 'MutatingWebhookConfiguration thanos-sidecar-injector: deleted; pods are created without the webhook from now on');
  t.equal(await cluster.getJson(['get', 'mutatingwebhookconfiguration', 'thanos-sidecar-injector']), undefined, 'gone when the command returns');
  const started = Date.now();
  await waitFor('the garbage collector to delete what the webhook configuration owned', async () =>
    (await getService('team-o')) === undefined && (await getService('team-a')) === undefined && (await getConfigMap()) === undefined ? true : undefined);
  t.comment(`owned objects gone ${((Date.now() - started) / 1000).toFixed(1)} s after the command returned`);
  t.ok(await getService('team-c'), 'the foreign Service stays');
  t.ok(await getPod('team-o', 'prom-0'), 'the pods stay');
  // The chart names its webhook configuration: a run after it went (a CronJob's, during helm uninstall) writes nothing unowned.
  const late = await register(['--webhook-config', 'thanos-sidecar-injector']);
  t.equal(late.code, 1, late.stdout);
  t.equal(late.stderr, 'thanos-injector: MutatingWebhookConfiguration thanos-sidecar-injector (--webhook-config) not found: the install is gone or being removed, so nothing is registered (what register writes is owned by it, and would outlive it)\n');
  t.equal(await getService('team-o'), undefined, 'no Service re-created');
  t.equal(await getConfigMap(), undefined, 'no ConfigMap re-created');
  const again = await thanosInjector(['uninstall'], cluster.env);
  t.equal(again.code, 0);
  t.equal(again.stdout, 'MutatingWebhookConfiguration thanos-sidecar-injector: already gone\n');
});
