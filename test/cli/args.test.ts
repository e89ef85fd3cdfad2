// Numeric flags: a clear usage error naming the flag and the accepted form, never a value a
// listener would refuse later with its own message.
import t from 'tap';
import { numberFlag, portFlag } from '../../src/cli/args.ts';
import { UsageError } from '../../src/errors.ts';

void t.test('portFlag takes a whole number from 0 to 65535, else names the flag and the form', (t) => {
  t.equal(portFlag('port', undefined, 8443), 8443, 'the default when absent');
  t.equal(portFlag('port', '0', 8443), 0, '0: any free port');
  t.equal(portFlag('health-port', '65535', 8080), 65535);
  for (const bad of ['1.5', '65536', '-1', '', ' 80', 'http', '1e3', '0x50']) {
    t.throws(() => portFlag('metrics-port', bad, 0), new UsageError(`--metrics-port: "${bad}" is not valid; expected a port number from 0 to 65535`), JSON.stringify(bad));
  }
  t.end();
});

void t.test('numberFlag takes a number in range, else names the flag and the range', (t) => {
  t.equal(numberFlag('drain-timeout', undefined, 20, 1, 3600), 20);
  t.equal(numberFlag('drain-timeout', '2.5', 20, 1, 3600), 2.5, 'fractions are fine for durations');
  for (const bad of ['0', '3601', '', 'soon', 'Infinity']) {
    t.throws(() => numberFlag('drain-timeout', bad, 20, 1, 3600), new UsageError(`--drain-timeout: "${bad}" is not valid; expected a number from 1 to 3600`), JSON.stringify(bad));
  }
  t.end();
});
