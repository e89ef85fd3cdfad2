// What `check` prints and returns: an aligned table with a tally, JSON for scripts, and exit code 1
// only when a check failed (warnings and skips pass).
import t from 'tap';
import { format, formatJson, formatTable, tally } from '../../src/check/report.ts';
import { exitCodeOf, fail, ok, skip, warn } from '../../src/check/rows.ts';

const rows = [
  ok('webhook configuration', 'MutatingWebhookConfiguration tsi-thanos-sidecar-injector'),
  warn('namespace injection', 'not labelled thanos-injection: ...'),
  skip('caBundle', 'cannot check: no TLS answer'),
];

void t.test('a table: one row per check, the detail last and unpadded, then a tally', (t) => {
  t.equal(formatTable(rows), [
    'CHECK                  STATUS  DETAIL',
    'webhook configuration  ok      MutatingWebhookConfiguration tsi-thanos-sidecar-injector',
    'namespace injection    warn    not labelled thanos-injection: ...',
    'caBundle               skip    cannot check: no TLS answer',
    '',
    'passed with warnings: 1 ok, 1 warn, 0 fail, 1 skip',
    '',
  ].join('\n'));
  t.match(formatTable([...rows, fail('caBundle', 'stale')]), /\nFAILED: 1 ok, 1 warn, 1 fail, 1 skip\n$/);
  t.match(formatTable([rows[0]!]), /\npassed: 1 ok, 0 warn, 0 fail, 0 skip\n$/);
  t.end();
});

void t.test('JSON: the rows and the tally', (t) => {
  t.same(JSON.parse(formatJson(rows)), { checks: rows, summary: { ok: 1, warn: 1, fail: 0, skip: 1 } });
  t.equal(format(rows, 'json'), formatJson(rows));
  t.equal(format(rows, 'table'), formatTable(rows));
  t.end();
});

void t.test('exit code: 1 on any failure, else 0', (t) => {
  t.equal(exitCodeOf(rows), 0, 'warnings and skips pass');
  t.equal(exitCodeOf([...rows, fail('x', 'y')]), 1);
  t.equal(exitCodeOf([]), 0);
  t.same(tally([]), { ok: 0, warn: 0, fail: 0, skip: 0 });
  t.end();
});
