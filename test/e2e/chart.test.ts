// The Helm chart, checked with the real helm binary (built by test/cluster from Go modules):
// lint, the values schema, and assertions on the rendered objects a reviewer would check first.
import t from 'tap';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse, parseAllDocuments } from 'yaml';
import { buildConfig } from '../../src/config/load.ts';
import { generatePolicy } from '../../src/policy/generate.ts';
import type { V1MutatingWebhookConfiguration } from '@kubernetes/client-node';
import { selectingWebhooks } from '../../src/check/webhook.ts';
import { optedIn } from '../../src/inject/names.ts';
import { ensureTools } from '../cluster/build.ts';

const run = promisify(execFile);
const chart = join(new URL('../..', import.meta.url).pathname, 'charts/thanos-sidecar-injector');
const { helm, helmDocs } = await ensureTools({ log: (message) => t.comment(message) });

interface K8sObject {
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  [key: string]: unknown;
}
interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}
interface Webhook {
  name: string;
  failurePolicy: string;
  timeoutSeconds: number;
  sideEffects: string;
  reinvocationPolicy: string;
  admissionReviewVersions: string[];
  clientConfig: { url?: string; service?: { name: string; namespace: string; path: string; port: number }; caBundle?: string };
  rules: { operations: string[]; resources: string[] }[];
  namespaceSelector: { matchExpressions: { key: string; operator: string; values?: string[] }[] };
  objectSelector: unknown;
}

async function template(...sets: string[]): Promise<K8sObject[]> {
  return templateFor('1.37.2', ...sets);
}

/** The chart rendered for a cluster of `kubeVersion`. */
async function templateFor(kubeVersion: string, ...sets: string[]): Promise<K8sObject[]> {
  const args = ['template', 'tsi', chart, '--namespace', 'observability', '--kube-version', kubeVersion, ...sets.flatMap((s) => ['--set', s])];
  const { stdout } = await run(helm, args);
  return parseAllDocuments(stdout).map((d) => d.toJS() as K8sObject | null).filter((o): o is K8sObject => o !== null);
}
const find = (objects: K8sObject[], kind: string) => objects.filter((o) => o.kind === kind);

void t.test('helm lint passes with the defaults and with every optional part on', async (t) => {
  const { stdout } = await run(helm, ['lint', chart, '--strict']);
  t.match(stdout, '0 chart(s) failed');
  const all = await run(helm, ['lint', chart, '--strict', '--set', 'query.enabled=true', '--set', 'metrics.serviceMonitor.enabled=true',
    '--set', 'metrics.prometheusRule.enabled=true', '--set', 'metrics.dashboard.enabled=true', '--set', 'registration.mode=watch']);
  t.match(all.stdout, '0 chart(s) failed');
});

void t.test('the chart README is what helm-docs makes of values.yaml, and documents every value', async (t) => {
  // --dry-run prints the README instead of writing it; UPDATE_CHART_README=1 writes it.
  const args = ['--chart-search-root', join(chart, '..'), '--skip-version-footer', '--log-level', 'warning'];
  const { stdout } = await run(helmDocs, [...args, '--dry-run']);
  const readme = join(chart, 'README.md');
  if (process.env.UPDATE_CHART_README === '1') writeFileSync(readme, stdout);
  t.equal(readFileSync(readme, 'utf8'), stdout, 'charts/thanos-sidecar-injector/README.md is current (UPDATE_CHART_README=1 regenerates it)');
  const rows = stdout.split('\n').filter((line) => /^\| [a-zA-Z]/.test(line) && !line.startsWith('| Key '));
  t.ok(rows.length >= 60, `${rows.length} values in the table`);
  t.same(rows.filter((row) => /\|\s*\|$/.test(row)).map((row) => row.split('|')[1]?.trim()), [], 'no value without a description');
});

void t.test('the values schema rejects bad values with a message naming them', async (t) => {
  for (const [set, field] of [['replicaCount=banana', '/replicaCount'], ['webhook.failurePolicy=Sometimes', '/webhook/failurePolicy'],
    ['webhook.timeoutSeconds=60', '/webhook/timeoutSeconds'], ['certs.mode=magic', '/certs/mode'], ['injection.blockDuration=2hours', '/injection/blockDuration'],
    ['webhook.url=http://injector:8443/mutate', '/webhook/url'], ['webhook.url=https:///mutate', '/webhook/url']]) {
    const result = await run(helm, ['template', 'tsi', chart, '--set', set!]).then(() => undefined, (error: { stderr: string }) => error.stderr);
    t.ok(result, `${set} is rejected`);
    t.match(result ?? '', field!, `the message names ${field}`);
  }
});

void t.test('two webhooks: namespace opt-in and pod opt-in, both excluding system and release namespaces', async (t) => {
  const [configuration] = find(await template(), 'MutatingWebhookConfiguration');
  const webhooks = (configuration as unknown as { webhooks: Webhook[] }).webhooks;
  t.same(webhooks.map((w) => w.name), ['namespace.thanos-sidecar-injector.io', 'pod.thanos-sidecar-injector.io']);
  for (const webhook of webhooks) {
    t.equal(webhook.sideEffects, 'None');
    t.same(webhook.admissionReviewVersions, ['v1']);
    t.equal(webhook.timeoutSeconds, 5);
    t.equal(webhook.failurePolicy, 'Ignore');
    t.equal(webhook.reinvocationPolicy, 'IfNeeded');
    t.same(webhook.rules.map((r) => [r.operations, r.resources]), [[['CREATE'], ['pods']]], 'CREATE on pods only');
    t.same(webhook.clientConfig.service, { name: 'tsi-thanos-sidecar-injector', namespace: 'observability', path: '/mutate', port: 443 });
    const excluded = webhook.namespaceSelector.matchExpressions.find((e) => e.key === 'kubernetes.io/metadata.name');
    t.same(excluded, { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'kube-public', 'kube-node-lease', 'observability'] });
  }
  t.same(webhooks[0]!.namespaceSelector.matchExpressions[0], { key: 'thanos-injection', operator: 'In', values: ['enabled'] });
  t.same(webhooks[0]!.objectSelector, { matchExpressions: [{ key: 'thanos-injection', operator: 'NotIn', values: ['disabled'] }] });
  t.same(webhooks[1]!.namespaceSelector.matchExpressions[0], { key: 'thanos-injection', operator: 'DoesNotExist' });
  t.same(webhooks[1]!.objectSelector, { matchLabels: { 'thanos-injection': 'enabled' } });

  const [external] = find(await template('webhook.url=https://203.0.113.10:8443/mutate', 'certs.mode=external', 'certs.caBundle=PEM'), 'MutatingWebhookConfiguration');
  const externalHooks = (external as unknown as { webhooks: Webhook[] }).webhooks;
  t.same(externalHooks.map((w) => w.clientConfig), [1, 2].map(() => ({ url: 'https://203.0.113.10:8443/mutate', caBundle: Buffer.from('PEM').toString('base64') })),
    'webhook.url and an external caBundle');

  // certs.mode=auto with webhook.url: the certificate must cover the host the apiserver dials.
  const argsFor = async (url: string) => {
    const deployment = find(await template(`webhook.url=${url}`), 'Deployment').find((d) => d.metadata.name === 'tsi-thanos-sidecar-injector') as unknown as
      { spec: { template: { spec: { containers: { args: string[] }[] } } } };
    return deployment.spec.template.spec.containers[0]!.args.filter((arg) => arg.startsWith('--dns-name') || arg.startsWith('--service-name'));
  };
  t.same(await argsFor('https://127.0.0.1:9443/mutate'), ['--service-name=tsi-thanos-sidecar-injector', '--dns-name=127.0.0.1']);
  t.same(await argsFor('https://injector.example.com/mutate'), ['--service-name=tsi-thanos-sidecar-injector', '--dns-name=injector.example.com']);
  t.same(await argsFor('https://[2001:db8::1]:8443/mutate'), ['--service-name=tsi-thanos-sidecar-injector', '--dns-name=2001:db8::1']);
  t.same(await argsFor(''), ['--service-name=tsi-thanos-sidecar-injector'], 'without webhook.url only the Service names');
});

void t.test('the chart\'s webhook selectors are the opt-in rule that check and register use (optedIn), for every combination of labels', async (t) => {
  const [configuration] = find(await template(), 'MutatingWebhookConfiguration');
  const values = [undefined, 'enabled', 'disabled', 'yes'];
  for (const namespaceValue of values) {
    for (const podValue of values) {
      const namespaceLabels: Record<string, string> = namespaceValue === undefined ? {} : { 'thanos-injection': namespaceValue };
      const podLabels: Record<string, string> = podValue === undefined ? {} : { 'thanos-injection': podValue };
      const selected = selectingWebhooks(configuration as V1MutatingWebhookConfiguration, { metadata: { name: 'monitoring', labels: namespaceLabels } }, podLabels).length > 0;
      t.equal(selected, optedIn(namespaceLabels, podLabels), `namespace ${namespaceValue ?? '(none)'}, pod ${podValue ?? '(none)'}`);
    }
  }
});

void t.test('RBAC: every rule is on the allow-list, nothing cluster-wide on secrets, no wildcards', async (t) => {
  const allowed: Record<string, string[]> = {
    'secrets': ['get', 'update', 'create'],
    'admissionregistration.k8s.io/mutatingwebhookconfigurations': ['get', 'patch', 'delete'],
    'pods': ['get', 'list', 'watch', 'delete'],
    'namespaces': ['get', 'list', 'watch'],
    'services': ['get', 'list', 'create', 'update', 'delete'],
    'events': ['create', 'patch'],
    'events.k8s.io/events': ['create', 'patch'],
    'configmaps': ['get', 'update', 'create'],
    'admissionregistration.k8s.io/mutatingadmissionpolicies': ['create', 'get', 'update', 'delete'],
    'admissionregistration.k8s.io/validatingadmissionpolicies': ['create', 'get', 'update'],
  };
  for (const sets of [[], ['registration.restartUninjected=true'], ['registration.mode=watch'], ['injection.mode=both'], ['injection.mode=policy']]) {
    const objects = await template(...sets);
    for (const role of [...find(objects, 'Role'), ...find(objects, 'ClusterRole')]) {
      for (const rule of (role as unknown as { rules: Rule[] }).rules) {
        for (const group of rule.apiGroups) {
          for (const resource of rule.resources) {
            const key = group === '' ? resource : `${group}/${resource}`;
            t.ok(allowed[key], `${role.kind} ${role.metadata.name}: ${key} is on the allow-list`);
            for (const verb of rule.verbs) t.ok(allowed[key]?.includes(verb), `${role.kind} ${role.metadata.name}: ${verb} ${key} is allowed`);
            t.not(resource, '*', 'no wildcard resource');
            if (role.kind === 'ClusterRole') t.not(resource, 'secrets', 'no secrets cluster-wide');
          }
        }
        t.notOk(rule.verbs.includes('*'), 'no wildcard verb');
      }
    }
    const pods = find(objects, 'ClusterRole').flatMap((r) => (r as unknown as { rules: Rule[] }).rules).find((r) => r.resources.includes('pods'));
    t.equal(pods?.verbs.includes('delete'), sets[0] === 'registration.restartUninjected=true', 'pods/delete only with restartUninjected');
  }
  const [webhookRole] = find(await template(), 'ClusterRole').filter((r) => r.metadata.name === 'tsi-thanos-sidecar-injector');
  t.same((webhookRole as unknown as { rules: Rule[] }).rules[0]?.resourceNames, ['tsi-thanos-sidecar-injector'], 'the webhook may patch only its own configuration');
  // Every rule on the policy but create (which cannot name one) names the install's own; only the uninstall hook deletes it.
  for (const role of find(await template('injection.mode=both'), 'ClusterRole')) {
    for (const rule of (role as unknown as { rules: Rule[] }).rules.filter((r) => r.resources.some((x) => x.endsWith('admissionpolicies')) && !r.verbs.includes('create'))) {
      t.same(rule.resourceNames, ['tsi-thanos-sidecar-injector'], `${role.metadata.name}: its own policy only`);
      t.equal(rule.verbs.includes('delete'), role.metadata.name === 'tsi-thanos-sidecar-injector-uninstall', `${role.metadata.name}: delete only in the uninstall hook`);
    }
    t.notOk(JSON.stringify(role).includes('mutatingadmissionpolicybindings'), `${role.metadata.name}: binds no policy (the chart renders the bindings)`);
  }
  // Every rule on webhook configurations names the install's own; only the uninstall hook deletes it.
  for (const role of find(await template(), 'ClusterRole')) {
    for (const rule of (role as unknown as { rules: Rule[] }).rules.filter((r) => r.resources.includes('mutatingwebhookconfigurations'))) {
      t.same(rule.resourceNames, ['tsi-thanos-sidecar-injector'], `${role.metadata.name}: its own webhook configuration only`);
      t.equal(rule.verbs.includes('delete'), role.metadata.name === 'tsi-thanos-sidecar-injector-uninstall', `${role.metadata.name}: delete only in the uninstall hook`);
    }
  }
});

void t.test('every pod the chart runs passes Pod Security "restricted"', async (t) => {
  const objects = await template('query.enabled=true');
  const podSpecs: { where: string; spec: Record<string, unknown> }[] = [];
  for (const object of objects) {
    const spec = object.spec as Record<string, unknown> | undefined;
    const template = (object.kind === 'CronJob'
      ? ((spec?.jobTemplate as Record<string, unknown>).spec as Record<string, unknown>).template
      : spec?.template) as { spec: Record<string, unknown> } | undefined;
    if (template && ['Deployment', 'Job', 'CronJob'].includes(object.kind)) podSpecs.push({ where: `${object.kind}/${object.metadata.name}`, spec: template.spec });
  }
  t.ok(podSpecs.length >= 4, 'injector, registration CronJob and Job, Query');
  for (const { where, spec } of podSpecs) {
    const pod = spec.securityContext as Record<string, unknown>;
    t.equal(pod.runAsNonRoot, true, `${where}: runAsNonRoot`);
    t.same(pod.seccompProfile, { type: 'RuntimeDefault' }, `${where}: seccomp RuntimeDefault`);
    for (const container of spec.containers as { name: string; securityContext: Record<string, unknown> }[]) {
      t.equal(container.securityContext.allowPrivilegeEscalation, false, `${where}/${container.name}: no privilege escalation`);
      t.equal(container.securityContext.readOnlyRootFilesystem, true, `${where}/${container.name}: read-only root`);
      t.same(container.securityContext.capabilities, { drop: ['ALL'] }, `${where}/${container.name}: drop ALL`);
    }
    t.notOk(spec.hostNetwork ?? spec.hostPID ?? spec.hostIPC, `${where}: no host namespaces`);
  }
});

void t.test('the injector Deployment: replicas, spread, probes, config checksum', async (t) => {
  const deployment = find(await template(), 'Deployment')[0] as unknown as {
    spec: { replicas: number; template: { metadata: { annotations: Record<string, string>; labels: Record<string, string> }; spec: {
      topologySpreadConstraints: unknown[]; containers: { args: string[]; readinessProbe: unknown; livenessProbe: unknown }[] } } };
  };
  t.equal(deployment.spec.replicas, 2);
  t.equal(deployment.spec.template.spec.topologySpreadConstraints.length, 1, 'spread across nodes');
  t.equal(deployment.spec.template.metadata.labels['thanos-injection'], 'disabled', 'never injects itself');
  const container = deployment.spec.template.spec.containers[0]!;
  t.ok(container.readinessProbe && container.livenessProbe, 'probes on the health port');
  t.ok(container.args.includes('--certs-secret=tsi-thanos-sidecar-injector-tls'), 'certs.mode auto by default');
  const checksum = deployment.spec.template.metadata.annotations['checksum/config'];
  const changed = find(await template('injection.blockDuration=4h'), 'Deployment')[0] as unknown as typeof deployment;
  t.not(changed.spec.template.metadata.annotations['checksum/config'], checksum, 'a config change rolls the pods');
  t.equal(find(await template(), 'PodDisruptionBudget').length, 1, 'a PodDisruptionBudget');
});

void t.test('every process that decides reads the same configuration: the webhook and each register pod mount the chart ConfigMap and pass --config', async (t) => {
  interface PodSpec {
    containers: { name: string; args: string[]; volumeMounts?: { name: string; mountPath: string }[] }[];
    volumes?: { name: string; configMap?: { name: string } }[];
  }
  const podOf = (o: K8sObject): PodSpec | undefined => {
    const spec = o.spec as { template?: { spec: PodSpec }; jobTemplate?: { spec: { template: { spec: PodSpec } } } } | undefined;
    return spec?.template?.spec ?? spec?.jobTemplate?.spec.template.spec;
  };
  for (const mode of ['cronJob', 'watch']) {
    const objects = await template(`registration.mode=${mode}`);
    const configMap = find(objects, 'ConfigMap').find((c) => c.metadata.name === 'tsi-thanos-sidecar-injector');
    t.ok(configMap, 'the chart ConfigMap holds the configuration');
    const deciders = objects.filter((o) => ['Deployment', 'Job', 'CronJob'].includes(o.kind) && podOf(o)?.containers.some((c) => c.args.includes('serve') || c.args.includes('register')));
    t.equal(deciders.length, mode === 'watch' ? 2 : 3, `${mode}: the webhook and the register pods`);
    for (const object of deciders) {
      const pod = podOf(object)!;
      const container = pod.containers[0]!;
      const flag = container.args.find((a) => a.startsWith('--config='));
      const path = flag?.slice('--config='.length) ?? '';
      const mount = container.volumeMounts?.find((m) => path.startsWith(`${m.mountPath}/`));
      const volume = pod.volumes?.find((v) => v.name === mount?.name);
      t.equal(volume?.configMap?.name, configMap?.metadata.name, `${mode}: ${object.kind}/${object.metadata.name} reads ${path || 'no --config'} from the chart ConfigMap`);
    }
  }
  const watch = find(await template('registration.mode=watch'), 'Deployment').find((d) => d.metadata.name.endsWith('-register'));
  const watchChanged = find(await template('registration.mode=watch', 'injection.blockDuration=4h'), 'Deployment').find((d) => d.metadata.name.endsWith('-register'));
  const checksum = (o: K8sObject | undefined) => (o?.spec as { template: { metadata: { annotations?: Record<string, string> } } } | undefined)?.template.metadata.annotations?.['checksum/config'];
  t.ok(checksum(watch), 'the watch Deployment carries the config checksum');
  t.not(checksum(watchChanged), checksum(watch), 'a config change rolls the watch');
});

void t.test('optional parts render only when asked', async (t) => {
  const defaults = await template();
  t.equal(find(defaults, 'CronJob').length, 1, 'registration CronJob by default');
  t.same(find(defaults, 'Job').map((j) => j.metadata.name).sort(), ['tsi-thanos-sidecar-injector-policy', 'tsi-thanos-sidecar-injector-register-1', 'tsi-thanos-sidecar-injector-uninstall'],
    'and a one-shot Job, the hook that applies the policy (mode auto is both on 1.37), and the pre-delete hook that removes the webhook configuration first');
  t.same(find(await templateFor('1.32.13'), 'Job').map((j) => j.metadata.name).sort(), ['tsi-thanos-sidecar-injector-register-1', 'tsi-thanos-sidecar-injector-uninstall'], 'on 1.32 (mode auto is webhook): no policy hook');
  t.equal(find(defaults, 'Job').find((j) => j.metadata.name.endsWith('-uninstall'))?.metadata.annotations?.['helm.sh/hook'], 'pre-delete');
  t.equal(find(defaults, 'ServiceMonitor').length + find(defaults, 'PrometheusRule').length, 0, 'no monitoring objects by default');
  const watch = await template('registration.mode=watch');
  t.equal(find(watch, 'CronJob').length, 0, 'watch mode: no CronJob');
  t.ok(find(watch, 'Deployment').some((d) => d.metadata.name === 'tsi-thanos-sidecar-injector-register'), 'watch mode: a Deployment');
  const query = find(await template('query.enabled=true', 'query.discovery=storeSdFiles'), 'Deployment').find((d) => d.metadata.name.endsWith('-query'));
  t.match(JSON.stringify(query), '--store.sd-files=/etc/thanos/endpoints/targets.yaml', 'Query before v0.38 reads targets.yaml');
  const certManager = await template('certs.mode=certManager');
  t.equal(find(certManager, 'Certificate').length, 1, 'certManager: a Certificate');
  t.equal(find(certManager, 'MutatingWebhookConfiguration')[0]?.metadata.annotations?.['cert-manager.io/inject-ca-from'], 'observability/tsi-thanos-sidecar-injector');
  const monitoring = await template('metrics.serviceMonitor.enabled=true', 'metrics.prometheusRule.enabled=true', 'metrics.dashboard.enabled=true');
  t.equal(find(monitoring, 'ServiceMonitor').length, 1);
  const rules = JSON.stringify(find(monitoring, 'PrometheusRule')[0]);
  for (const alert of ['ThanosInjectorAdmissionErrors', 'ThanosInjectorSlowAdmissions', 'ThanosInjectorDown', 'ThanosInjectorCertificateExpiring']) t.match(rules, alert);
  const dashboard = find(monitoring, 'ConfigMap').find((c) => c.metadata.name.endsWith('-dashboard')) as unknown as { data: Record<string, string> };
  t.doesNotThrow(() => void JSON.parse(dashboard.data['thanos-sidecar-injector.json'] ?? ''), 'the dashboard is valid JSON');
  t.match(rules, /ThanosInjectorRegistrationFailing.*kube_cronjob_status_last_successful_time\{namespace=\\"observability\\",cronjob=\\"tsi-thanos-sidecar-injector-register\\"\}/, 'cronJob mode: the CronJob not succeeding');
  t.notMatch(rules, 'alert":"ThanosSidecarMissing', 'the missing-sidecar count needs the watch');
});

void t.test("gRPC TLS: the chart's Query speaks TLS to sidecars serving it, and refuses to render without the Secret for it", async (t) => {
  const queryOf = (objects: K8sObject[]) => find(objects, 'Deployment').find((d) => d.metadata.name.endsWith('-query')) as unknown as {
    spec: { template: { spec: { containers: { args: string[]; volumeMounts: { name: string; mountPath: string }[] }[]; volumes: { name: string; secret?: { secretName: string } }[] } } };
  };
  const plain = queryOf(await template('query.enabled=true')).spec.template.spec;
  t.notOk(plain.containers[0]!.args.some((a) => a.startsWith('--grpc-client-')), 'plain gRPC by default');
  const withCa = queryOf(await template('query.enabled=true', 'injection.grpcTls.secretName=sidecar-tls', 'query.grpcClientTls.secretName=query-tls')).spec.template.spec;
  t.same(withCa.containers[0]!.args.filter((a) => a.startsWith('--grpc-client-')), ['--grpc-client-tls-secure', '--grpc-client-tls-ca=/etc/thanos/grpc-client-tls/ca.crt'], 'TLS verified with ca.crt, no client certificate when the sidecars do not ask');
  t.same(withCa.volumes.find((v) => v.name === 'grpc-client-tls')?.secret, { secretName: 'query-tls' });
  t.ok(withCa.containers[0]!.volumeMounts.some((m) => m.name === 'grpc-client-tls' && m.mountPath === '/etc/thanos/grpc-client-tls'));
  const mutual = queryOf(await template('query.enabled=true', 'injection.grpcTls.secretName=sidecar-tls', 'injection.grpcTls.clientCa=true', 'query.grpcClientTls.secretName=query-tls', 'query.grpcClientTls.serverName=thanos-sidecar')).spec.template.spec;
  t.same(mutual.containers[0]!.args.filter((a) => a.startsWith('--grpc-client-')), ['--grpc-client-tls-secure', '--grpc-client-tls-ca=/etc/thanos/grpc-client-tls/ca.crt',
    '--grpc-client-tls-cert=/etc/thanos/grpc-client-tls/tls.crt', '--grpc-client-tls-key=/etc/thanos/grpc-client-tls/tls.key', '--grpc-client-server-name=thanos-sidecar'], 'client certificates when the sidecars require them');
  const refused = await run(helm, ['template', 'tsi', chart, '--set', 'query.enabled=true', '--set', 'injection.grpcTls.secretName=sidecar-tls']).then(() => '', (error: { stderr: string }) => error.stderr);
  t.match(refused, 'query.grpcClientTls.secretName: the sidecars serve gRPC over TLS', 'no Secret for Query: refused, naming the value');
  t.ok(find(await template('injection.grpcTls.secretName=sidecar-tls'), 'Deployment').length > 0, 'without the chart\'s Query, nothing to wire');
});

void t.test('watch registration exports its metrics: port, probes, Service, ServiceMonitor, alerts, dashboard panels', async (t) => {
  const objects = await template('registration.mode=watch', 'metrics.serviceMonitor.enabled=true', 'metrics.prometheusRule.enabled=true', 'metrics.dashboard.enabled=true');
  const deployment = find(objects, 'Deployment').find((d) => d.metadata.name === 'tsi-thanos-sidecar-injector-register') as unknown as {
    spec: { template: { spec: { containers: { args: string[]; ports: { name: string; containerPort: number }[]; readinessProbe: { httpGet: { path: string; port: string } }; livenessProbe: { httpGet: { path: string } } }[] } } };
  };
  const container = deployment.spec.template.spec.containers[0]!;
  t.ok(container.args.includes('--watch') && container.args.includes('--metrics-port=8080'), 'register --watch --metrics-port=8080');
  t.same(container.ports, [{ name: 'http-metrics', containerPort: 8080, protocol: 'TCP' }]);
  t.same([container.readinessProbe.httpGet.path, container.livenessProbe.httpGet.path], ['/readyz', '/healthz']);
  const service = find(objects, 'Service').find((s) => s.metadata.name === 'tsi-thanos-sidecar-injector-register') as unknown as {
    metadata: { labels: Record<string, string> }; spec: { selector: Record<string, string>; ports: { name: string; targetPort: string }[] };
  };
  t.equal(service.spec.selector['app.kubernetes.io/component'], 'register', 'the Service selects the register pod');
  t.equal(service.spec.ports[0]?.targetPort, 'http-metrics');
  const monitors = find(objects, 'ServiceMonitor') as unknown as { metadata: { name: string }; spec: { selector: { matchLabels: Record<string, string> } } }[];
  const registerMonitor = monitors.find((m) => m.metadata.name === 'tsi-thanos-sidecar-injector-register');
  t.ok(registerMonitor, 'a ServiceMonitor for the register watch');
  for (const [label, value] of Object.entries(registerMonitor?.spec.selector.matchLabels ?? {})) t.equal(service.metadata.labels[label], value, `it selects the Service (${label})`);
  const rules = JSON.stringify(find(objects, 'PrometheusRule')[0]);
  t.match(rules, /ThanosSidecarMissing.*max\(thanos_injector_uninjected_prometheus_pods\{job=\\"tsi-thanos-sidecar-injector-register\\"\}\) > 0/, 'an alert on the uninjected count, by the job the ServiceMonitor gives');
  t.match(rules, /ThanosInjectorRegistrationFailing.*thanos_injector_register_last_success_timestamp_seconds/);
  const dashboard = find(objects, 'ConfigMap').find((c) => c.metadata.name.endsWith('-dashboard')) as unknown as { data: Record<string, string> };
  const panels = (JSON.parse(dashboard.data['thanos-sidecar-injector.json'] ?? '{}') as { panels: { targets: { expr: string }[] }[] }).panels;
  const exprs = panels.flatMap((panel) => panel.targets.map((target) => target.expr)).join('\n');
  for (const metric of ['thanos_injector_registered_pods', 'thanos_injector_uninjected_prometheus_pods']) t.match(exprs, metric, `a panel shows ${metric}`);
});

void t.test('injection.mode both: the bindings the generator makes, and a hook that applies the policy generated from the chart\'s configuration', async (t) => {
  const objects = await template('injection.mode=both', 'webhook.excludedNamespaces={team-x}');
  const config = find(objects, 'ConfigMap').find((c) => c.metadata.name === 'tsi-thanos-sidecar-injector') as unknown as { data: Record<string, string> };
  const { objects: mutating, warnings } = generatePolicy(buildConfig(parse(config.data['config.yaml'] ?? '') as Record<string, unknown>), 'tsi-thanos-sidecar-injector');
  const generated = [...mutating, ...warnings];
  const sorted = (binding: unknown) => JSON.parse(JSON.stringify(binding, (key, value: unknown) => (key === 'values' && Array.isArray(value) ? [...(value as string[])].sort() : value))) as { spec: unknown; metadata: { name: string } };
  const bindingsOf = (list: { kind: string }[]) => list.filter((o) => o.kind.endsWith('PolicyBinding')).map(sorted).map((b) => [(b as unknown as { kind: string }).kind, b.metadata.name, b.spec]);
  t.same(bindingsOf(objects), bindingsOf(generated as { kind: string }[]), 'the chart renders the bindings thanos-injector policy makes, the warnings\' (Warn) too');
  t.equal(find(objects, 'MutatingAdmissionPolicy').length, 0, 'the policy itself comes from the hook');
  const hook = find(objects, 'Job').find((j) => j.metadata.name === 'tsi-thanos-sidecar-injector-policy');
  t.equal(hook?.metadata.annotations?.['helm.sh/hook'], 'post-install,post-upgrade');
  t.match(JSON.stringify(hook), '"args":["policy","--apply","--policy-only","--name=tsi-thanos-sidecar-injector","--config=/etc/thanos-injector/config/config.yaml"]');
  t.match(JSON.stringify(hook), '"configMap":{"name":"tsi-thanos-sidecar-injector"}', 'it reads the configuration the webhook reads');
  t.match(JSON.stringify(find(objects, 'Job').find((j) => j.metadata.name.endsWith('-uninstall'))), '--policy=tsi-thanos-sidecar-injector', 'uninstall removes the policy too');
  t.same(find(await template('injection.mode=webhook'), 'MutatingAdmissionPolicyBinding'), [], 'mode webhook: no policy');
  t.equal(find(await template(), 'MutatingAdmissionPolicyBinding').length, 2, 'mode auto (the default) on 1.37: both, the policy bound');
  await t.rejects(templateFor('1.36.5', 'injection.mode=both'), /injection\.mode both needs Kubernetes 1\.36\.6 or later .*this cluster is v1\.36\.5: use injection\.mode webhook/, 'older clusters: refused with the reason');
  await t.rejects(templateFor('1.32.13', 'injection.mode=both'), /injection\.mode both needs Kubernetes 1\.36\.6/);
  t.same(find(await templateFor('1.32.13'), 'MutatingAdmissionPolicyBinding'), [], 'the oldest release: no policy by default');
});

/** The mode the chart writes into the injector's configuration. */
const configuredMode = (objects: K8sObject[]) =>
  (parse((find(objects, 'ConfigMap').find((c) => c.metadata.name === 'tsi-thanos-sidecar-injector') as unknown as { data: Record<string, string> }).data['config.yaml'] ?? '') as { mode: string }).mode;

void t.test('injection.mode auto: both from Kubernetes 1.36.6, webhook before; the configuration records the mode installed', async (t) => {
  t.equal(configuredMode(await template()), 'both', '1.37.2: both');
  t.equal(configuredMode(await templateFor('1.36.6')), 'both', '1.36.6: both');
  t.equal(configuredMode(await templateFor('1.36.5')), 'webhook', '1.36.5: webhook (its apiserver crashes on the policy)');
  t.equal(configuredMode(await templateFor('1.32.13')), 'webhook', '1.32.13: webhook');
  t.equal(configuredMode(await template('injection.mode=webhook')), 'webhook', 'an explicit mode stands');
});

void t.test('injection.mode policy: the policy alone; no injector pods, Service, webhook configuration or certificate; register owned by the policy', async (t) => {
  const objects = await template('injection.mode=policy', 'metrics.serviceMonitor.enabled=true', 'metrics.prometheusRule.enabled=true', 'metrics.dashboard.enabled=true', 'certs.mode=certManager');
  t.equal(configuredMode(objects), 'policy');
  t.same(find(objects, 'MutatingWebhookConfiguration'), [], 'no webhook configuration');
  t.same(find(objects, 'Deployment'), [], 'no injector Deployment');
  t.same(find(objects, 'Service'), [], 'no Service');
  t.same([...find(objects, 'PodDisruptionBudget'), ...find(objects, 'Certificate'), ...find(objects, 'Issuer')], [], 'no disruption budget, no certificate');
  t.notOk(find(objects, 'ServiceAccount').some((a) => a.metadata.name === 'tsi-thanos-sidecar-injector'), "no webhook's service account");
  t.notOk(find(objects, 'ConfigMap').some((c) => c.metadata.name.endsWith('-dashboard')), "no dashboard of the webhook's metrics");
  t.same(find(objects, 'ServiceMonitor'), [], "no ServiceMonitor of the webhook (register's comes with registration.mode watch)");
  const rules = JSON.stringify(find(objects, 'PrometheusRule'));
  t.notMatch(rules, /ThanosInjector(AdmissionErrors|SlowAdmissions|Down|CertificateExpiring)/, "no alert on the webhook's metrics");
  t.match(rules, /ThanosSidecarUploadsStalled/, 'the sidecar alerts stay');
  t.equal(find(objects, 'MutatingAdmissionPolicyBinding').length, 2, 'the policy, bound');
  t.ok(find(objects, 'Job').some((j) => j.metadata.name === 'tsi-thanos-sidecar-injector-policy'), 'applied by the hook');
  const register = JSON.stringify(find(objects, 'CronJob'));
  t.match(register, '--policy=tsi-thanos-sidecar-injector', 'register: the policy owns what it writes');
  t.notMatch(register, '--webhook-config', 'no webhook configuration named');
  const registerRole = find(objects, 'ClusterRole').find((r) => r.metadata.name === 'tsi-thanos-sidecar-injector-register') as unknown as { rules: Rule[] };
  t.ok(registerRole.rules.some((r) => r.resources.includes('mutatingadmissionpolicies') && r.verbs.join() === 'get' && r.resourceNames?.join() === 'tsi-thanos-sidecar-injector'), 'it may read that policy only');
  await t.rejects(templateFor('1.36.5', 'injection.mode=policy'), /injection\.mode policy needs Kubernetes 1\.36\.6 or later/, 'older clusters: refused with the reason');
});
