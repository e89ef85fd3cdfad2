// A pod's containers as `check` judges them from the status the kubelet reports: crash loops with
// the cause they left behind and its fix, containers that run without being ready, a pod still
// starting, and one that is gone. The pods are small and written out; the whole diagnosis over the
// seed's and the chart's pods is in namespace-pods.test.ts.
import t from 'tap';
import type { V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import { checkContainers, containersToExplain, CRASH_WINDOW_MS, READY_GRACE_MS, type PreviousLog } from '../../src/check/containers.ts';

const now = new Date('2026-12-02T08:00:00Z');
const ago = (ms: number) => new Date(now.getTime() - ms);
const MINUTE = 60_000;

const runningReady = (name: string): V1ContainerStatus => ({ name, image: '', imageID: '', ready: true, restartCount: 0, state: { running: { startedAt: ago(60 * MINUTE) } } });

/** A Prometheus pod with the injected native sidecar, every container running and ready unless `statuses` says otherwise. */
function pod(statuses: Record<string, Partial<V1ContainerStatus>> = {}, extra: Partial<V1Pod> = {}): V1Pod {
  const status = (name: string): V1ContainerStatus => ({ ...runningReady(name), ...statuses[name] });
  return {
    metadata: {
      name: 'prometheus-0', namespace: 'monitoring',
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'prometheus', uid: 'u', controller: true }],
    },
    spec: {
      containers: [{ name: 'prometheus', image: 'quay.io/prometheus/prometheus:v3.14.0', ports: [{ containerPort: 9090 }] }],
      initContainers: [
        { name: 'init-chown', image: 'busybox' },
        { name: 'thanos-sidecar', image: 'quay.io/thanos/thanos:v0.42.5', args: ['sidecar'], restartPolicy: 'Always', ports: [{ containerPort: 10901 }, { containerPort: 10902 }] },
      ],
    },
    status: {
      phase: 'Running',
      initContainerStatuses: [
        { name: 'init-chown', image: '', imageID: '', ready: true, restartCount: 0, state: { terminated: { exitCode: 0, reason: 'Completed' } } },
        status('thanos-sidecar'),
      ],
      containerStatuses: [status('prometheus')],
    },
    ...extra,
  };
}

const noLogs = new Map<string, PreviousLog>();
const crashed = (exitCode: number, message?: string, finishedAgo = MINUTE): Partial<V1ContainerStatus> => ({
  ready: false, restartCount: 3,
  state: { waiting: { reason: 'CrashLoopBackOff' } },
  lastState: { terminated: { exitCode, reason: 'Error', message, finishedAt: ago(finishedAgo) } },
});

void t.test('every container running and ready: ok, naming the serving ones (a completed init container is no problem)', (t) => {
  t.same(checkContainers(pod(), noLogs, now), { name: 'pod containers', status: 'ok', detail: 'pod prometheus-0: 2 containers running and ready (thanos-sidecar, prometheus)' });
  t.end();
});

void t.test('a crash with a known cause: its line, and the fix for it', (t) => {
  const hardLink = 'ts=2026-12-02T07:59:00Z caller=main.go:174 level=error err="sync: upload 01M8: hard link block: hard link file chunks/000001: link a b: operation not permitted"';
  const row = checkContainers(pod({ 'thanos-sidecar': crashed(1, hardLink) }), noLogs, now);
  t.equal(row.status, 'fail');
  t.match(row.detail, 'container thanos-sidecar is crash-looping (CrashLoopBackOff, 3 restarts, last exit code 1 (Error) at 2026-12-02T07:59:00Z): sync: upload 01M8: hard link block:');
  t.match(row.detail, 'Prometheus and the sidecar run as different users');
  t.match(row.detail, 'which the injector sets on the pods it injects: re-create the pod (kubectl -n monitoring rollout restart statefulset/prometheus)');
  t.end();
});

void t.test('a second listener on the sidecar port that is no sidecar: named, with the port to change', (t) => {
  const clash = pod({ 'thanos-sidecar': crashed(1, 'level=error err="listen tcp 0.0.0.0:10901: bind: address already in use"') });
  clash.spec!.containers.push({ name: 'exporter', image: 'example/exporter', ports: [{ containerPort: 10901 }] });
  const row = checkContainers(clash, noLogs, now);
  t.match(row.detail, 'containers exporter (port 10901), thanos-sidecar (runs thanos sidecar, ports 10901, 10902) share the pod\'s network');
  t.match(row.detail, 'give the other container another port (or set the injector\'s grpcPort/httpPort)');
  t.notMatch(row.detail, 'prometheus (', 'Prometheus on 9090 is not one of them');
  t.end();
});

void t.test("an unknown cause: the last error line of the previous instance, and how to read all of it", (t) => {
  const status = crashed(2);
  t.same(containersToExplain(pod({ prometheus: status }), now), ['prometheus'], 'no termination message: its previous log is wanted');
  t.same(containersToExplain(pod({ prometheus: crashed(2, 'fatal') }), now), [], 'a termination message is enough');
  const log: PreviousLog = { text: 'ts=1 level=info msg="Starting"\nts=2 level=error msg="opening storage failed" err="lock DB directory: resource temporarily unavailable"\nts=3 level=info msg="See you next time!"\n' };
  const row = checkContainers(pod({ prometheus: status }), new Map([['prometheus', log]]), now);
  t.match(row.detail, 'container prometheus is crash-looping (CrashLoopBackOff, 3 restarts, last exit code 2 (Error)');
  t.match(row.detail, 'opening storage failed: lock DB directory: resource temporarily unavailable (the log of its previous instance); kubectl -n monitoring logs prometheus-0 -c prometheus --previous');
  t.end();
});

void t.test('back up after a recent failed exit is still a crash loop; an old one is a warning', (t) => {
  const upAgain = (finishedAgo: number): Partial<V1ContainerStatus> => ({
    ready: true, restartCount: 5, state: { running: { startedAt: ago(finishedAgo - 1000) } },
    lastState: { terminated: { exitCode: 137, reason: 'OOMKilled', message: 'killed', finishedAt: ago(finishedAgo) } },
  });
  t.match(checkContainers(pod({ prometheus: upAgain(2 * MINUTE) }), noLogs, now), { status: 'fail', detail: /container prometheus is crash-looping \(running again, 5 restarts, last exit code 137 \(OOMKilled\)/ });
  t.match(checkContainers(pod({ prometheus: upAgain(CRASH_WINDOW_MS + MINUTE) }), noLogs, now), {
    status: 'warn', detail: 'pod prometheus-0: container prometheus runs and is ready, but restarted 5 times (last exit code 137 (OOMKilled) at 2026-12-02T07:49:00Z)',
  });
  t.end();
});

void t.test('running but not ready: a failure once past the start-up grace, a warning before', (t) => {
  const notReady = (startedAgo: number): Partial<V1ContainerStatus> => ({ ready: false, state: { running: { startedAt: ago(startedAgo) } } });
  t.match(checkContainers(pod({ 'thanos-sidecar': notReady(40 * MINUTE) }), noLogs, now), {
    status: 'fail', detail: 'pod prometheus-0: container thanos-sidecar runs but is not ready (running since 2026-12-02T07:20:00Z, 40m): its readiness probe fails; kubectl -n monitoring describe pod prometheus-0 shows why',
  });
  t.match(checkContainers(pod({ prometheus: notReady(READY_GRACE_MS - MINUTE) }), noLogs, now), { status: 'warn', detail: /container prometheus started 4m ago and is not ready yet/ });
  t.end();
});

void t.test('a running pod with a container that waits for another reason fails; a Pending pod is a warning with its reasons', (t) => {
  const waiting = { ready: false, state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "quay.io/thanos/thanos:v9"' } } };
  t.match(checkContainers(pod({ 'thanos-sidecar': waiting }), noLogs, now), { status: 'fail', detail: /container thanos-sidecar is not running \(ImagePullBackOff: Back-off pulling image/ });
  const pending = pod({ 'thanos-sidecar': { ready: false, state: { waiting: { reason: 'ContainerCreating' } } } });
  pending.status!.phase = 'Pending';
  pending.status!.containerStatuses = [{ ...runningReady('prometheus'), ready: false, state: { waiting: { reason: 'PodInitializing' } } }];
  pending.status!.conditions = [{ type: 'PodScheduled', status: 'True' }, { type: 'Ready', status: 'False', message: 'containers with unready status: [prometheus]' }];
  t.same(checkContainers(pending, noLogs, now), {
    name: 'pod containers', status: 'warn',
    detail: 'pod prometheus-0 is Pending: container thanos-sidecar ContainerCreating; container prometheus PodInitializing; Ready: containers with unready status: [prometheus]',
  });
  const sidecarCrash = structuredClone(pending);
  sidecarCrash.status!.initContainerStatuses![1] = { ...runningReady('thanos-sidecar'), ...crashed(1, 'level=error err="no external labels configured on Prometheus server"') };
  t.match(checkContainers(sidecarCrash, noLogs, now), { status: 'fail', detail: /thanos-sidecar is crash-looping .*global\.external_labels/ }, 'a crash loop fails a Pending pod too');
  t.end();
});

void t.test('a pod on its way out: deleted is skipped, evicted is a warning', (t) => {
  t.match(checkContainers(pod({}, { metadata: { name: 'prometheus-0', deletionTimestamp: now } }), noLogs, now), { status: 'skip', detail: 'pod prometheus-0 is being deleted' });
  const evicted = pod();
  evicted.status = { phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: memory.' };
  t.same(checkContainers(evicted, noLogs, now), {
    name: 'pod containers', status: 'warn', detail: 'pod prometheus-0 is Failed (Evicted: The node was low on resource: memory.): it runs no container any more; its controller replaces it',
  });
  const starting = pod();
  starting.status = { phase: 'Running' };
  t.match(checkContainers(starting, noLogs, now), { status: 'skip', detail: 'pod prometheus-0 is Running and reports no container status yet' });
  t.end();
});

void t.test('a serving container that exited in a running pod fails; a pod whose node stopped reporting is a warning', (t) => {
  const exited = { ready: false, state: { terminated: { exitCode: 0, reason: 'Completed' } } };
  t.match(checkContainers(pod({ 'thanos-sidecar': exited }), noLogs, now), { status: 'fail', detail: 'pod prometheus-0: container thanos-sidecar is not running (exited with code 0 (Completed))' });
  const lost = pod();
  lost.status!.phase = 'Unknown';
  t.match(checkContainers(lost, noLogs, now), { status: 'warn', detail: 'pod prometheus-0 is in phase Unknown: its node stopped reporting it; kubectl get nodes' });
  t.end();
});
