// The injected pod passes Pod Security "restricted" (kubernetes.io/docs/concepts/security/
// pod-security-standards) whenever the pod did before: the sidecar brings every field it needs.
import t from 'tap';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { buildConfig } from '../../src/config/load.ts';
import { injectPod } from '../../src/inject/inject.ts';
import { applyPatchStrict } from '../harness/jsonpatch.ts';

const ALLOWED_VOLUMES = ['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret'];

/** The "restricted" profile's checks (those that concern pods and containers); returns violations. */
function restrictedViolations(pod: V1Pod): string[] {
  const spec = pod.spec!;
  const problems: string[] = [];
  if (spec.hostNetwork || spec.hostPID || spec.hostIPC) problems.push('host namespaces');
  for (const volume of spec.volumes ?? []) {
    const type = Object.keys(volume).find((k) => k !== 'name');
    if (!ALLOWED_VOLUMES.includes(type ?? '')) problems.push(`volume ${volume.name}: type ${type}`);
  }
  const containers: V1Container[] = [...spec.containers, ...(spec.initContainers ?? [])];
  for (const c of containers) {
    const sc = c.securityContext ?? {};
    if (sc.privileged) problems.push(`${c.name}: privileged`);
    if (sc.allowPrivilegeEscalation !== false) problems.push(`${c.name}: allowPrivilegeEscalation must be false`);
    if (!sc.capabilities?.drop?.includes('ALL')) problems.push(`${c.name}: capabilities must drop ALL`);
    if ((sc.capabilities?.add ?? []).some((cap) => cap !== 'NET_BIND_SERVICE')) problems.push(`${c.name}: capabilities.add`);
    if ((sc.runAsNonRoot ?? spec.securityContext?.runAsNonRoot) !== true) problems.push(`${c.name}: runAsNonRoot must be true`);
    if ((sc.runAsUser ?? spec.securityContext?.runAsUser) === 0) problems.push(`${c.name}: runAsUser 0`);
    const seccomp = sc.seccompProfile?.type ?? spec.securityContext?.seccompProfile?.type;
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') problems.push(`${c.name}: seccompProfile must be RuntimeDefault or Localhost`);
    for (const port of c.ports ?? []) if (port.hostPort) problems.push(`${c.name}: hostPort`);
  }
  return problems;
}

const restrictedPrometheus: V1Container = {
  name: 'prometheus',
  image: 'quay.io/prometheus/prometheus:v3.5.0',
  args: ['--storage.tsdb.path=/prometheus'],
  volumeMounts: [{ name: 'data', mountPath: '/prometheus' }],
  securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } },
};

function inject(pod: V1Pod, kubernetesVersion = '1.33'): V1Pod {
  const result = injectPod(pod, { config: buildConfig({}), namespace: 'monitoring', kubernetesVersion });
  if (result.outcome !== 'injected') throw new Error(`not injected: ${JSON.stringify(result)}`);
  return applyPatchStrict(pod, result.patch) as V1Pod;
}

void t.test('a pod that passes "restricted" still passes it after injection', (t) => {
  for (const version of ['1.28', '1.33']) {
    const pod: V1Pod = { metadata: { name: 'p' }, spec: { containers: [restrictedPrometheus], volumes: [{ name: 'data', emptyDir: {} }] } };
    // The pod relies on the injector for runAsNonRoot: before injection it fails that one rule only.
    t.same(restrictedViolations(pod), ['prometheus: runAsNonRoot must be true'], 'before: only runAsNonRoot is missing');
    t.same(restrictedViolations(inject(pod, version)), [], `after injection (Kubernetes ${version}): no violation`);
  }
  t.end();
});

void t.test('the sidecar itself carries every restricted field, whatever the pod sets', (t) => {
  const pod: V1Pod = { metadata: { name: 'p' }, spec: { containers: [{ ...restrictedPrometheus, securityContext: undefined }], volumes: [{ name: 'data', emptyDir: {} }] } };
  const injected = inject(pod);
  const sidecar = injected.spec!.initContainers!.find((c) => c.name === 'thanos-sidecar')!;
  const violations = restrictedViolations({ metadata: {}, spec: { containers: [sidecar] } });
  t.same(violations, [], 'the sidecar alone passes restricted');
  t.equal(sidecar.securityContext?.readOnlyRootFilesystem, true, 'and has a read-only root filesystem');
  t.end();
});

void t.test('a Prometheus running as root: the sidecar must match it, and the status says why', (t) => {
  const pod: V1Pod = { metadata: { name: 'p' }, spec: { containers: [{ ...restrictedPrometheus, securityContext: { runAsUser: 0 } }], volumes: [{ name: 'data', emptyDir: {} }] } };
  const injected = inject(pod);
  const sidecar = injected.spec!.initContainers!.find((c) => c.name === 'thanos-sidecar')!;
  t.equal(sidecar.securityContext?.runAsNonRoot, false, 'the sidecar may run as root with it');
  t.notOk(injected.spec!.securityContext?.runAsNonRoot, 'no pod-level runAsNonRoot that would stop Prometheus');
  t.match(injected.metadata!.annotations!['thanos-injector/status'], 'Prometheus runs as root', 'the status annotation carries the warning');
  t.end();
});
