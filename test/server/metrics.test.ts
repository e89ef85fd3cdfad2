// The webhook's metrics: the series the chart's alerts watch exist at 0 before the first admission,
// so rate() sees the first error or denial (a series born at 1 has no increase to see).
import t from 'tap';
import { createMetrics } from '../../src/server/metrics.ts';

void t.test('errors, denials and injections are exported at 0 from the start', async (t) => {
  const text = await createMetrics().registry.metrics();
  for (const [outcome, reason] of [['injected', 'injected'], ['denied', 'invalid-annotation'], ['denied', 'unsupported-pod'], ['error', 'internal-error']]) {
    t.match(text, `\nthanos_injector_admissions_total{outcome="${outcome}",reason="${reason}"} 0\n`, `${outcome}/${reason}`);
  }
  t.notMatch(text, 'outcome="skipped"', 'skip reasons appear when they happen');
});
