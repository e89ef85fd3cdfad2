// certs.mode=auto decisions: the names to certify, when a rotation is due and of what, which
// webhooks need their caBundle repaired and with which JSON patch, and what a failed call needs.
import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { ApiException } from '@kubernetes/client-node';
import {
  bundleFromSecretData,
  caBundlePatch,
  permissionHint,
  planCertificates,
  renewalDue,
  secretDataOf,
  servingNames,
  trustBundle,
  type CertificateBundle,
} from '../../src/certs/auto.ts';
import { generateCertificates, issueServingCertificate } from '../../src/certs/generate.ts';
import { pemCertificates } from '../../src/certs/pem.ts';

const DAY = 24 * 3600 * 1000;
const NAMES = servingNames('thanos-injector', 'monitoring', ['127.0.0.1']);
const inDays = (days: number) => new Date(Date.now() + days * DAY);

async function bundle(names = NAMES, days = 365): Promise<CertificateBundle> {
  return generateCertificates(names, days);
}

void t.test('servingNames: the Service in every form the apiserver may dial, then the extra names', (t) => {
  t.same(NAMES, [
    'thanos-injector',
    'thanos-injector.monitoring',
    'thanos-injector.monitoring.svc',
    'thanos-injector.monitoring.svc.cluster.local',
    '127.0.0.1',
  ]);
  t.same(servingNames(undefined, 'monitoring', ['localhost', 'localhost']), ['localhost'], 'no Service: only the extra names, once each');
  t.same(servingNames(undefined, 'monitoring'), []);
  t.end();
});

void t.test('Secret data: the four keys, base64, and back', async (t) => {
  const certificates = await bundle();
  const data = secretDataOf(certificates);
  t.same(Object.keys(data).sort(), ['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
  t.equal(Buffer.from(data['tls.crt'] ?? '', 'base64').toString(), certificates.cert);
  t.same(bundleFromSecretData(data), certificates);
  t.same(bundleFromSecretData(undefined), {});
  t.same(bundleFromSecretData({ 'tls.crt': '' }), {}, 'an empty value is a missing value');
});

void t.test('planCertificates: nothing yet means a new CA and serving certificate', (t) => {
  t.match(planCertificates({}, NAMES, new Date()), { action: 'renew-all', reason: 'no certificates yet' });
  t.end();
});

void t.test('planCertificates: a fresh bundle covering the names is kept', async (t) => {
  t.same(planCertificates(await bundle(), NAMES, new Date()), { action: 'keep' });
});

void t.test('planCertificates: the serving certificate is renewed with less than a third of its validity left', async (t) => {
  const certificates = await bundle(NAMES, 30);
  t.same(planCertificates(certificates, NAMES, inDays(19)), { action: 'keep' }, '11 of 30 days left');
  const due = planCertificates(certificates, NAMES, inDays(21));
  t.equal(due.action, 'renew-serving', '9 of 30 days left: only the serving certificate, the CA is kept');
  t.match(due, { reason: /^tls\.crt expires .* \(8 days left\)$/ });
  t.equal(planCertificates(certificates, NAMES, inDays(31)).action, 'renew-serving', 'expired');
  const longer = await bundle(NAMES, 365);
  t.same(planCertificates(longer, NAMES, inDays(240)), { action: 'keep' }, '365-day certificate, 125 days left');
  t.equal(planCertificates(longer, NAMES, inDays(250)).action, 'renew-serving', '365-day certificate, 115 days left');
});

void t.test('planCertificates: the CA is replaced (with the serving certificate) with less than a third left', async (t) => {
  const certificates = await bundle();
  t.equal(planCertificates(certificates, NAMES, inDays(6 * 365)).action, 'renew-serving', 'after 6 of 10 years only the (expired) serving certificate');
  const due = planCertificates(certificates, NAMES, inDays(7 * 365));
  t.equal(due.action, 'renew-all', 'after 7 of 10 years the CA too');
  t.match(due, { reason: /^the CA expires/ });
});

void t.test('planCertificates: names the serving certificate does not cover', async (t) => {
  const certificates = await bundle(['thanos-injector.monitoring.svc']);
  t.same(planCertificates(certificates, NAMES, new Date()), {
    action: 'renew-serving',
    reason: 'tls.crt does not cover thanos-injector, thanos-injector.monitoring, thanos-injector.monitoring.svc.cluster.local, 127.0.0.1',
  });
});

void t.test('planCertificates: broken or foreign parts', async (t) => {
  const certificates = await bundle();
  const other = await bundle();
  t.match(planCertificates({ ...certificates, key: other.key }, NAMES, new Date()), { action: 'renew-serving', reason: /do not match/ }, 'key of another certificate');
  t.match(planCertificates({ ...certificates, cert: undefined }, NAMES, new Date()), { action: 'renew-serving', reason: /missing/ }, 'no tls.crt');
  t.match(planCertificates({ ...certificates, cert: other.cert, key: other.key }, NAMES, new Date()), { action: 'renew-serving', reason: 'tls.crt is not signed by the CA in ca.crt' });
  t.match(planCertificates({ ...certificates, caKey: undefined }, NAMES, new Date()), { action: 'renew-all', reason: /ca\.key/ }, 'no ca.key: cannot sign');
  t.match(planCertificates({ ...certificates, caKey: other.caKey }, NAMES, new Date()), { action: 'renew-all' }, 'ca.key of another CA');
  t.match(planCertificates({ ...certificates, caCert: certificates.cert, caKey: certificates.key }, NAMES, new Date()), { action: 'renew-all' }, 'a leaf is no CA');
  t.match(planCertificates({ ...certificates, caCert: 'garbage' }, NAMES, new Date()), { action: 'renew-all' });
});

void t.test('planCertificates: a pair replaced by hand, signed by the same CA, is kept and served', async (t) => {
  const certificates = await bundle();
  const replaced = await issueServingCertificate({ cert: certificates.caCert, key: certificates.caKey }, NAMES, 90);
  t.same(planCertificates({ ...certificates, ...replaced }, NAMES, new Date()), { action: 'keep' });
  t.ok(new X509Certificate(replaced.cert).checkIssued(new X509Certificate(certificates.caCert)), 'issued by the CA');
});

void t.test('planCertificates: the first CA of a ca.crt bundle signs; older CAs after it are only trusted', async (t) => {
  const previous = await bundle();
  const certificates = await bundle();
  const caCert = trustBundle(certificates.caCert, previous.caCert, new Date());
  t.equal(pemCertificates(caCert).length, 2, 'new CA and the still-valid previous CA');
  t.equal(new X509Certificate(pemCertificates(caCert)[0] ?? '').fingerprint256, new X509Certificate(certificates.caCert).fingerprint256, 'the new CA first');
  t.same(planCertificates({ ...certificates, caCert }, NAMES, new Date()), { action: 'keep' });
  t.equal(pemCertificates(trustBundle(certificates.caCert, previous.caCert, inDays(11 * 365))).length, 1, 'an expired previous CA is dropped');
  t.equal(pemCertificates(trustBundle(certificates.caCert, caCert, new Date())).length, 2, 'no duplicates');
  t.equal(pemCertificates(trustBundle(certificates.caCert, undefined, new Date())).length, 1);
});

void t.test('renewalDue: less than the given share of the validity left', async (t) => {
  const cert = new X509Certificate((await bundle(NAMES, 90)).cert);
  t.notOk(renewalDue(cert, inDays(59), 1 / 3));
  t.ok(renewalDue(cert, inDays(61), 1 / 3));
  t.ok(renewalDue(cert, inDays(1), 1), 'a share of 1: always');
});

const CA = Buffer.from('-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n').toString('base64');
const webhook = (name: string, caBundle?: string) => ({ name, clientConfig: { url: 'https://127.0.0.1:8443/mutate', ...(caBundle === undefined ? {} : { caBundle }) } });

void t.test('caBundlePatch: nothing to do when every webhook trusts the CA', (t) => {
  t.same(caBundlePatch({ webhooks: [webhook('a', CA), webhook('b', CA)] }, CA), { operations: [], repaired: [] });
  t.same(caBundlePatch({}, CA), { operations: [], repaired: [] }, 'no webhooks at all');
  t.end();
});

void t.test('caBundlePatch: blank (missing) caBundle gets add, a different one replace, each guarded by the name', (t) => {
  const repair = caBundlePatch({ webhooks: [webhook('namespace.x.io', CA), webhook('pod.x.io'), webhook('third.x.io', 'b2xk')] }, CA);
  t.same(repair.operations, [
    { op: 'test', path: '/webhooks/1/name', value: 'pod.x.io' },
    { op: 'add', path: '/webhooks/1/clientConfig/caBundle', value: CA },
    { op: 'test', path: '/webhooks/2/name', value: 'third.x.io' },
    { op: 'replace', path: '/webhooks/2/clientConfig/caBundle', value: CA },
  ]);
  t.same(repair.repaired, [{ name: 'pod.x.io', was: 'empty' }, { name: 'third.x.io', was: 'different' }]);
  t.end();
});

void t.test('caBundlePatch: an empty string is blank, replaced in place', (t) => {
  const repair = caBundlePatch({ webhooks: [webhook('a', '')] }, CA);
  t.same(repair.operations[1], { op: 'replace', path: '/webhooks/0/clientConfig/caBundle', value: CA });
  t.same(repair.repaired, [{ name: 'a', was: 'empty' }]);
  t.end();
});

void t.test('permissionHint: the RBAC verb for a 403, credentials for a 401, reachability without a status', (t) => {
  t.equal(permissionHint(new ApiException(403, '', undefined, {}), 'create', 'secrets', 'ns'),
    'the injector\'s ServiceAccount likely lacks the RBAC permission "create" on secrets in namespace ns');
  t.equal(permissionHint(new ApiException(403, '', undefined, {}), 'patch', 'mutatingwebhookconfigurations'),
    'the injector\'s ServiceAccount likely lacks the RBAC permission "patch" on mutatingwebhookconfigurations');
  t.match(permissionHint(new ApiException(401, '', undefined, {}), 'get', 'secrets'), 'credentials');
  t.match(permissionHint(new Error('fetch failed'), 'get', 'secrets'), 'reachable');
  t.equal(permissionHint(new ApiException(404, '', undefined, {}), 'create', 'secrets', 'ns'), 'does namespace ns exist?');
  t.equal(permissionHint(new ApiException(500, '', undefined, {}), 'get', 'secrets'), '');
  t.end();
});
