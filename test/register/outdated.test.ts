// Registration judges each running injected pod's sidecar against the injector's current
// configuration (check's drift judgement): an outdated one gets a ThanosSidecarOutdated event
// naming what differs and the command that rolls it, and is counted per namespace in
// thanos_injector_outdated_sidecar_pods; a current one, a pod of release 0.1.0 and a finished pod are not.
import t from 'tap';
import type { V1Pod } from '@kubernetes/client-node';
import { buildConfig } from '../../src/config/load.ts';
import { injectPod } from '../../src/inject/inject.ts';
import { STATUS_ANNOTATION } from '../../src/inject/names.ts';
import { applyPatchInPlace } from '../../src/inject/patch.ts';
import { problemEvent } from '../../src/register/events.ts';
import { createRegisterMetrics } from '../../src/register/metrics.ts';
import { plan, type ClusterState } from '../../src/register/plan.ts';
import { applyResult, registerSettings } from '../support/register.ts';

const released = buildConfig({ ephemeralTsdb: { action: 'allow' } });
const upgraded = buildConfig({ ephemeralTsdb: { action: 'allow' }, logLevel: 'debug' });

function injected(namespace: string, name: string): V1Pod {
  const pod: V1Pod = {
    metadata: {
      namespace, name, uid: `${namespace}/${name}`,
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'prometheus', uid: 's', controller: true }],
    },
    spec: {
      containers: [{ name: 'prometheus', image: 'quay.io/prometheus/prometheus:v3.5.0', args: ['--storage.tsdb.path=/prometheus'], volumeMounts: [{ name: 'data', mountPath: '/prometheus' }] }],
      volumes: [{ name: 'data', emptyDir: {} }],
      securityContext: {},
    },
  };
  const injection = injectPod(pod, { config: released, namespace, kubernetesVersion: 'v1.37.2' });
  if (injection.outcome !== 'injected') throw new Error('not injected');
  applyPatchInPlace(pod, injection.patch);
  pod.status = { phase: 'Running', podIP: '10.0.0.9', conditions: [{ type: 'Ready', status: 'True' }] };
  return pod;
}

const state = (injectedPods: V1Pod[]): ClusterState => ({
  injectedPods, services: [], labelledNamespaces: [], selectablePods: [], configMap: undefined,
  prometheusConfigMaps: [], unreadable: [], uploads: new Map(), readAt: 0, kubernetesVersion: 'v1.37.2',
});

async function outdatedSample(metrics: ReturnType<typeof createRegisterMetrics>, namespace: string): Promise<number | undefined> {
  const series = `thanos_injector_outdated_sidecar_pods{namespace="${namespace}"}`;
  const line = (await metrics.registry.metrics()).split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

void t.test('after an upgrade that changes the log level: every running pod is outdated, with an event and a count per namespace', async (t) => {
  const pods = [injected('monitoring', 'prometheus-0'), injected('monitoring', 'prometheus-1'), injected('team-a', 'prometheus-0')];
  const done = injected('team-a', 'prometheus-old');
  done.status = { phase: 'Succeeded' };
  const oldRelease = injected('team-b', 'prometheus-0');
  const status = JSON.parse(oldRelease.metadata!.annotations![STATUS_ANNOTATION]!) as Record<string, unknown>;
  oldRelease.metadata!.annotations![STATUS_ANNOTATION] = JSON.stringify({ ...status, rendered: undefined, undo: undefined, version: '0.1.0' });

  const planned = plan(state([...pods, done, oldRelease]), registerSettings({ injection: upgraded }));
  const outdated = planned.problems.filter((p) => p.problem === 'outdated-sidecar');
  t.same(outdated.map((p) => `${p.pod.namespace}/${p.pod.name}`), ['monitoring/prometheus-0', 'monitoring/prometheus-1', 'team-a/prometheus-0'], 'the finished pod and the 0.1.0 pod are not counted');
  const event = problemEvent(outdated[0]!, new Date(0), 'register-0');
  t.equal(event.reason, 'ThanosSidecarOutdated');
  t.equal(event.type, 'Warning');
  t.equal(event.message, "The thanos-sidecar differs from what the injector's current configuration injects (flags --log.level=info -> --log.level=debug): " +
    'it keeps running as it is until the pod is re-created; roll it: kubectl -n monitoring rollout restart statefulset/prometheus, or thanos-injector rollout -n monitoring');

  const metrics = createRegisterMetrics();
  metrics.reconciled({ plan: planned, result: applyResult() }, new Date());
  t.equal(await outdatedSample(metrics, 'monitoring'), 2);
  t.equal(await outdatedSample(metrics, 'team-a'), 1);
  t.equal(await outdatedSample(metrics, 'team-b'), 0, 'a namespace with injected pods, none known outdated, is 0');

  const rolled = plan(state(pods), registerSettings({ injection: released }));
  t.same(rolled.problems, [], 'with the configuration they were injected with: nothing to report');
  metrics.reconciled({ plan: rolled, result: applyResult() }, new Date());
  t.equal(await outdatedSample(metrics, 'monitoring'), 0, 'back to 0 once current');
});
