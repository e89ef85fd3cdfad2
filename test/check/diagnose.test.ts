// The whole diagnosis over a cluster held in memory: a chart install (Service mode, certs auto) with
// the seed's Prometheus injected and registered passes every check; then the same install broken one
// way at a time, a url install whose injector is down, and no install at all.
import t from 'tap';
import { readFileSync } from 'node:fs';
import type { V1ConfigMap, V1Deployment, V1MutatingAdmissionPolicy, V1MutatingAdmissionPolicyBinding, V1Pod, V1ValidatingAdmissionPolicy, V1ValidatingAdmissionPolicyBinding } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { generateCertificates } from '../../src/certs/generate.ts';
import { parsePemBundle } from '../../src/check/certificate.ts';
import { diagnose, type CheckOptions } from '../../src/check/diagnose.ts';
import { CHECK, exitCodeOf, type CheckRow } from '../../src/check/rows.ts';
import { applyPatchInPlace } from '../../src/inject/patch.ts';
import { injectPod } from '../../src/inject/inject.ts';
import { endpointsFile, targetsFile } from '../../src/register/plan.ts';
import { buildConfig } from '../../src/config/load.ts';
import { generatePolicy } from '../../src/policy/generate.ts';
import { b64, config, installCluster, MemoryCluster, NAME, NS, runningStatus, webhookConfiguration } from './memory-cluster.ts';

const otherCa = await generateCertificates(['x']);
const loopback = await generateCertificates(['127.0.0.1']);

const example = parseAllDocuments(readFileSync(new URL('../../examples/prometheus-deployment.yaml', import.meta.url), 'utf8')).map((doc) => doc.toJS() as { kind: string });
const prometheusConfigMap = example.find((doc) => doc.kind === 'ConfigMap') as V1ConfigMap;
const prometheusDeployment = example.find((doc) => doc.kind === 'Deployment') as V1Deployment;
const POD = 'prometheus-deploy-5c8f7b6d4-x2x9k';

/** The example injected, its TSDB on a claim (the example's emptyDir is a warning of its own, below). */
function injectedPod(): V1Pod {
  const template = structuredClone(prometheusDeployment.spec!.template);
  template.spec!.volumes = template.spec!.volumes!.map((v) => (v.name === 'prometheus-data' ? { name: v.name, persistentVolumeClaim: { claimName: 'prometheus-data' } } : v));
  const pod: V1Pod = {
    metadata: { name: POD, namespace: 'monitoring', labels: { ...template.metadata?.labels, 'pod-template-hash': '5c8f7b6d4' } },
    spec: template.spec,
    status: { phase: 'Running' },
  };
  const injection = injectPod(pod, { config, namespace: 'monitoring', kubernetesVersion: '1.34' });
  if (injection.outcome !== 'injected') throw new Error('not injected');
  applyPatchInPlace(pod, injection.patch);
  pod.status = runningStatus(pod);
  return pod;
}

/** A healthy chart install in certs mode auto, with the example injected, running and registered. */
function healthyCluster(): MemoryCluster {
  const cluster = installCluster();
  cluster.put('pod', 'monitoring', POD, injectedPod());
  cluster.put('configmap', 'monitoring', 'prometheus-cm', prometheusConfigMap);
  cluster.proxied.set(`monitoring/${POD}:10902/metrics`, SIDECAR_METRICS);
  cluster.logs.set(`monitoring/${POD}/thanos-sidecar`, 'ts=2026-12-02T06:43:15.1Z caller=shipper.go:372 level=info msg="upload new block" id=01M8TQWWYNZFBP18EWR6MYFSPX\n');
  return cluster;
}

const HARD_LINK_LOG = 'ts=2026-12-02T06:44:12.9Z caller=shipper.go:369 level=warn msg="reading meta file failed, will override it" err="EOF"\nts=2026-12-02T06:44:14.6Z caller=sidecar.go:465 level=warn err="sync: upload 01M8TR4TV8HGABM5ES9SK7GZMP: hard link block: hard link file chunks/000001: link /prometheus/01M8TR4TV8HGABM5ES9SK7GZMP/chunks/000001 /prometheus/thanos/upload/01M8TR4TV8HGABM5ES9SK7GZMP/chunks/000001: operation not permitted" uploaded=0\n';
const SIDECAR_METRICS = [
  '# HELP thanos_shipper_uploads_total Total number of uploaded blocks.',
  '# TYPE thanos_shipper_uploads_total counter',
  'thanos_shipper_uploads_total 3',
  'thanos_shipper_upload_failures_total 0',
  'thanos_shipper_dir_sync_failures_total 0',
  '',
].join('\n');

const options = (overrides: Partial<CheckOptions> = {}): CheckOptions => ({
  webhookConfig: 'thanos-sidecar-injector', webhookConfigExplicit: false, namespace: 'monitoring', pod: POD, now: new Date(), ...overrides,
});
const byName = (rows: CheckRow[]) => Object.fromEntries(rows.map((row) => [row.name, row]));
const statuses = (rows: CheckRow[]) => Object.fromEntries(rows.map((row) => [row.name, row.status]));

void t.test('a healthy install, namespace and pod: every check ok, in order', async (t) => {
  const rows = await diagnose(healthyCluster(), options());
  t.same(rows.map((row) => row.name), [
    CHECK.webhookConfiguration, CHECK.webhooks, CHECK.matchConditions, CHECK.injectorReachable, CHECK.caBundle, CHECK.certificateExpiry, CHECK.injectorConfig,
    CHECK.queryConfigMap, CHECK.namespace, CHECK.labelsDistinct, CHECK.podDecision, CHECK.podInjected, CHECK.podContainers, CHECK.tsdbVolume, CHECK.sidecarCurrent, CHECK.objstoreSecret,
    CHECK.externalLabels, CHECK.podRegistered, CHECK.sidecarUploads,
  ]);
  for (const row of rows) t.equal(row.status, 'ok', `${row.name}: ${row.detail}`);
  t.equal(exitCodeOf(rows), 0);
  const rowsOf = byName(rows);
  t.match(rowsOf[CHECK.caBundle]?.detail, `from Secret ${NS}/${NAME}-tls, valid for ${NAME}.${NS}.svc`);
  t.equal(rowsOf[CHECK.injectorConfig]?.detail, `ConfigMap ${NS}/${NAME} config.yaml`);
});

void t.test('without -n only the install is checked', async (t) => {
  const rows = await diagnose(healthyCluster(), options({ namespace: undefined, pod: undefined }));
  t.equal(rows.length, 8);
  t.equal(exitCodeOf(rows), 0);
});

void t.test('each breakage fails its own row and the exit code', async (t) => {
  const cases: [string, (cluster: MemoryCluster) => void, string, RegExp][] = [
    ['stale caBundle', (c) => c.put('mwc', '', NAME, webhookConfiguration({ service: { name: NAME, namespace: NS, path: '/mutate', port: 443 } }, b64(otherCa.caCert))), CHECK.caBundle, /^stale caBundle/],
    ['blank caBundle', (c) => c.put('mwc', '', NAME, webhookConfiguration({ service: { name: NAME, namespace: NS, path: '/mutate', port: 443 } }, '')), CHECK.caBundle, /caBundle is empty/],
    ['no serving Secret', (c) => c.remove('secret', NS, `${NAME}-tls`), CHECK.caBundle, /not found: the injector has no certificate to serve/],
    ['no ready injector', (c) => c.remove('slice', NS, `${NAME}-abcde`), CHECK.injectorReachable, /no ready endpoint/],
    ['objstore Secret deleted', (c) => c.remove('secret', 'monitoring', 'thanos-objstore'), CHECK.objstoreSecret, /not found/],
    ['external labels removed', (c) => c.put('configmap', 'monitoring', 'prometheus-cm', { data: { 'prometheus.yml': 'global:\n  scrape_interval: 5s\n' } }), CHECK.externalLabels, /the sidecar exits without unique external labels/],
    ['namespace label removed', (c) => c.put('namespace', '', 'monitoring', { metadata: { name: 'monitoring' } }), CHECK.podDecision, /no webhook selects it/],
    ['not registered', (c) => c.put('configmap', NS, 'thanos-query-endpoints', { data: { 'endpoints.yaml': endpointsFile([]), 'targets.yaml': targetsFile([]) } }), CHECK.podRegistered, /^not in ConfigMap/],
    ['bad injector config', (c) => c.put('configmap', NS, NAME, { data: { 'config.yaml': 'blockDuration: forever\n' } }), CHECK.injectorConfig, /blockDuration/],
    ['sidecar cannot hard-link', (c) => c.logs.set(`monitoring/${POD}/thanos-sidecar`, HARD_LINK_LOG), CHECK.sidecarUploads, /cannot hard-link Prometheus' block files/],
  ];
  for (const [what, breakIt, row, detail] of cases) {
    const cluster = healthyCluster();
    breakIt(cluster);
    const rows = await diagnose(cluster, options());
    const failed = rows.filter((r) => r.status === 'fail');
    t.same(failed.map((r) => r.name), [row], `${what}: only ${row} fails`);
    t.match(byName(rows)[row]?.detail, detail, what);
    t.equal(exitCodeOf(rows), 1, `${what}: exit 1`);
  }
  const unlabelled = healthyCluster();
  unlabelled.put('namespace', '', 'monitoring', { metadata: { name: 'monitoring' } });
  t.equal(statuses(await diagnose(unlabelled, options()))[CHECK.namespace], 'warn', 'the namespace row itself is a warning');
});

void t.test('a url webhook: the certificate comes from the TLS handshake; a stopped injector fails and skips the certificate rows', async (t) => {
  const cluster = healthyCluster();
  cluster.put('mwc', '', NAME, webhookConfiguration({ url: 'https://127.0.0.1:9443/mutate' }, b64(loopback.caCert)));
  cluster.handshakeResult = { certificate: { source: 'https://127.0.0.1:9443', chain: parsePemBundle(loopback.cert) } };
  const up = byName(await diagnose(cluster, options()));
  t.match(up[CHECK.injectorReachable], { status: 'ok', detail: '127.0.0.1:9443 answers TLS' });
  t.match(up[CHECK.caBundle], { status: 'ok', detail: /from https:\/\/127\.0\.0\.1:9443, valid for 127\.0\.0\.1/ });
  t.match(up[CHECK.injectorConfig], { status: 'ok', detail: `ConfigMap ${NS}/${NAME} config.yaml` }, "found through Helm's release namespace");

  cluster.handshakeResult = { error: 'ECONNREFUSED' };
  const rows = await diagnose(cluster, options());
  const down = byName(rows);
  t.match(down[CHECK.injectorReachable], { status: 'fail', detail: /ECONNREFUSED: the injector is not running or not reachable/ });
  t.equal(down[CHECK.caBundle]?.status, 'skip');
  t.equal(down[CHECK.certificateExpiry]?.status, 'skip');
  t.equal(exitCodeOf(rows), 1);
});

void t.test('nothing installed: the first row fails and says how to install; the rest is skipped or warned', async (t) => {
  const cluster = new MemoryCluster();
  cluster.put('namespace', '', 'monitoring', { metadata: { name: 'monitoring', labels: { 'thanos-injection': 'enabled' } } });
  const rows = await diagnose(cluster, options({ pod: undefined }));
  t.same(statuses(rows), {
    [CHECK.webhookConfiguration]: 'fail', [CHECK.webhooks]: 'skip', [CHECK.matchConditions]: 'skip', [CHECK.injectorReachable]: 'skip', [CHECK.caBundle]: 'skip',
    [CHECK.certificateExpiry]: 'skip', [CHECK.injectorConfig]: 'warn', [CHECK.queryConfigMap]: 'skip', [CHECK.namespace]: 'ok',
    [CHECK.labelsDistinct]: 'skip',
  });
  t.match(rows[0]?.detail, /install the chart/);
});

void t.test('--config and --query-configmap win over what the install says; a missing pod is one failed row', async (t) => {
  const cluster = healthyCluster();
  cluster.put('configmap', 'elsewhere', 'endpoints', { data: { 'endpoints.yaml': endpointsFile([]) } });
  const rows = byName(await diagnose(cluster, options({ config: { config, source: 'file config.yaml' }, queryConfigMap: { namespace: 'elsewhere', name: 'endpoints' } })));
  t.match(rows[CHECK.injectorConfig], { status: 'ok', detail: 'file config.yaml' });
  t.match(rows[CHECK.queryConfigMap], { status: 'ok', detail: 'ConfigMap elsewhere/endpoints lists 0 endpoints' });
  t.match(rows[CHECK.podRegistered], { status: 'fail', detail: /^not in ConfigMap elsewhere\/endpoints/ });

  const missing = await diagnose(cluster, options({ pod: 'nope' }));
  t.match(missing.at(-1), { name: CHECK.pod, status: 'fail', detail: 'pod monitoring/nope not found: kubectl -n monitoring get pods' });
});

/** An install in injection mode policy: no webhook configuration, Service or injector; the policy and the chart's bindings. */
function policyCluster(): MemoryCluster {
  const cluster = healthyCluster();
  for (const [kind, namespace, name] of [['mwc', '', NAME], ['service', NS, NAME], ['slice', NS, `${NAME}-abcde`], ['deployment', NS, NAME], ['secret', NS, `${NAME}-tls`]] as const) cluster.remove(kind, namespace, name);
  const policyConfig = { injectorNamespace: NS, excludedNamespaces: ['kube-system', 'kube-public', 'kube-node-lease'], mode: 'policy', objstore: { enabled: true, secretName: 'thanos-objstore', secretKey: 'objstore.yml' } };
  cluster.put('configmap', NS, NAME, { data: { 'config.yaml': JSON.stringify(policyConfig) } });
  const generated = generatePolicy(buildConfig(policyConfig), NAME);
  const [policy, ...bindings] = generated.objects as [V1MutatingAdmissionPolicy, ...V1MutatingAdmissionPolicyBinding[]];
  cluster.put('map', '', NAME, policy);
  for (const binding of bindings) {
    binding.metadata = { ...binding.metadata, labels: { 'app.kubernetes.io/name': 'thanos-sidecar-injector' }, annotations: { 'meta.helm.sh/release-namespace': NS } };
    cluster.put('mapb', '', binding.metadata.name!, binding);
  }
  const [warnings, ...warningBindings] = generated.warnings as [V1ValidatingAdmissionPolicy, ...V1ValidatingAdmissionPolicyBinding[]];
  cluster.put('vap', '', NAME, warnings);
  for (const binding of warningBindings) cluster.put('vapb', '', binding.metadata!.name!, binding);
  return cluster;
}

void t.test('injection mode policy: the install found by its policy bindings; no webhook rows to fail; the pod judged by the policy', async (t) => {
  const cluster = policyCluster();
  const rows = byName(await diagnose(cluster, options({ webhookConfig: 'thanos-sidecar-injector' })));
  t.match(rows[CHECK.webhookConfiguration], { status: 'skip', detail: `injection mode policy: MutatingAdmissionPolicy ${NAME} injects, with no webhook` });
  for (const row of [CHECK.webhooks, CHECK.matchConditions, CHECK.injectorReachable, CHECK.caBundle, CHECK.certificateExpiry]) t.equal(rows[row]?.status, 'skip', `${row}: skipped`);
  t.match(rows[CHECK.injectorConfig], { status: 'ok', detail: `ConfigMap ${NS}/${NAME} config.yaml` });
  t.match(rows[CHECK.policy], { status: 'ok', detail: /the rest are created uninjected/ });
  t.match(rows[CHECK.podDecision], { status: 'ok', detail: /^yes, by the injection policy/ });
  t.equal(rows[CHECK.queryConfigMap]?.status, 'ok', 'the registration ConfigMap in the install namespace');

  // The warnings' ValidatingAdmissionPolicy deleted: still injected, but silently.
  cluster.remove('vap', '', NAME);
  t.match(byName(await diagnose(cluster, options()))[CHECK.policy], { status: 'warn', detail: /ValidatingAdmissionPolicy .* which gives its warnings, is not there/ });

  // A pod the policy leaves to a webhook (a per-pod annotation), in a mode with none.
  const annotated = injectedPod();
  annotated.metadata!.annotations = { ...annotated.metadata!.annotations, 'thanos-injector/log-level': 'debug' };
  cluster.put('pod', 'monitoring', POD, annotated);
  const left = byName(await diagnose(cluster, options()));
  t.match(left[CHECK.podDecision], { status: 'fail', detail: /^no: injection mode policy has no webhook, and the policy leaves this pod to one: it has a thanos-injector\/ annotation/ });

  // The bindings gone too: nothing of the install is found.
  for (const scope of ['namespace', 'pod']) cluster.remove('mapb', '', `${NAME}-${scope}`);
  t.equal(byName(await diagnose(cluster, options()))[CHECK.webhookConfiguration]?.status, 'fail', 'no webhook configuration and no policy: the first row fails');
});
