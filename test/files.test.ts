// readFailure: why a file could not be read, in words, for the one-line errors of the commands.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFailure } from '../src/files.ts';

function errno(code: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code });
}

void t.test('the common errno codes in words', async (t) => {
  t.equal(readFailure(await readFile(join(tmpdir(), 'thanos-injector-no-such-file.yaml')).catch((e: unknown) => e)), 'no such file');
  t.equal(readFailure(await readFile(tmpdir()).catch((e: unknown) => e)), 'is a directory');
  t.equal(readFailure(errno('EACCES', "EACCES: permission denied, open '/etc/secret.yaml'")), 'permission denied');
  t.equal(readFailure(errno('ENOENT', "ENOENT: no such file or directory, open 'x.yaml'")), 'no such file');
  t.equal(readFailure(errno('EISDIR', 'EISDIR: illegal operation on a directory, read')), 'is a directory');
});

void t.test('anything else: the first line of the message, never a stack', (t) => {
  t.equal(readFailure(errno('ELOOP', "ELOOP: too many symbolic links encountered, open 'x.yaml'\n    at open (node:fs)")), "ELOOP: too many symbolic links encountered, open 'x.yaml'");
  t.equal(readFailure(new Error('stream destroyed')), 'stream destroyed');
  t.equal(readFailure(new TypeError('')), 'TypeError');
  t.equal(readFailure('gone'), 'gone');
  t.equal(readFailure(undefined), 'undefined');
  t.end();
});
