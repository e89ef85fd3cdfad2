// Events on pods: stable names (so creating one twice is a conflict, which is how "already
// registered" is known), valid names for long pod names, and what kubectl describe will show.
import t from 'tap';
import { eventName, missingEvent, registeredEvent } from '../../src/register/events.ts';

const pod = { namespace: 'monitoring', name: 'prometheus-0', uid: '0f4c7a52-5d0b-4c1e-9f0e-1a2b3c4d5e6f' };
const now = new Date('2025-06-01T12:00:00Z');

void t.test('an event name is stable per pod uid and reason', (t) => {
  t.equal(eventName(pod, 'ThanosSidecarRegistered'), eventName({ ...pod }, 'ThanosSidecarRegistered'));
  t.not(eventName(pod, 'ThanosSidecarRegistered'), eventName(pod, 'ThanosSidecarMissing'), 'per reason');
  t.not(eventName(pod, 'ThanosSidecarRegistered'), eventName({ ...pod, uid: 'other' }, 'ThanosSidecarRegistered'), 'a new pod of the same name is a new registration');
  t.match(eventName(pod, 'ThanosSidecarRegistered'), /^prometheus-0\.[0-9a-f]{16}$/);
  t.end();
});

void t.test('event names stay valid DNS subdomains for the longest pod names', (t) => {
  const long = { ...pod, name: `${'a'.repeat(235)}-b.c` };
  const name = eventName(long, 'ThanosSidecarMissing');
  t.ok(name.length <= 253, `${name.length} characters`);
  t.match(name, /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
  t.notMatch(name, /[-.]\./, 'no label ends in - or .');
  t.end();
});

void t.test('the registered event: Normal, on the pod, naming the address and the ConfigMap', (t) => {
  const event = registeredEvent({ pod, address: '10.0.0.5:10901', viaService: false }, { namespace: 'monitoring', name: 'thanos-query-endpoints' }, now, 'register-abc');
  t.match(event, {
    metadata: { name: eventName(pod, 'ThanosSidecarRegistered'), namespace: 'monitoring' },
    involvedObject: { apiVersion: 'v1', kind: 'Pod', namespace: 'monitoring', name: 'prometheus-0', uid: pod.uid },
    type: 'Normal',
    reason: 'ThanosSidecarRegistered',
    message: 'Registered with Thanos Query as 10.0.0.5:10901 (ConfigMap monitoring/thanos-query-endpoints)',
    count: 1,
    firstTimestamp: now,
    lastTimestamp: now,
    source: { component: 'thanos-injector-register', host: 'register-abc' },
  });
  t.end();
});

void t.test('the missing event: Warning, saying why and what happens to the pod', (t) => {
  const event = missingEvent({ pod, owner: 'ReplicaSet/prom-1', restart: true, note: 'deleted so that ReplicaSet/prom-1 recreates it injected' }, now, 'h');
  t.equal(event.type, 'Warning');
  t.equal(event.reason, 'ThanosSidecarMissing');
  t.match(event.message, /without the thanos-sidecar container.*deleted so that ReplicaSet\/prom-1 recreates it injected$/);
  t.end();
});
