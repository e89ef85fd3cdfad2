// What registration writes is owned by the install's MutatingWebhookConfiguration, so the garbage
// collector deletes it with the install: new Services and ConfigMaps get the ownerReference, ours
// from before get it added, and a ConfigMap another tool manages is never adopted.
import t from 'tap';
import type { V1ConfigMap, V1Pod, V1Service } from '@kubernetes/client-node';
import { ownerOf } from '../../src/kube/owner.ts';
import { plan, type ClusterState } from '../../src/register/plan.ts';
import { registerSettings } from '../support/register.ts';

const owner = ownerOf({ metadata: { name: 'thanos-sidecar-injector', uid: 'webhook-uid' } })!;
const injected: V1Pod = {
  metadata: { namespace: 'monitoring', name: 'prometheus-0', uid: 'p', labels: { 'thanos-injector/injected': 'true' } },
  spec: { containers: [{ name: 'prometheus' }], initContainers: [{ name: 'thanos-sidecar', restartPolicy: 'Always' }] },
  status: { phase: 'Running', podIP: '10.0.0.2', conditions: [{ type: 'Ready', status: 'True' }] },
};
const state = (services: V1Service[], configMap: V1ConfigMap | undefined, withOwner = true): ClusterState => ({
  injectedPods: [injected], services, labelledNamespaces: [], selectablePods: [], configMap, prometheusConfigMaps: [], unreadable: [],
  uploads: new Map(), readAt: 0, ...(withOwner ? { owner } : {}),
});

void t.test('created: the Service and the ConfigMap name the webhook configuration as their owner', (t) => {
  t.same(ownerOf({ metadata: { name: 'x' } }), undefined, 'no uid, no owner');
  const planned = plan(state([], undefined), registerSettings());
  const created = planned.services[0];
  t.equal(created?.action, 'create');
  if (created?.action === 'create') t.same(created.service.metadata?.ownerReferences, [{ apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', name: 'thanos-sidecar-injector', uid: 'webhook-uid' }]);
  t.same(planned.configMap.configMap?.metadata?.ownerReferences, [owner]);
  const unowned = plan(state([], undefined, false), registerSettings());
  t.same(unowned.configMap.configMap?.metadata?.ownerReferences, undefined, 'no webhook configuration found: written unowned');
  t.end();
});

void t.test('ours from before (release 0.1.0) get the owner added; another tool\'s ConfigMap is left unowned', (t) => {
  const first = plan(state([], undefined), registerSettings());
  const service = first.services[0]?.action === 'create' ? first.services[0].service : undefined;
  const configMap = first.configMap.configMap;
  const old = (object: V1Service | V1ConfigMap) => ({ ...object, metadata: { ...object.metadata, ownerReferences: undefined, resourceVersion: '7' } });
  const again = plan(state([old(service!)], old(configMap)), registerSettings());
  t.equal(again.services[0]?.action, 'update', 'the same spec, but no owner: updated');
  if (again.services[0]?.action === 'update') t.same(again.services[0].service.metadata?.ownerReferences, [owner]);
  t.equal(again.configMap.action, 'update');
  t.same(again.configMap.configMap?.metadata?.ownerReferences, [owner]);
  t.equal(again.configMap.configMap?.metadata?.resourceVersion, '7', 'an update of what was read');

  const owned = plan(state([service!], configMap), registerSettings());
  t.same([owned.services[0]?.action, owned.configMap.action], ['unchanged', 'unchanged'], 'owned and current: nothing to write');

  const argo = { ...configMap, metadata: { ...configMap.metadata, labels: { 'app.kubernetes.io/managed-by': 'argocd' }, ownerReferences: undefined } };
  const theirs = plan(state([service!], argo), registerSettings());
  t.equal(theirs.configMap.action, 'unchanged', 'same data, not ours: not adopted');
  t.same(theirs.configMap.configMap?.metadata?.ownerReferences, undefined);
  t.end();
});
