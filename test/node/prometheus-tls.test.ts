// Prometheus behind TLS that requires a client certificate (--web.config.file), with the real
// binaries: the injector's own output (`thanos-injector inject`, annotations prometheus-scheme https
// and prometheus-http-client-secret) runs as the real Prometheus 3.16 and Thanos sidecar processes,
// the Secret's file standing at the path the sidecar mounts it. The sidecar calls Prometheus over
// https with the client certificate and becomes ready (it only does once it has read Prometheus'
// external labels); without the http-client file, as before this setting, it never does.
import t from 'tap';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureNodeTools } from '../cluster/build.ts';
import { exec } from '../cluster/cluster.ts';
import { injectOffline, openssl, processPod, startProcess, waitFor } from '../support/node.ts';

t.setTimeout(300_000);

const nodeTools = await ensureNodeTools({ log: (message: string) => t.comment(message) });
const work = await mkdtemp(join(tmpdir(), 'thanos-injector-node-tls-'));
t.teardown(async () => {
  await rm(work, { recursive: true, force: true });
});

// A CA, Prometheus' serving certificate for localhost, and the sidecar's client certificate.
const file = (name: string) => join(work, name);
await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=test-ca', '-keyout', file('ca.key'), '-out', file('ca.crt')]);
for (const [name, ext] of [['server', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth'], ['client', 'extendedKeyUsage=clientAuth']] as const) {
  await openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${name}`, '-keyout', file(`${name}.key`), '-out', file(`${name}.csr`)]);
  await writeFile(file(`${name}.ext`), `${ext}\n`);
  await openssl(['x509', '-req', '-in', file(`${name}.csr`), '-CA', file('ca.crt'), '-CAkey', file('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', file(`${name}.ext`), '-out', file(`${name}.crt`)]);
}
await writeFile(file('web.yml'), `tls_server_config:\n  cert_file: ${file('server.crt')}\n  key_file: ${file('server.key')}\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ${file('ca.crt')}\n`);
await writeFile(file('prometheus.yml'), 'global:\n  scrape_interval: 5s\n  external_labels:\n    cluster: tls-test\n');
// The Secret's content, where the injector mounts it (prometheus.httpClient.mountPath in the config).
const clientDir = file('http-client');
await mkdir(clientDir);
await writeFile(join(clientDir, 'http-client.yml'), `tls_config:\n  ca_file: ${file('ca.crt')}\n  cert_file: ${file('client.crt')}\n  key_file: ${file('client.key')}\n`);
await writeFile(file('config.yaml'), `image: quay.io/thanos/thanos:v${nodeTools.versions.thanos}\nobjstore:\n  enabled: false\nprometheus:\n  httpClient:\n    mountPath: ${clientDir}\n`);
const { prometheusArgs, sidecarArgs } = await injectOffline(processPod(nodeTools.versions.prometheus, file('data'),
  [`--config.file=${file('prometheus.yml')}`, '--web.listen-address=127.0.0.1:9090', `--web.config.file=${file('web.yml')}`],
  { 'thanos-injector/prometheus-scheme': 'https', 'thanos-injector/prometheus-http-client-secret': 'prometheus-client/http-client.yml' }), file('config.yaml'), work);

const ready = async () => (await fetch('http://127.0.0.1:10902/-/ready', { signal: AbortSignal.timeout(2000) }).catch(() => undefined))?.status === 200;

void t.test('the sidecar reaches a Prometheus that requires TLS and a client certificate, through the http-client file the injector mounts', async (t) => {
  t.ok(sidecarArgs.includes('--prometheus.url=https://localhost:9090'), 'the sidecar calls https://localhost:9090');
  t.ok(sidecarArgs.includes(`--prometheus.http-client-file=${clientDir}/http-client.yml`), 'with the http-client file from the Secret');
  const prometheus = startProcess(t, nodeTools.prometheus, prometheusArgs, work);
  const plain = await waitFor('Prometheus serving TLS', async () => {
    if (prometheus.child.exitCode !== null) throw new Error(`prometheus exited:\n${prometheus.log().slice(-2000)}`);
    const result = await exec('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', file('ca.crt'), 'https://localhost:9090/-/ready']);
    return result.stderr.trim() !== '' && !/Connection refused|Couldn't connect/.test(result.stderr) ? result.stderr.trim() : undefined;
  }, 60_000, 250);
  t.pass(`Prometheus refuses a client without a certificate (${plain.slice(0, 120)})`);

  // As before this setting: the sidecar without the http-client file never gets Prometheus' labels.
  const without = startProcess(t, nodeTools.thanos, sidecarArgs.filter((a) => !a.startsWith('--prometheus.http-client-file=')), work);
  await new Promise((resolve) => setTimeout(resolve, 8000));
  t.notOk(await ready(), 'without the http-client file the sidecar is not ready after 8 s');
  without.child.kill('SIGKILL');
  await new Promise((resolve) => without.child.once('exit', resolve));

  const sidecar = startProcess(t, nodeTools.thanos, sidecarArgs, work);
  await waitFor('the sidecar ready', async () => {
    if (sidecar.child.exitCode !== null) throw new Error(`the sidecar exited:\n${sidecar.log().slice(-2000)}`);
    return (await ready()) ? true : undefined;
  }, 60_000, 500).catch((error: Error) => {
    throw new Error(`${error.message}\n--- sidecar ---\n${sidecar.log().slice(-2000)}`);
  });
  t.match(sidecar.log(), /successfully loaded prometheus external labels.*cluster=\\?"tls-test/, 'it read Prometheus\' external labels over TLS with its client certificate');
});
