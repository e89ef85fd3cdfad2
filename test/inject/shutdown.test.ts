// The sidecar's preStop hook, run by a real POSIX shell (busybox ash and dash, as the Thanos image's
// busybox and Debian have them) on a TSDB folder laid out as Prometheus and the shipper leave it:
// it waits while an upload is in flight and, for a TSDB deleted with the pod, while a cut block is
// not in the upload record; it stops at its limit, under the pod's grace period.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { preStopWait } from '../../src/inject/shutdown.ts';

const shells = ['/bin/busybox', '/usr/bin/dash'].filter((shell) => existsSync(shell));
const root = mkdtempSync(join(tmpdir(), 'tsdb ' + "it's-"));
t.teardown(() => rmSync(root, { recursive: true, force: true }));

/** A block folder as Prometheus writes it (meta.json indented with tabs). */
function block(ulid: string, level: number, samples: number): void {
  mkdirSync(join(root, ulid), { recursive: true });
  const stats = samples > 0 ? `\t"stats": {\n\t\t"numSamples": ${samples}\n\t},\n` : '\t"stats": {},\n';
  writeFileSync(join(root, ulid, 'meta.json'), `{\n\t"ulid": "${ulid}",\n${stats}\t"compaction": {\n\t\t"level": ${level},\n\t\t"sources": [\n\t\t\t"${ulid}"\n\t\t]\n\t}\n}\n`);
}
const uploaded = (...ulids: string[]) => writeFileSync(join(root, 'thanos.shipper.json'), JSON.stringify({ version: 1, uploaded: ulids }, null, 2));

/** How many seconds the hook waited, run by `shell` (limit: grace 4 s, so 2 s). */
function waited(shell: string, lifetime: 'pod' | 'persistent'): number {
  const script = preStopWait(root, lifetime, 4)!.preStop!.exec!.command![2]!;
  const started = Date.now();
  execFileSync(shell, shell.endsWith('busybox') ? ['sh', '-c', script] : ['-c', script]);
  return Math.round((Date.now() - started) / 1000);
}

t.equal(preStopWait('/prometheus', 'pod', 2), undefined, 'no room under a 2 s grace period: no hook');
t.match(preStopWait('/prometheus', 'persistent', undefined), { preStop: { exec: { command: ['/bin/sh', '-c', /-lt 28 \]/] } } }, 'the kubelet\'s 30 s default, less 2 s for the sidecar\'s own shutdown');

for (const shell of shells) {
  void t.test(shell, (t) => {
    block('01AAAAAAAAAAAAAAAAAAAAAAAA', 1, 50);
    block('01BBBBBBBBBBBBBBBBBBBBBBBB', 1, 50);
    block('01CCCCCCCCCCCCCCCCCCCCCCCC', 2, 100);
    block('01DDDDDDDDDDDDDDDDDDDDDDDD', 1, 0);
    uploaded('01AAAAAAAAAAAAAAAAAAAAAAAA', '01BBBBBBBBBBBBBBBBBBBBBBBB');
    t.equal(waited(shell, 'pod'), 0, 'every level-1 block with samples is uploaded: no wait (compacted and empty blocks never are)');
    uploaded('01AAAAAAAAAAAAAAAAAAAAAAAA');
    t.equal(waited(shell, 'pod'), 2, 'a cut block not uploaded yet, TSDB deleted with the pod: waits, up to its limit');
    t.equal(waited(shell, 'persistent'), 0, 'on a volume that outlives the pod the next pod uploads it: no wait');
    mkdirSync(join(root, 'thanos/upload/01BBBBBBBBBBBBBBBBBBBBBBBB/chunks'), { recursive: true });
    t.equal(waited(shell, 'persistent'), 2, 'an upload in flight: waits, whatever the volume');
    rmSync(join(root, 'thanos'), { recursive: true });
    uploaded('01AAAAAAAAAAAAAAAAAAAAAAAA', '01BBBBBBBBBBBBBBBBBBBBBBBB');
    t.end();
  });
}
