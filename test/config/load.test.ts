// loadConfig: a config file that cannot be read is named, with the reason in words; buildConfig's own rules.
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig, loadConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/errors.ts';

/** buildConfig's error message for `input`, or undefined when it is valid. */
function error(input: unknown): string | undefined {
  try {
    buildConfig(input);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

void t.test('a config file that cannot be read: the path and the reason in words', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'thanos-injector-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const missing = join(dir, 'missing.yaml');
  const failure = (path: string) => loadConfig(path).then(() => undefined, (error: unknown) => error);
  const noFile = await failure(missing);
  t.type(noFile, ConfigError);
  t.equal((noFile as Error).message, `cannot read config file ${missing}: no such file`);
  const directory = await failure(dir);
  t.type(directory, ConfigError);
  t.equal((directory as Error).message, `cannot read config file ${dir}: is a directory`);
});

void t.test('the sidecar knobs: bad forms named with the accepted one; extraArgs never holds a flag the injector sets', (t) => {
  t.match(error({ logFormat: 'text' }), /logFormat.*logfmt or json/);
  t.match(error({ minTime: '2 days' }), /minTime.*a duration back from now such as -2h or -7d, or an RFC 3339 time/);
  t.match(error({ readyTimeout: '1h30m' }), /readyTimeout.*a duration such as 30s, 5m or 1h/);
  t.match(error({ extraArgs: ['hash-func=SHA256'] }), /extraArgs.*a flag such as --hash-func=SHA256/);
  t.equal(error({ extraArgs: ['--hash-func=SHA256', '--min-time=-2h'] }), 'config: extraArgs[1]: --min-time=-2h is a flag the injector sets (minTime); expected a flag it does not set');
  t.equal(error({ extraArgs: ['--shipper.upload-compacted'] }), 'config: extraArgs[0]: --shipper.upload-compacted is a flag the injector sets (upload-history: annotate the pod thanos-injector/upload-history: true to upload the blocks Prometheus compacted before it was injected, once); expected a flag it does not set');
  t.equal(error({ extraArgs: ['--no-shipper.ignore-unequal-block-size'] }), 'config: extraArgs[0]: --no-shipper.ignore-unequal-block-size is a flag the injector sets (compaction); expected a flag it does not set');
  t.match(error({ extraArgs: ['--objstore.config=type: S3'] }), /extraArgs\[0\].*\(objstore\)/);
  t.same(buildConfig({ extraArgs: ['--hash-func=SHA256'], minTime: '2026-01-01T00:00:00Z', readyTimeout: '20m' }).extraArgs, ['--hash-func=SHA256']);
  t.end();
});

void t.test('env, volumes and volume mounts: the rules between entries, each error naming the entry', (t) => {
  const fromSecret = { secretKeyRef: { name: 'bucket', key: 'id' } };
  t.equal(error({ env: [{ name: 'A', value: 'x', valueFrom: fromSecret }] }), 'config: env[0]: A has both value and valueFrom; expected one of them');
  t.equal(error({ env: [{ name: 'A', value: 'x' }, { name: 'A', valueFrom: fromSecret }] }), 'config: env[1]: A is already set; expected each variable once');
  t.match(error({ env: [{ name: 'A', valueFrom: {} }] }), /env\[0\]\.valueFrom: an object is not valid; expected one of secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef/);
  t.match(error({ env: [{ name: 'A', valueFrom: { ...fromSecret, fieldRef: { fieldPath: 'metadata.name' } } }] }), /env\[0\]\.valueFrom.*expected one of secretKeyRef/);
  t.match(error({ env: [{ name: '1A', value: 'x' }] }), /env\[0\]\.name: "1A" is not valid; expected a variable name/);
  t.match(error({ env: [{ name: 'A', valueFrom: { secretKeyRef: { name: 'Bad_Name', key: 'id' } } }] }), /env\[0\]\.valueFrom\.secretKeyRef\.name.*a Secret name/);
  t.match(error({ volumes: [{ name: 'bucket' }] }), /volumes\[0\]: an object is not valid; expected a name and one source: configMap, secret, emptyDir/);
  t.match(error({ volumes: [{ name: 'bucket', secret: { secretName: 'a' }, emptyDir: {} }] }), /volumes\[0\]: .*expected a name and one source/);
  t.match(error({ volumes: [{ name: 'bucket', gitRepo: { repository: 'x' } }] }), /volumes\[0\]: unknown field gitRepo; known fields: name, configMap/);
  t.equal(error({ volumes: [{ name: 'a', emptyDir: {} }, { name: 'a', emptyDir: {} }] }), 'config: volumes[1]: a is already a volume; expected each name once');
  t.match(error({ volumeMounts: [{ name: 'a', mountPath: 'relative' }] }), /volumeMounts\[0\]\.mountPath: "relative" is not valid; expected an absolute path/);
  t.equal(error({ volumeMounts: [{ name: 'a', mountPath: '/x' }, { name: 'b', mountPath: '/x/' }] }), 'config: volumeMounts[1]: /x is already a mount path; expected each path once');
  t.equal(error({ volumeMounts: [{ name: 'a', mountPath: '/etc/thanos/objstore' }] }), 'config: volumeMounts[0]: /etc/thanos/objstore is where the sidecar mounts objstore.mountPath; expected another path');
  t.equal(error({ tracing: { secretName: 'tracing' }, volumeMounts: [{ name: 'a', mountPath: '/etc/thanos/tracing' }] }), 'config: volumeMounts[0]: /etc/thanos/tracing is where the sidecar mounts tracing.mountPath; expected another path');
  t.equal(error({ objstore: { configFile: '/etc/thanos/objstore/objstore.yml' }, volumeMounts: [{ name: 'a', mountPath: '/etc/thanos/objstore' }] }), undefined, 'with a config file no Secret is mounted there');
  t.match(error({ objstore: { configFile: 'objstore.yml' } }), /objstore\.configFile: "objstore.yml" is not valid; expected an absolute path, or empty for none/);
  t.match(error({ extraArgs: ['--tracing.config-file=/x'] }), /extraArgs\[0\].*\(tracing\)/);
  t.match(error({ listenLocal: { grpc: 'yes' } }), /listenLocal\.grpc: "yes" is not valid; expected true or false/);
  t.end();
});

void t.test('extraArgs refuses every flag the injector writes (read from the golden outputs, so the list cannot drift)', (t) => {
  const fixtures = join(import.meta.dirname, '../fixtures/inject');
  const users = new Set(['--hash-func', '--grpc-grace-period']); // sidecar-flags.config.yaml's own extraArgs
  const written = new Set<string>();
  for (const file of readdirSync(fixtures).filter((f) => f.endsWith('.injected'))) {
    for (const match of readFileSync(join(fixtures, file), 'utf8').matchAll(/^\s+- (--(?:grpc|http|prometheus|tsdb|log|objstore|shipper|min|tracing)[-.\w]*)/gm)) {
      if (!users.has(match[1] as string)) written.add(match[1] as string);
    }
  }
  t.ok(written.size >= 15, `flags written by the injector: ${[...written].sort().join(' ')}`);
  for (const flag of written) t.throws(() => buildConfig({ extraArgs: [`${flag}=x`] }), /is a flag the injector sets/, flag);
  t.end();
});
