// Reading one line out of a container's log for a row: what a logfmt or JSON line says (msg and
// err), without the stack trace Thanos appends to its final error.
import t from 'tap';
import { lastError, lastLine, logMessage } from '../../src/check/logs.ts';

void t.test("a Thanos exit: the error's first line, not its stack trace", (t) => {
  const line = 'ts=2026-12-02T07:10:01.133Z caller=main.go:174 level=error err="listen tcp 0.0.0.0:10902: bind: address already in use\\nsidecar command failed\\nmain.main\\n\\t/app/cmd/thanos/main.go:174"';
  t.equal(logMessage(line), 'listen tcp 0.0.0.0:10902: bind: address already in use');
  t.end();
});

void t.test('msg and err together, quoted or not, escaped quotes kept; JSON lines too', (t) => {
  t.equal(logMessage('level=warn msg="heartbeat failed" err=EOF'), 'heartbeat failed: EOF');
  t.equal(logMessage('level=error msg="bad \\"value\\"" caller=x.go:1'), 'bad "value"');
  t.equal(logMessage('{"caller":"main.go:145","err":"no external labels configured on Prometheus server\\nmain.runSidecar","level":"error","ts":"2026-12-02T07:20:26Z"}'), 'no external labels configured on Prometheus server');
  t.equal(logMessage('plain text without fields'), 'plain text without fields');
  t.equal(logMessage(`msg="${'x'.repeat(400)}"`).length, 300, 'one row is not a log dump');
  t.end();
});

void t.test('which line: the last matching one; for an exit, the last error line, else the last line', (t) => {
  const log = 'level=info msg="a"\nlevel=error msg="first failure"\nlevel=error msg="second failure"\nlevel=info msg="shutting down"\n';
  t.equal(lastLine(log, /failure/), 'second failure');
  t.equal(lastLine(log, /nothing/), undefined);
  t.equal(lastError(log), 'second failure');
  t.equal(lastError('level=info msg="a"\nlevel=info msg="b"\n\n'), 'b');
  t.equal(lastError(''), undefined);
  t.end();
});
