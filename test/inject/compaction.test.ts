// Which compaction mode a pod gets: from the setting and the versions the image tags name.
import t from 'tap';
import { chooseCompaction } from '../../src/inject/compaction.ts';

const NEW_THANOS = 'quay.io/thanos/thanos:v0.42.5';

void t.test('auto: delayed only when both tags name versions new enough (Prometheus >= 3.9.0, Thanos >= 0.41.0)', (t) => {
  const cases: [string | undefined, string, string][] = [
    ['quay.io/prometheus/prometheus:v3.9.0', NEW_THANOS, 'delayed'],
    ['quay.io/prometheus/prometheus:v3.16.0', 'quay.io/thanos/thanos:v0.41.0', 'delayed'],
    ['prom/prometheus:3.10.1-rc.0', 'thanosio/thanos:v0.41', 'delayed'],
    ['quay.io/prometheus/prometheus:v3.16.0@sha256:0123', NEW_THANOS, 'delayed'],
    ['quay.io/prometheus/prometheus:v3.8.1', NEW_THANOS, 'disabled'],
    ['quay.io/prometheus/prometheus:v2.54.1', NEW_THANOS, 'disabled'],
    ['quay.io/prometheus/prometheus:v3.16.0', 'quay.io/thanos/thanos:v0.40.1', 'disabled'],
    ['registry:5000/prometheus:v3.16.0', NEW_THANOS, 'delayed'],
  ];
  for (const [prometheus, thanos, mode] of cases) t.same(chooseCompaction('auto', prometheus, thanos), { mode }, `${prometheus} + ${thanos} -> ${mode}`);
  t.end();
});

void t.test('auto with a version the tag does not tell: disabled, with a warning naming the image and the setting to override', (t) => {
  for (const [prometheus, thanos, named] of [
    ['quay.io/prometheus/prometheus:latest', NEW_THANOS, 'Prometheus image quay.io/prometheus/prometheus:latest'],
    ['quay.io/prometheus/prometheus@sha256:0123', NEW_THANOS, 'Prometheus image quay.io/prometheus/prometheus@sha256:0123'],
    [undefined, NEW_THANOS, 'Prometheus image (none)'],
    ['quay.io/prometheus/prometheus:v3.16.0', 'quay.io/thanos/thanos:main-2026-11-30', 'Thanos image quay.io/thanos/thanos:main-2026-11-30'],
  ] as const) {
    const choice = chooseCompaction('auto', prometheus, thanos);
    t.match(choice, { mode: 'disabled', warning: new RegExp(`^compaction auto: the version of the ${named.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} cannot be told from its tag`) }, named);
    t.match(choice, { warning: /set compaction delayed \(config compaction, chart injection\.compaction or annotation thanos-injector\/compaction\)/ });
  }
  t.end();
});

void t.test('delayed: trusted where the tags do not tell, refused where they name a version too old', (t) => {
  t.same(chooseCompaction('delayed', 'quay.io/prometheus/prometheus:latest', NEW_THANOS), { mode: 'delayed' });
  t.same(chooseCompaction('delayed', 'quay.io/prometheus/prometheus:v3.16.0', 'my/thanos:custom'), { mode: 'delayed' });
  t.match(chooseCompaction('delayed', 'quay.io/prometheus/prometheus:v3.5.0', 'quay.io/thanos/thanos:v0.39.2'), {
    error: 'compaction delayed needs Prometheus >= 3.9.0 and Thanos >= 0.41.0, but the Prometheus image quay.io/prometheus/prometheus:v3.5.0 is 3.5.0, older than 3.9.0 and the Thanos image quay.io/thanos/thanos:v0.39.2 is 0.39.2, older than 0.41.0; expected compaction auto or disabled for this pod',
  });
  t.end();
});

void t.test('disabled: always, whatever the versions', (t) => {
  t.same(chooseCompaction('disabled', 'quay.io/prometheus/prometheus:v3.16.0', NEW_THANOS), { mode: 'disabled' });
  t.end();
});
