// The config file's rules, one test each: what buildConfig/loadConfig refuse, with the message a
// user sees (the field, the value and the accepted form), and the nearest input each rule accepts.
import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig, loadConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/errors.ts';

/** buildConfig's error message for `input` (marked when the error is not a ConfigError), or undefined when it is valid. */
function error(input: unknown): string | undefined {
  try {
    buildConfig(input);
    return undefined;
  } catch (e) {
    return e instanceof ConfigError ? e.message : `not a ConfigError: ${String(e)}`;
  }
}

void t.test('the top level is a mapping; an empty file is all defaults', (t) => {
  for (const input of [[], 'text', 42]) t.equal(error(input), 'config: expected a YAML mapping of settings at the top level', JSON.stringify(input));
  t.equal(buildConfig(null).grpcPort, 10901, 'an empty file (null) gives the defaults');
  t.equal(buildConfig(undefined).image, buildConfig({}).image);
  t.end();
});

void t.test('unknown settings are named, with the known ones', (t) => {
  t.match(error({ imagee: 'x' }), /^config: .*unknown field imagee; known fields: .*image/);
  t.match(error({ objstore: { secret: 'x' } }), /objstore: unknown field secret; known fields: .*secretName/);
  t.end();
});

void t.test('blockDuration: a Prometheus duration from 1m to 31d', (t) => {
  t.equal(error({ blockDuration: '30s' }), 'config: blockDuration: "30s" is not valid; expected a Prometheus duration from 1m to 31d, such as 2h');
  t.equal(error({ blockDuration: '32d' }), 'config: blockDuration: "32d" is not valid; expected a Prometheus duration from 1m to 31d, such as 2h');
  t.match(error({ blockDuration: '2 hours' }), /^config: blockDuration: "2 hours" is not valid; expected a Prometheus duration such as 2h or 30m/);
  t.equal(buildConfig({ blockDuration: '1m' }).blockDuration, '1m');
  t.equal(buildConfig({ blockDuration: '31d' }).blockDuration, '31d');
  t.end();
});

void t.test('resources: a request no larger than its limit', (t) => {
  t.equal(error({ resources: { requests: { memory: '1Gi' }, limits: { memory: '512Mi' } } }),
    'config: resources.requests.memory 1Gi is above resources.limits.memory 512Mi; expected a request no larger than the limit');
  t.equal(error({ resources: { requests: { cpu: '2' }, limits: { cpu: '500m' } } }),
    'config: resources.requests.cpu 2 is above resources.limits.cpu 500m; expected a request no larger than the limit');
  t.match(error({ resources: { requests: { cpu: 'lots' } } }), /resources\.requests\.cpu: "lots" is not valid; expected a Kubernetes quantity such as 100m, 128Mi or 1Gi/);
  t.same(buildConfig({ resources: { requests: { memory: '512Mi' }, limits: { memory: '0.5Gi' } } }).resources.requests, { cpu: '50m', memory: '512Mi' }, 'equal is allowed');
  t.end();
});

void t.test('extraArgs: flags only, never one the injector sets (named with the setting that owns it)', (t) => {
  t.equal(error({ extraArgs: ['--log.level=debug'] }), 'config: extraArgs[0]: --log.level=debug is a flag the injector sets (logLevel); expected a flag it does not set');
  t.equal(error({ extraArgs: ['--no-shipper.upload-compacted'] }), 'config: extraArgs[0]: --no-shipper.upload-compacted is a flag the injector sets (upload-history: annotate the pod thanos-injector/upload-history: true to upload the blocks Prometheus compacted before it was injected, once); expected a flag it does not set', 'the negated form too');
  t.same(buildConfig({ extraArgs: ['--log.request.decision=LogFinishCall'] }).extraArgs, ['--log.request.decision=LogFinishCall'], 'a flag that only starts like one the injector sets');
  t.end();
});

void t.test("volumeMounts: never at a path where the sidecar mounts one of its Secrets (from the settings that mount one)", (t) => {
  t.equal(error({ grpcTls: { secretName: 'tls' }, volumeMounts: [{ name: 'a', mountPath: '/etc/thanos/grpc-tls/' }] }),
    'config: volumeMounts[0]: /etc/thanos/grpc-tls is where the sidecar mounts grpcTls.mountPath; expected another path');
  t.equal(error({ prometheus: { httpClient: { secretName: 'client' } }, volumeMounts: [{ name: 'a', mountPath: '/etc/thanos/prometheus-http-client' }] }),
    'config: volumeMounts[0]: /etc/thanos/prometheus-http-client is where the sidecar mounts prometheus.httpClient.mountPath; expected another path');
  t.equal(error({ objstore: { mountPath: '/bucket' }, volumeMounts: [{ name: 'a', mountPath: '/bucket' }] }),
    'config: volumeMounts[0]: /bucket is where the sidecar mounts objstore.mountPath; expected another path', 'the configured path, not the default');
  t.equal(error({ volumeMounts: [{ name: 'a', mountPath: '/etc/thanos/grpc-tls' }] }), undefined, 'without grpcTls nothing is mounted there');
  t.equal(error({ objstore: { enabled: false }, volumeMounts: [{ name: 'a', mountPath: '/etc/thanos/objstore' }] }), undefined, 'without uploads no bucket Secret is mounted');
  t.end();
});

void t.test("injectorNamespace: the pod's own namespace (POD_NAMESPACE) when not set", (t) => {
  const saved = process.env.POD_NAMESPACE;
  t.teardown(() => {
    if (saved === undefined) delete process.env.POD_NAMESPACE;
    else process.env.POD_NAMESPACE = saved;
  });
  process.env.POD_NAMESPACE = 'thanos-injector';
  t.equal(buildConfig({}).injectorNamespace, 'thanos-injector');
  t.equal(buildConfig({ injectorNamespace: 'mine' }).injectorNamespace, 'mine', 'a set value wins');
  delete process.env.POD_NAMESPACE;
  t.equal(buildConfig({}).injectorNamespace, '');
  t.end();
});

void t.test('a file that is not YAML: the path and the parser\'s first line; errors name the file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'thanos-injector-rules-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const broken = join(dir, 'broken.yaml');
  await writeFile(broken, 'image: [unclosed\n');
  const failure = await loadConfig(broken).then(() => undefined, (e: unknown) => e);
  t.type(failure, ConfigError);
  t.match((failure as Error).message, new RegExp(`^config file ${broken} is not valid YAML: [^\\n]+$`));
  const wrong = join(dir, 'wrong.yaml');
  await writeFile(wrong, 'grpcPort: http\n');
  t.match(await loadConfig(wrong).then(() => '', (e: unknown) => (e as Error).message), new RegExp(`^config file ${wrong}: grpcPort: "http" is not valid; expected `));
  const empty = join(dir, 'empty.yaml');
  await writeFile(empty, '');
  t.equal((await loadConfig(empty)).grpcPort, 10901, 'an empty file is all defaults');
});
