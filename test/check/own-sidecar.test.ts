// A pod that runs its own Thanos sidecar: the row names the container and the user's choices, or
// the choice already made (annotation or configuration) and whether the pod has taken it up.
import t from 'tap';
import type { V1Pod } from '@kubernetes/client-node';
import { checkOwnSidecar } from '../../src/check/own-sidecar.ts';
import { buildConfig } from '../../src/config/load.ts';

const config = buildConfig({});

/** The seed's Deployment pod with its hand-made `thanos` container (its step 1.2). */
function seedPod(annotations: Record<string, string> = {}, runAsUser?: number): V1Pod {
  return {
    metadata: {
      name: 'prometheus-deploy-5c8f7b6d4-x2x9k', namespace: 'monitoring', annotations, labels: { app: 'prometheus', 'pod-template-hash': '5c8f7b6d4' },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'prometheus-deploy-5c8f7b6d4', uid: 'u', controller: true }],
    },
    spec: {
      ...(runAsUser === undefined ? {} : { securityContext: { runAsUser } }),
      containers: [
        { name: 'prometheus', image: 'quay.io/prometheus/prometheus:v2.54.1' },
        { name: 'thanos', image: 'quay.io/thanos/thanos:v0.36.1', args: ['sidecar', '--prometheus.url=http://localhost:9090', '--tsdb.path=/prometheus'] },
      ],
    },
  };
}

void t.test('no own sidecar: no row', (t) => {
  const plain = seedPod();
  plain.spec!.containers.pop();
  t.equal(checkOwnSidecar(plain, config), undefined);
  t.end();
});

void t.test('an own sidecar, nothing chosen: a warning with the three choices', (t) => {
  const row = checkOwnSidecar(seedPod(), config);
  t.equal(row?.status, 'warn');
  t.match(row?.detail, /^pod prometheus-deploy-5c8f7b6d4-x2x9k: container thanos runs its own Thanos sidecar; the injector leaves the pod as it is/);
  t.match(row?.detail, 'keep it as it is; annotate the pod template thanos-injector/existing-sidecar: share-user so that it can upload');
  t.match(row?.detail, 'or remove container thanos to let the injector add and manage thanos-sidecar');
  t.end();
});

void t.test('share-user chosen: ok once the pod runs as one user, a warning to re-create it before', (t) => {
  t.match(checkOwnSidecar(seedPod({ 'thanos-injector/existing-sidecar': 'share-user' }, 65534), config), {
    status: 'ok', detail: /annotated thanos-injector\/existing-sidecar: share-user: the pod runs as user 65534, so it can upload$/,
  });
  t.match(checkOwnSidecar(seedPod({ 'thanos-injector/existing-sidecar': 'share-user' }), config), {
    status: 'warn', detail: /but the pod has no pod-level runAsUser yet \(created before that choice\): re-create it \(kubectl -n monitoring rollout restart deployment\/prometheus-deploy\)$/,
  });
  t.match(checkOwnSidecar(seedPod({}, 1000), buildConfig({ existingSidecar: { namespaces: ['monitoring'] } })), {
    status: 'ok', detail: /the injector configuration shares the user in namespace monitoring \(existingSidecar\.namespaces\)/,
  });
  t.match(checkOwnSidecar(seedPod({ 'thanos-injector/existing-sidecar': 'leave' }), buildConfig({ existingSidecar: { shareUser: true } })), {
    status: 'ok', detail: /annotated thanos-injector\/existing-sidecar: leave, so the injector leaves the pod as it is$/,
  }, 'the annotation wins over the configuration, as in the injector');
  t.end();
});
