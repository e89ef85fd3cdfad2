// Warnings as the apiserver keeps them: lines of at most 120 characters, broken at spaces and
// indented after the first, nothing cut out of a message that fits the 24 lines, a marker where the
// rest is cut, and a message of megabytes (a fuzzed annotation) read only as far as it is shown.
import t from 'tap';
import { toWarnings } from '../../src/admission/review.ts';

void t.test('a long message is broken at spaces into indented lines, none over 120, the words kept', (t) => {
  const message = `Prometheus' TSDB is on emptyDir volume prometheus-data, which is deleted with the pod: ${'every rollout loses it; '.repeat(12)}the end`;
  const lines = toWarnings([message]);
  t.ok(lines.length > 1 && lines.every((line) => line.length <= 120), `several lines of at most 120: ${lines.map((l) => l.length).join(', ')}`);
  t.match(lines[0], /^thanos-injector: Prometheus' TSDB/);
  t.ok(lines.slice(1).every((line) => line.startsWith('  ') && !line.startsWith('   ')), 'later lines indented by two');
  t.equal(lines.map((line, i) => (i === 0 ? line : line.slice(2))).join(' '), `thanos-injector: ${message}`, 'joined again, the message whole');
  t.same(toWarnings(['short']), ['thanos-injector: short']);
  t.end();
});

void t.test('a word longer than a line is cut at the width; control characters become spaces', (t) => {
  const lines = toWarnings([`x${'y'.repeat(300)} z\u0007w`]);
  // eslint-disable-next-line no-control-regex
  t.ok(lines.every((line) => line.length <= 120 && !/[\u0000-\u001f]/.test(line)));
  t.match(lines.at(-1), / z w$/);
  t.end();
});

void t.test('at most 24 lines: what does not fit is replaced by a marker; a message of 4 MB costs little', (t) => {
  const many = toWarnings(Array.from({ length: 40 }, (_, i) => `warning number ${i} ${'word '.repeat(30)}`));
  t.equal(many.length, 24);
  t.match(many.at(-1), 'thanos-injector: the rest is cut here: thanos-injector inject -f shows every warning whole');
  const huge = toWarnings([`unknown annotation thanos-injector/${'a'.repeat(4 * 1024 * 1024)} ignored`]);
  t.equal(huge.length, 24, 'a 4 MB message: 23 lines of it and the marker');
  t.ok(huge.every((line) => line.length <= 120));
  t.same(toWarnings(Array.from({ length: 24 }, (_, i) => `w${i}`)).at(-1), 'thanos-injector: w23', 'exactly 24 short ones fit, no marker');
  t.end();
});
