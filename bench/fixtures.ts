// AdmissionReview bodies for the benchmarks: the seed's Prometheus pod, a pass-through pod, and
// pods scaled by containers or environment variables (for the scaling figures).
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';

type Json = Record<string, unknown>;

function review(pod: Json, uid = 'bench-uid-0001'): Json {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      name: '',
      namespace: 'monitoring',
      operation: 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller', groups: ['system:serviceaccounts'] },
      object: pod,
      oldObject: null,
      dryRun: false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
    },
  };
}

/** The seed's Deployment template as the ReplicaSet controller sends it (generateName, defaults). */
export function seedPod(): Json {
  const text = readFileSync(new URL('../examples/prometheus-deployment.yaml', import.meta.url), 'utf8');
  const deployment = parseAllDocuments(text).map((d) => d.toJS() as Json).find((o) => o.kind === 'Deployment')!;
  const template = (deployment.spec as Json).template as Json;
  const pod: Json = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { ...(template.metadata as Json), generateName: 'prometheus-deploy-7d9f8c6b5-', namespace: 'monitoring',
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'prometheus-deploy-7d9f8c6b5', uid: '0b7d6c9e-1c1a-4b1e-8f52-5b3c1e0a9d11', controller: true }],
      managedFields: [{ manager: 'kube-controller-manager', operation: 'Update', apiVersion: 'v1', fieldsType: 'FieldsV1', fieldsV1: { 'f:metadata': { 'f:generateName': {} } } }] },
    spec: { ...(template.spec as Json), restartPolicy: 'Always', dnsPolicy: 'ClusterFirst', schedulerName: 'default-scheduler', securityContext: {},
      serviceAccountName: 'default', terminationGracePeriodSeconds: 30, enableServiceLinks: true },
  };
  const spec = pod.spec as { volumes: Json[]; containers: Json[] };
  spec.volumes.push({ name: 'kube-api-access-x7k2p', projected: { defaultMode: 420, sources: [{ serviceAccountToken: { expirationSeconds: 3607, path: 'token' } }] } });
  for (const container of spec.containers) {
    Object.assign(container, { imagePullPolicy: 'IfNotPresent', terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File' });
    (container.volumeMounts as Json[]).push({ name: 'kube-api-access-x7k2p', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true });
  }
  return pod;
}

export function seedReview(): Json {
  return review(seedPod());
}

/** A pod without Prometheus: the webhook answers allowed without a patch. */
export function passThroughReview(): Json {
  const pod = seedPod();
  const spec = pod.spec as { containers: Json[] };
  spec.containers = [{ ...spec.containers[0], name: 'web', image: 'nginx:1.27', args: [] }];
  return review(pod);
}

/** The seed pod with `containers` containers (one Prometheus) and `envs` env vars on each. */
export function scaledReview(containers: number, envs: number): Json {
  const pod = seedPod();
  const spec = pod.spec as { containers: Json[] };
  const prometheus = spec.containers[0]!;
  const env = Array.from({ length: envs }, (_, i) => ({ name: `VAR_${i}`, value: `value-${i}-${'x'.repeat(16)}` }));
  spec.containers = Array.from({ length: containers }, (_, i) =>
    i === 0 ? { ...prometheus, env } : { name: `worker-${i}`, image: 'busybox:1.36', args: ['sleep', 'infinity'], env,
      volumeMounts: [{ name: 'prometheus-data', mountPath: '/data' }] });
  return review(pod);
}
