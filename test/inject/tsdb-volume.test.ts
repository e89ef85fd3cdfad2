// Whether Prometheus' TSDB outlives the pod, and the ephemeralTsdb policy: each volume source
// classified, the cost worded once, the policy's precedence (annotation, namespace, configuration)
// and its three answers at admission (warn, skip, deny; allow says nothing).
import t from 'tap';
import type { V1PodSpec } from '@kubernetes/client-node';
import { buildConfig } from '../../src/config/load.ts';
import { injectPod } from '../../src/inject/inject.ts';
import { ephemeralTsdbAction, ephemeralTsdbCost, tsdbVolume } from '../../src/inject/tsdb-volume.ts';
import { formatDuration } from '../../src/units.ts';

const spec = (volume: object): V1PodSpec => ({ containers: [{ name: 'prometheus' }], volumes: [{ name: 'data', ...volume }] });

void t.test('each volume source: outlives the pod, outlives it on its node, or goes with it', (t) => {
  t.same(tsdbVolume(spec({ persistentVolumeClaim: { claimName: 'c' } }), 'data'), { volume: 'data', kind: 'persistentVolumeClaim', lifetime: 'persistent' });
  t.same(tsdbVolume(spec({ emptyDir: {} }), 'data'), { volume: 'data', kind: 'emptyDir', lifetime: 'pod' });
  t.same(tsdbVolume(spec({ emptyDir: { medium: 'Memory' } }), 'data'), { volume: 'data', kind: 'emptyDir', medium: 'Memory', lifetime: 'pod' });
  t.same(tsdbVolume(spec({ ephemeral: { volumeClaimTemplate: { spec: {} } } }), 'data'), { volume: 'data', kind: 'ephemeral', lifetime: 'pod' }, 'a generic ephemeral volume: its claim is deleted with the pod');
  t.same(tsdbVolume(spec({ csi: { driver: 'x' } }), 'data'), { volume: 'data', kind: 'csi', lifetime: 'pod' }, 'an inline CSI volume');
  t.same(tsdbVolume(spec({ hostPath: { path: '/srv' } }), 'data'), { volume: 'data', kind: 'hostPath', lifetime: 'node' });
  t.same(tsdbVolume(spec({ nfs: { server: 'n', path: '/' } }), 'data'), { volume: 'data', kind: 'nfs', lifetime: 'persistent' });
  t.same(tsdbVolume(spec({ emptyDir: {} }), 'tsdb'), { volume: 'tsdb', kind: 'volumeClaimTemplate', lifetime: 'persistent' }, "a template's mount of no listed volume is a StatefulSet claim");
  t.end();
});

void t.test('the cost says what goes with the pod, sized by the block duration', (t) => {
  const cost = ephemeralTsdbCost({ volume: 'data', kind: 'emptyDir', medium: 'Memory', lifetime: 'pod' }, '20s');
  t.match(cost, /^Prometheus' TSDB is on emptyDir volume data \(medium Memory: in RAM, counted against the memory limit\), which is deleted with the pod/);
  t.match(cost, /\(up to 30s with 20s blocks\) and every block the sidecar has not uploaded yet$/);
  t.match(ephemeralTsdbCost({ volume: 'd', kind: 'ephemeral', lifetime: 'pod' }, undefined), /generic ephemeral volume d.*up to 3h with 2h blocks/);
  t.equal(formatDuration(5_400_000), '1h30m');
  t.equal(formatDuration(0), '0s');
  t.equal(formatDuration(2 * 86_400_000 + 4 * 3_600_000 + 5_000), '2d4h');
  t.end();
});

void t.test('the policy: the annotation, else the namespace, else the configuration', (t) => {
  const config = buildConfig({ ephemeralTsdb: { action: 'deny', namespaces: { dev: 'allow' } } });
  t.same(ephemeralTsdbAction(config, 'prod', undefined), { action: 'deny', from: 'ephemeralTsdb.action in the injector configuration' });
  t.same(ephemeralTsdbAction(config, 'dev', undefined), { action: 'allow', from: 'ephemeralTsdb.namespaces.dev in the injector configuration' });
  t.same(ephemeralTsdbAction(config, 'dev', 'skip'), { action: 'skip', from: 'annotation thanos-injector/ephemeral-tsdb' });
  t.same(ephemeralTsdbAction(buildConfig({}), 'x', undefined).action, 'warn', 'warn by default');
  t.throws(() => buildConfig({ ephemeralTsdb: { action: 'refuse' } }), /ephemeralTsdb\.action: "refuse" is not valid; expected one of allow, warn, skip, deny/);
  t.throws(() => buildConfig({ ephemeralTsdb: { namespaces: { dev: 'maybe' } } }), /ephemeralTsdb\.namespaces\.dev: "maybe" is not valid; expected one of allow, warn, skip, deny/);
  t.end();
});

void t.test('at admission: warn injects with the cost, allow silently, skip admits without the sidecar, deny refuses; a persistent TSDB is never held back', (t) => {
  const pod = (volume: object, annotations: Record<string, string> = {}) => ({
    metadata: { name: 'prometheus', annotations },
    spec: {
      containers: [{ name: 'prometheus', image: 'quay.io/prometheus/prometheus:v3.5.0', args: ['--storage.tsdb.path=/prometheus'], volumeMounts: [{ name: 'data', mountPath: '/prometheus' }] }],
      volumes: [{ name: 'data', ...volume }],
    },
  });
  const context = (ephemeralTsdb: object) => ({ config: buildConfig({ ephemeralTsdb }), namespace: 'monitoring', kubernetesVersion: '1.33' });
  const emptyDir = { emptyDir: {} };
  const warned = injectPod(pod(emptyDir), context({}));
  t.match(warned, { outcome: 'injected' });
  t.ok(warned.outcome === 'injected' && warned.warnings.some((w) => /deleted with the pod.*annotate the pod thanos-injector\/ephemeral-tsdb: allow to accept the loss/.test(w)), 'warn: the cost among the warnings');
  const allowed = injectPod(pod(emptyDir, { 'thanos-injector/ephemeral-tsdb': 'allow' }), context({}));
  t.ok(allowed.outcome === 'injected' && !allowed.warnings.some((w) => /deleted with the pod/.test(w)), 'allow: injected, no warning');
  t.match(injectPod(pod(emptyDir), context({ namespaces: { monitoring: 'skip' } })), { outcome: 'skipped', reason: 'ephemeral-tsdb', message: /deleted with the pod.*admitted without the sidecar here \(ephemeralTsdb\.namespaces\.monitoring in the injector configuration: skip\)/ });
  t.match(injectPod(pod(emptyDir), context({ action: 'deny' })), { outcome: 'denied', reason: 'ephemeral-tsdb', message: /refused here \(ephemeralTsdb\.action in the injector configuration: deny\): keep the TSDB on a PersistentVolumeClaim/ });
  t.match(injectPod(pod({ persistentVolumeClaim: { claimName: 'x' } }), context({ action: 'deny' })), { outcome: 'injected' }, 'a claim is injected under deny');
  const off = { ...context({ action: 'deny' }), config: buildConfig({ ephemeralTsdb: { action: 'deny' }, objstore: { enabled: false } }) };
  t.match(injectPod(pod(emptyDir), off), { outcome: 'injected' }, 'without uploads nothing is lost to the bucket: the policy does not apply');
  t.end();
});
