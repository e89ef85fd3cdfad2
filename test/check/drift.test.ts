// An injected pod is judged against what the current configuration injects: current, outdated with
// what differs (image, flags, resources, mode, or no injection at all), "cannot tell" for a pod an
// older release injected, and not judged when it is done, going, or runs its own sidecar.
import t from 'tap';
import { readFileSync } from 'node:fs';
import type { V1Pod } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { buildConfig } from '../../src/config/load.ts';
import { checkSidecarCurrent, sidecarDrift } from '../../src/check/drift.ts';
import { injectPod, type InjectionContext } from '../../src/inject/inject.ts';
import { STATUS_ANNOTATION } from '../../src/inject/names.ts';
import { applyPatchInPlace } from '../../src/inject/patch.ts';
import { applyPodDefaults } from '../harness/pod-defaults.ts';
import { generatePolicy } from '../../src/policy/generate.ts';

const seed = parseAllDocuments(readFileSync(new URL('../fixtures/inject/seed-deployment.yaml', import.meta.url), 'utf8'))
  .map((doc) => doc.toJS() as { kind: string; spec: { template: V1Pod } })
  .find((doc) => doc.kind === 'Deployment')!;

const context = (config: Record<string, unknown> = {}, kubernetesVersion = 'v1.37.2'): InjectionContext =>
  ({ config: buildConfig({ ephemeralTsdb: { action: 'allow' }, ...config }), namespace: 'monitoring', kubernetesVersion });

/** The seed's pod as the apiserver stores it once injected with `config`: defaulted, owned by a ReplicaSet, running. */
function storedPod(config: Record<string, unknown> = {}, kubernetesVersion?: string): V1Pod {
  const pod: V1Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    ...structuredClone(seed.spec.template),
    status: { phase: 'Running' },
  };
  pod.metadata = {
    ...pod.metadata,
    name: 'prometheus-5c8f7b6d4-x2x9k',
    namespace: 'monitoring',
    labels: { ...pod.metadata?.labels, 'pod-template-hash': '5c8f7b6d4' },
    ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'prometheus-5c8f7b6d4', uid: 'u', controller: true }],
  };
  const admitted = applyPodDefaults(pod);
  const injection = injectPod(admitted, context(config, kubernetesVersion));
  if (injection.outcome !== 'injected') throw new Error(`not injected: ${injection.outcome}`);
  applyPatchInPlace(admitted, injection.patch);
  return applyPodDefaults(admitted);
}

void t.test('a pod injected with the configuration in force is current, apiserver defaults and all', (t) => {
  const drift = sidecarDrift(storedPod(), context());
  t.same(drift, { state: 'current', image: 'quay.io/thanos/thanos:v0.42.5' });
  const row = checkSidecarCurrent(storedPod(), drift);
  t.equal(row.status, 'ok');
  t.match(row.detail, 'thanos-sidecar is what the current configuration injects (quay.io/thanos/thanos:v0.42.5)');
  t.end();
});

void t.test('an upgrade that changes the image, the log level and the memory limit: outdated, naming each, with the command that rolls it', (t) => {
  const upgraded = context({ image: 'quay.io/thanos/thanos:v0.42.6', logLevel: 'debug', resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '768Mi' } } });
  const pod = storedPod();
  const drift = sidecarDrift(pod, upgraded);
  t.equal(drift.state, 'outdated');
  const differences = drift.state === 'outdated' ? drift.differences : [];
  t.same(differences.map((d) => d.split(' ')[0]), ['image', 'flags', 'resources'], differences.join('\n'));
  t.equal(differences[0], 'image quay.io/thanos/thanos:v0.42.5 -> quay.io/thanos/thanos:v0.42.6');
  t.equal(differences[1], 'flags --log.level=info -> --log.level=debug');
  t.match(differences[2], /^resources \{.*memory:512Mi.*\} -> \{.*memory:768Mi.*\}$/);
  const row = checkSidecarCurrent(pod, drift);
  t.equal(row.status, 'warn', 'a warning: the outdated sidecar still uploads');
  t.match(row.detail, 'roll it: kubectl -n monitoring rollout restart deployment/prometheus, or thanos-injector rollout -n monitoring');
  t.end();
});

void t.test('sidecarMode auto on a cluster upgraded past 1.29: the mode differs', (t) => {
  const pod = storedPod({ sidecarMode: 'auto' }, 'v1.28.4');
  t.same(sidecarDrift(pod, context({ sidecarMode: 'auto' }, 'v1.28.4')).state, 'current');
  const drift = sidecarDrift(pod, context({ sidecarMode: 'auto' }, 'v1.29.0'));
  t.equal(drift.state, 'outdated');
  if (drift.state === 'outdated') t.match(drift.differences, ['sidecar mode container -> native']);
  t.end();
});

void t.test('a pod the configuration would no longer inject is outdated, saying why', (t) => {
  const drift = sidecarDrift(storedPod(), context({ ephemeralTsdb: { action: 'skip' } }));
  t.equal(drift.state, 'outdated');
  if (drift.state === 'outdated') t.match(drift.differences[0], /^the current configuration would not inject it \(ephemeral-tsdb\): Prometheus' TSDB is on emptyDir volume prometheus-data/);
  t.end();
});

void t.test('a pod injected by release 0.1.0 (no fingerprint) cannot be told, and is not called outdated', (t) => {
  const pod = storedPod();
  const status = JSON.parse(pod.metadata!.annotations![STATUS_ANNOTATION]!) as Record<string, unknown>;
  delete status.rendered;
  delete status.undo;
  pod.metadata!.annotations![STATUS_ANNOTATION] = JSON.stringify({ ...status, version: '0.1.0' });
  const drift = sidecarDrift(pod, context({ logLevel: 'debug' }));
  t.equal(drift.state, 'unknown');
  const row = checkSidecarCurrent(pod, drift);
  t.equal(row.status, 'warn');
  t.match(row.detail, /^cannot tell: injected by injector 0\.1\.0, which recorded no fingerprint/);

  pod.metadata!.annotations![STATUS_ANNOTATION] = '{"version":';
  t.match(sidecarDrift(pod, context()), { state: 'unknown', reason: /status annotation cannot be read/ });
  t.end();
});

void t.test('completed, terminating, and pods with a sidecar of their own are not judged', (t) => {
  const done = storedPod();
  done.status = { phase: 'Succeeded' };
  t.same(sidecarDrift(done, context({ logLevel: 'debug' })), { state: 'not-judged', reason: 'the pod has completed' });
  t.equal(checkSidecarCurrent(done, sidecarDrift(done, context())).status, 'skip');
  const going = storedPod();
  going.metadata!.deletionTimestamp = new Date();
  t.same(sidecarDrift(going, context({ logLevel: 'debug' })), { state: 'not-judged', reason: 'the pod is terminating' });
  const own = storedPod();
  own.metadata!.annotations![STATUS_ANNOTATION] = JSON.stringify({ version: '0.1.0', existingSidecar: 'thanos', securityContext: [] });
  t.same(sidecarDrift(own, context({ logLevel: 'debug' })), { state: 'not-judged', reason: 'the pod runs its own Thanos sidecar' });
  t.end();
});

/** The same pod as the policy injects it: its status annotation records the policy's generation instead of fingerprints. */
function policyInjected(config: Record<string, unknown> = {}): V1Pod {
  const pod = storedPod(config);
  const status = JSON.parse(pod.metadata!.annotations![STATUS_ANNOTATION]!) as Record<string, unknown>;
  delete status.rendered;
  status.policy = generatePolicy(context(config).config, 'thanos-sidecar-injector').generation;
  pod.metadata!.annotations![STATUS_ANNOTATION] = JSON.stringify(status);
  return pod;
}

void t.test("a pod the policy injected is judged by the policy's generation: current while the configuration makes the same one, outdated with what differs after", (t) => {
  t.same(sidecarDrift(policyInjected(), context()), { state: 'current', image: 'quay.io/thanos/thanos:v0.42.5' });
  const drift = sidecarDrift(policyInjected(), context({ logLevel: 'debug' }));
  t.equal(drift.state, 'outdated');
  t.match(drift.state === 'outdated' ? drift.differences : [], [/^injected by policy generation [0-9a-f]{12}; the current configuration makes generation [0-9a-f]{12}$/, 'flags --log.level=info -> --log.level=debug']);
  const resized = sidecarDrift(policyInjected(), context({ resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '768Mi' } } }));
  t.match(resized.state === 'outdated' ? resized.differences : [], [/^injected by policy generation/, /^resources \{.*memory:512Mi.*\} -> \{.*memory:768Mi.*\}$/], 'resources too');
  const unexpressible = sidecarDrift(policyInjected(), context({ objstore: { enabled: false } }));
  t.match(unexpressible.state === 'outdated' ? unexpressible.differences[0] : '', /makes no policy \(objstore\.enabled is false/);
  t.end();
});
