// The injector behind the webhook: which Secret holds its serving certificate (from the chart's
// Deployment in each certs mode), reading it, ready endpoints of its Service, and a url that answers.
import t from 'tap';
import type { V1Deployment, V1EndpointSlice, V1Secret, V1Service } from '@kubernetes/client-node';
import { generateCertificates } from '../../src/certs/generate.ts';
import { checkServiceEndpoints, checkUrlReachable, injectorDeployments, servedFromSecret, servingSecret } from '../../src/check/injector.ts';
import { parsePemBundle } from '../../src/check/certificate.ts';
import type { WebhookTarget } from '../../src/check/webhook.ts';

const NAME = 'tsi-thanos-sidecar-injector';
const selector = { 'app.kubernetes.io/name': 'thanos-sidecar-injector', 'app.kubernetes.io/instance': 'tsi', 'app.kubernetes.io/component': 'webhook' };
const service: V1Service = {
  metadata: { name: NAME, namespace: 'thanos-injector' },
  spec: { selector, ports: [{ name: 'https', port: 443, targetPort: 'https' }, { name: 'http-metrics', port: 8080, targetPort: 'http-metrics' }] },
};

/** The chart's injector Deployment (templates/deployment.yaml) in certs mode auto or external. */
function deployment(mode: 'auto' | 'external', secretName = `${NAME}-tls`): V1Deployment {
  return {
    metadata: { name: NAME, namespace: 'thanos-injector' },
    spec: {
      selector: { matchLabels: selector },
      template: {
        metadata: { labels: { ...selector, 'thanos-injection': 'disabled' } },
        spec: {
          containers: [{
            name: 'injector',
            image: 'thanos-sidecar-injector:0.1.0',
            args: ['serve', '--config=/etc/thanos-injector/config/config.yaml', '--port=8443', '--health-port=8080',
              ...(mode === 'auto' ? [`--certs-secret=${secretName}`, `--webhook-config=${NAME}`, `--service-name=${NAME}`] : ['--cert-dir=/etc/thanos-injector/tls'])],
            volumeMounts: [
              { name: 'config', mountPath: '/etc/thanos-injector/config', readOnly: true },
              { name: 'tmp', mountPath: '/tmp' },
              ...(mode === 'external' ? [{ name: 'tls', mountPath: '/etc/thanos-injector/tls', readOnly: true }] : []),
            ],
          }],
          volumes: [
            { name: 'config', configMap: { name: NAME } },
            { name: 'tmp', emptyDir: { sizeLimit: '16Mi' } },
            ...(mode === 'external' ? [{ name: 'tls', secret: { secretName } }] : []),
          ],
        },
      },
    },
  };
}
const unrelated: V1Deployment = { metadata: { name: 'other' }, spec: { selector: { matchLabels: { app: 'other' } }, template: { metadata: { labels: { app: 'other' } }, spec: { containers: [{ name: 'x', args: ['--certs-secret=wrong'] }] } } } };

void t.test("the serving Secret from the injector Deployment's args and volumes", (t) => {
  t.same(injectorDeployments(service, [unrelated, deployment('auto')]).map((d) => d.metadata?.name), [NAME], 'the Deployment whose pods the Service selects');
  t.same(servingSecret(NAME, [deployment('auto', 'my-tls')]), { name: 'my-tls', key: 'tls.crt', how: `--certs-secret of Deployment ${NAME}` });
  t.same(servingSecret(NAME, [deployment('external', 'corp-tls')]), { name: 'corp-tls', key: 'tls.crt', how: `the Secret volume at --cert-dir of Deployment ${NAME}` });
  const byFile = deployment('external', 'files');
  byFile.spec!.template.spec!.containers[0]!.args = ['serve', '--tls-cert-file', '/etc/thanos-injector/tls/server.pem'];
  t.same(servingSecret(NAME, [byFile]), { name: 'files', key: 'server.pem', how: `--tls-cert-file of Deployment ${NAME}` });
  t.same(servingSecret(NAME, []), { name: `${NAME}-tls`, key: 'tls.crt', how: 'the chart default' });
  t.end();
});

void t.test('reading the certificate out of the Secret', async (t) => {
  const pair = await generateCertificates([`${NAME}.thanos-injector.svc`]);
  const reference = { name: `${NAME}-tls`, key: 'tls.crt', how: 'the chart default' };
  const secret: V1Secret = { data: { 'tls.crt': Buffer.from(pair.cert).toString('base64'), 'tls.key': Buffer.from(pair.key).toString('base64') } };
  const served = servedFromSecret('thanos-injector', reference, secret);
  t.ok('certificate' in served && served.certificate.chain.length === 1 && served.certificate.chain[0]?.fingerprint256 === parsePemBundle(pair.cert)[0]?.fingerprint256);
  t.match(servedFromSecret('thanos-injector', reference, undefined), { error: /Secret thanos-injector\/tsi-thanos-sidecar-injector-tls \(the chart default\) not found/, reported: false });
  t.match(servedFromSecret('thanos-injector', reference, { data: {} }), { error: /has no key tls\.crt/ });
  t.match(servedFromSecret('thanos-injector', reference, { data: { 'tls.crt': Buffer.from('nope').toString('base64') } }), { error: /holds no PEM certificate/ });
});

const serviceTarget: Extract<WebhookTarget, { kind: 'service' }> = {
  kind: 'service', namespace: 'thanos-injector', name: NAME, port: 443, path: '/mutate', caBundle: '', dnsName: `${NAME}.thanos-injector.svc`,
};
const slice = (...ready: boolean[]): V1EndpointSlice => ({
  addressType: 'IPv4',
  endpoints: ready.map((r, i) => ({ addresses: [`10.0.0.${i + 1}`], conditions: { ready: r } })),
});

void t.test('a Service target needs ready endpoints', (t) => {
  t.match(checkServiceEndpoints(serviceTarget, service, [slice(true, true)], 'Ignore'), { status: 'ok', detail: `Service thanos-injector/${NAME} has 2 ready endpoints` });
  t.match(checkServiceEndpoints(serviceTarget, service, [slice(false)], 'Ignore'), {
    status: 'fail', detail: /has no ready endpoint \(1 not ready\): no injector pod answers, so pods are created WITHOUT the sidecar/,
  });
  t.match(checkServiceEndpoints(serviceTarget, service, [], 'Fail'), { status: 'fail', detail: /pod creation is refused/ });
  t.match(checkServiceEndpoints(serviceTarget, undefined, [], 'Ignore'), { status: 'fail', detail: /not found/ });
  t.match(checkServiceEndpoints({ ...serviceTarget, port: 8443 }, service, [slice(true)], 'Ignore'), { status: 'fail', detail: /has no port 8443/ });
  t.end();
});

void t.test('a url target must answer TLS', async (t) => {
  const target: Extract<WebhookTarget, { kind: 'url' }> = { kind: 'url', url: 'https://127.0.0.1:8443/mutate', host: '127.0.0.1', port: 8443, caBundle: '', dnsName: '127.0.0.1' };
  const pair = await generateCertificates(['127.0.0.1']);
  t.match(checkUrlReachable(target, { certificate: { source: 'https://127.0.0.1:8443', chain: parsePemBundle(pair.cert) } }, 'Ignore'), { status: 'ok', detail: '127.0.0.1:8443 answers TLS' });
  t.match(checkUrlReachable(target, { error: 'ECONNREFUSED' }, 'Ignore'), {
    status: 'fail', detail: 'https://127.0.0.1:8443/mutate: ECONNREFUSED: the injector is not running or not reachable, so pods are created WITHOUT the sidecar; start it (thanos-injector serve) or fix webhook.url',
  });
});
