// `thanos-injector serve`: the admission webhook. With no TLS flags it serves an embedded
// self-signed default from ./certs (created once, reused while valid).
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadConfig } from '../config/load.ts';
import { LOG_LEVELS, type Config } from '../config/schema.ts';
import { readFailure } from '../files.ts';
import { servingNames } from '../certs/auto.ts';
import { ensureCertificates } from '../certs/files.ts';
import { CertificateKeeper } from '../certs/keeper.ts';
import { kubernetesCertificateApi } from '../certs/kube.ts';
import { clusterConfigured, discoverKubernetesVersion } from '../kube/version.ts';
import { startServer, type RunningServer } from '../server/server.ts';
import { numberFlag, parseFlags, portFlag } from './args.ts';
import { CommandError, messageOf, UsageError } from '../errors.ts';

export const help = `Usage: thanos-injector serve [flags]

Serves the mutating admission webhook over HTTPS (POST /mutate) and /healthz, /readyz and
/metrics over plain HTTP on the health port. Stops gracefully on SIGTERM.

TLS: --tls-cert-file and --tls-key-file, or --cert-dir DIR holding tls.crt and tls.key. With
neither, a CA and a serving certificate for localhost, 127.0.0.1, ::1 (and each --dns-name) are
created in ./certs (or --cert-dir) and reused while valid; trust certs/ca.crt to call it.
Certificate files are watched and reloaded without a restart.

Auto mode (--certs-secret NAME): the injector keeps a CA and a serving certificate in Secret NAME
of its namespace (ca.crt, ca.key, tls.crt, tls.key): created when missing, the serving
certificate (365 days) renewed when less than a third of its validity is left, the CA (10 years)
kept so caBundle stays stable. Replicas share the Secret and serve what it holds, without a
restart. Every check it also sets the caBundle of each webhook in --webhook-config to ca.crt
(a helm upgrade or a GitOps re-apply blanks it). SANs: --service-name NAME gives NAME, NAME.NS,
NAME.NS.svc, NAME.NS.svc.cluster.local; plus each --dns-name (an IP becomes an IP SAN).
RBAC needed: get, create, update on the Secret; get, patch on the MutatingWebhookConfiguration.

Flags:
      --config FILE            injector configuration (YAML); defaults apply without it
      --address ADDR           listen address for the webhook (default 0.0.0.0)
      --port N                 HTTPS port (default 8443)
      --health-address ADDR    listen address for health and metrics (default: --address)
      --health-port N          plain-HTTP port for /healthz, /readyz, /metrics (default 8080)
      --tls-cert-file FILE     serving certificate (PEM)
      --tls-key-file FILE      serving key (PEM)
      --cert-dir DIR           folder with tls.crt and tls.key (default ./certs)
      --dns-name NAME          extra name for a generated certificate (repeatable)
      --client-ca-file FILE    require client certificates signed by this CA (the apiserver's)
      --certs-secret NAME      auto mode: keep the CA and serving certificate in this Secret
      --namespace NS           namespace of the Secret (default: env POD_NAMESPACE)
      --webhook-config NAME    auto mode: MutatingWebhookConfiguration whose caBundle is kept
      --service-name NAME      auto mode: the injector's Service (SANs NAME, NAME.NS, NAME.NS.svc, ...)
      --certs-check-interval SECONDS
                               auto mode: how often the Secret and caBundle are checked (default 30)
      --log-level LEVEL        debug, info, warn or error (default info)
      --drain-timeout SECONDS  time for in-flight reviews at shutdown (default 20)
      --shutdown-delay SECONDS readiness off this long before closing (default 0)
  -h, --help                   show this help
`;

function parseServeFlags(argv: string[]) {
  return parseFlags(argv, {
    config: { type: 'string' },
    address: { type: 'string', default: '0.0.0.0' },
    port: { type: 'string' },
    'health-address': { type: 'string' },
    'health-port': { type: 'string' },
    'tls-cert-file': { type: 'string' },
    'tls-key-file': { type: 'string' },
    'cert-dir': { type: 'string' },
    'dns-name': { type: 'string', multiple: true },
    'client-ca-file': { type: 'string' },
    'certs-secret': { type: 'string' },
    namespace: { type: 'string' },
    'webhook-config': { type: 'string' },
    'service-name': { type: 'string' },
    'certs-check-interval': { type: 'string' },
    'log-level': { type: 'string', default: 'info' },
    'drain-timeout': { type: 'string' },
    'shutdown-delay': { type: 'string' },
  }, 'serve').values;
}
type ServeFlags = ReturnType<typeof parseServeFlags>;

/** The flags that only make sense together, or never together. */
function checkFlagCombinations(values: ServeFlags): void {
  if (!(LOG_LEVELS as readonly string[]).includes(values['log-level'])) {
    throw new UsageError(`--log-level: "${values['log-level']}" is not valid; expected debug, info, warn or error`);
  }
  if ((values['tls-cert-file'] === undefined) !== (values['tls-key-file'] === undefined)) {
    throw new UsageError('--tls-cert-file and --tls-key-file go together; give both or neither');
  }
  if (values['certs-secret'] !== undefined && (values['tls-cert-file'] !== undefined || values['cert-dir'] !== undefined)) {
    throw new UsageError('--certs-secret keeps the certificates in a Secret; it does not go with --tls-cert-file, --tls-key-file or --cert-dir');
  }
  const autoOnly = (['webhook-config', 'service-name', 'certs-check-interval', 'namespace'] as const).filter((name) => values[name] !== undefined);
  if (values['certs-secret'] === undefined && autoOnly.length > 0) {
    throw new UsageError(`--${autoOnly[0]} belongs to auto mode; give --certs-secret NAME too`);
  }
}

interface ServingCertificates {
  certFile: string;
  keyFile: string;
  /** Auto mode: keeps the Secret, the files and the webhooks' caBundle current. */
  keeper?: CertificateKeeper;
  notes: string[];
}

/** Auto mode: the certificate in a Secret, kept by a CertificateKeeper. */
async function keptCertificates(values: ServeFlags, secretName: string, intervalMs: number): Promise<ServingCertificates> {
  const namespace = values.namespace ?? process.env.POD_NAMESPACE ?? '';
  if (namespace === '') throw new UsageError('--certs-secret needs the namespace of the Secret: --namespace NS or env POD_NAMESPACE');
  const names = servingNames(values['service-name'], namespace, values['dns-name']);
  if (names.length === 0) throw new UsageError('--certs-secret needs the names to certify: --service-name NAME and/or --dns-name NAME');
  if (!clusterConfigured()) throw new CommandError('--certs-secret needs the Kubernetes API: run in a pod, or set KUBECONFIG');
  const api = await kubernetesCertificateApi().catch((error: unknown) => {
    // connectLight() names the kubeconfig and what is wrong with it.
    throw new CommandError(`certs auto mode: ${messageOf(error)}`);
  });
  const keeper = new CertificateKeeper({ api, namespace, secretName, webhookConfiguration: values['webhook-config'], names, intervalMs });
  const notes = await keeper.prepare().catch((error: unknown) => {
    throw new CommandError(`certs auto mode: ${messageOf(error)}`);
  });
  return { certFile: keeper.certFile, keyFile: keeper.keyFile, keeper, notes };
}

/** The serving certificate: given files, a Secret kept in auto mode, or a self-signed pair in --cert-dir. */
async function servingCertificates(values: ServeFlags, checkIntervalMs: number): Promise<ServingCertificates> {
  const certsSecret = values['certs-secret'];
  if (certsSecret !== undefined) return keptCertificates(values, certsSecret, checkIntervalMs);
  const [certFile, keyFile] = [values['tls-cert-file'], values['tls-key-file']];
  if (certFile !== undefined && keyFile !== undefined) return { certFile, keyFile, notes: [] };
  const dir = resolve(values['cert-dir'] ?? 'certs');
  const files = await ensureCertificates(dir, ['localhost', '127.0.0.1', '::1', ...(values['dns-name'] ?? [])]).catch((error: unknown) => {
    throw new CommandError(`cannot prepare certificates in ${dir}: ${messageOf(error)}`);
  });
  return { certFile: files.certFile, keyFile: files.keyFile, notes: [`${files.created ? 'created' : 'reusing'} serving certificate in ${dir}; CA bundle: ${join(dir, 'ca.crt')}`] };
}

/** sidecarMode auto: the cluster's version when one answers, else the configured one (with a note saying which). */
async function kubernetesVersionFor(config: Config, notes: string[]): Promise<string> {
  if (config.sidecarMode !== 'auto') return config.kubernetesVersion;
  const asked = performance.now();
  const discovered = await discoverKubernetesVersion();
  const waited = (performance.now() - asked).toFixed(0);
  notes.push(discovered ? `cluster version ${discovered} (sidecarMode auto)` : `no cluster answered (waited ${waited} ms); using kubernetesVersion ${config.kubernetesVersion} for sidecarMode auto`);
  return discovered ?? config.kubernetesVersion;
}

/** Resolves once SIGTERM or SIGINT has stopped the server and the certificate keeper. */
function untilStopped(server: RunningServer, keeper: CertificateKeeper | undefined): Promise<void> {
  return new Promise<void>((done) => {
    const stop = (signal: string) => {
      server.webhook.log.info({ signal }, 'signal received');
      // Readiness off and the drain start at once; the certificate keeper's check in progress (which
      // may be waiting on a slow API) is not allowed to hold the shutdown up.
      Promise.allSettled([server.shutdown(), keeper?.stop()])
        .then(() => keeper?.dispose())
        .then(done, done);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

export async function run(argv: string[]): Promise<number> {
  const values = parseServeFlags(argv);
  if (values.help) {
    process.stdout.write(help);
    return 0;
  }
  checkFlagCombinations(values);
  const port = portFlag('port', values.port, 8443);
  const healthPort = portFlag('health-port', values['health-port'], 8080);
  const drainTimeout = numberFlag('drain-timeout', values['drain-timeout'], 20, 1, 3600);
  const shutdownDelay = numberFlag('shutdown-delay', values['shutdown-delay'], 0, 0, 3600);
  const checkInterval = numberFlag('certs-check-interval', values['certs-check-interval'], 30, 1, 86400);
  const config = await loadConfig(values.config);
  // Read before any certificate work, so a wrong path fails fast and leaves nothing behind.
  const clientCa = values['client-ca-file'] === undefined ? undefined : await readFile(values['client-ca-file'], 'utf8').catch((error: unknown) => {
    throw new CommandError(`cannot read --client-ca-file ${values['client-ca-file']}: ${readFailure(error)}`);
  });
  const { certFile, keyFile, keeper, notes } = await servingCertificates(values, checkInterval * 1000);
  const kubernetesVersion = await kubernetesVersionFor(config, notes);
  const server = await startServer({
    config,
    kubernetesVersion,
    certFile,
    keyFile,
    clientCa,
    address: values.address,
    port,
    healthAddress: values['health-address'] ?? values.address,
    healthPort,
    logLevel: values['log-level'],
    drainTimeoutMs: drainTimeout * 1000,
    shutdownDelayMs: shutdownDelay * 1000,
  }).catch(async (error: unknown) => {
    await keeper?.dispose();
    throw new CommandError(`cannot start the webhook: ${messageOf(error)}`);
  });
  keeper?.start({
    log: server.webhook.log,
    onCaBundlePatch: (result) => server.metrics.caBundlePatches.inc({ result }),
    onServedChange: () => server.reloadCertificate(),
  });
  for (const note of notes) server.webhook.log.info(note);
  server.webhook.log.info({ port: server.port, healthPort: server.healthPort }, 'webhook listening (POST /mutate over HTTPS)');
  await untilStopped(server, keeper);
  return 0;
}
