// The webhook's TLS as the apiserver checks it: a caBundle that verifies the served certificate
// (directly or through an intermediate), a stale or blank caBundle, a certificate for another
// name, and the days left before it expires. Certificates are real (src/certs/generate.ts, selfsigned).
import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { generate } from 'selfsigned';
import { generateCertificates } from '../../src/certs/generate.ts';
import { checkCaBundle, checkExpiry, decodeCaBundle, parsePemBundle, verifyChain, type Served } from '../../src/check/certificate.ts';
import type { WebhookTarget } from '../../src/check/webhook.ts';

const DAY = 24 * 3600 * 1000;
const now = new Date();
const b64 = (pem: string) => Buffer.from(pem).toString('base64');

/** A certificate signed by `ca` (or self-signed), with chosen validity: for expired and intermediate cases. */
async function issue(options: { names?: string[]; ca?: { cert: string; key: string }; isCA?: boolean; notBefore: Date; notAfter: Date; cn?: string }) {
  const result = await generate([{ name: 'commonName', value: options.cn ?? options.names?.[0] ?? 'test' }], {
    algorithm: 'sha256',
    keyType: 'ec',
    notBeforeDate: options.notBefore,
    notAfterDate: options.notAfter,
    ...(options.ca ? { ca: { key: options.ca.key, cert: options.ca.cert } } : {}),
    extensions: options.isCA
      ? [{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true }]
      : [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
        { name: 'extKeyUsage', serverAuth: true },
        { name: 'subjectAltName', altNames: (options.names ?? []).map((value) => (/^[0-9.]+$/.test(value) ? { type: 7 as const, ip: value } : { type: 2 as const, value })) },
      ],
  });
  return { cert: result.cert, key: result.private };
}

const serviceTarget = (caBundle: string): WebhookTarget => ({
  kind: 'service', namespace: 'thanos-injector', name: 'tsi-thanos-sidecar-injector', port: 443, path: '/mutate', caBundle,
  dnsName: 'tsi-thanos-sidecar-injector.thanos-injector.svc',
});
const urlTarget = (caBundle: string): WebhookTarget => ({
  kind: 'url', url: 'https://127.0.0.1:8443/mutate', host: '127.0.0.1', port: 8443, caBundle, dnsName: '127.0.0.1',
});
const served = (pem: string, source = 'Secret thanos-injector/tsi-thanos-sidecar-injector-tls'): Served => ({ certificate: { source, chain: parsePemBundle(pem) } });

const good = await generateCertificates(['tsi-thanos-sidecar-injector.thanos-injector.svc', '127.0.0.1']);
const other = await generateCertificates(['tsi-thanos-sidecar-injector.thanos-injector.svc']);

void t.test('a caBundle holding the CA that signed the serving certificate verifies it', (t) => {
  const row = checkCaBundle({ target: serviceTarget(b64(good.caCert)), served: served(good.cert), failurePolicy: 'Ignore', now });
  t.equal(row.status, 'ok', row.detail);
  t.match(row.detail, /^the caBundle \(CN=thanos-injector-ca-[0-9a-f]+\) verifies the serving certificate from Secret thanos-injector\/tsi-thanos-sidecar-injector-tls, valid for tsi-thanos-sidecar-injector.thanos-injector.svc/);
  const url = checkCaBundle({ target: urlTarget(b64(good.caCert)), served: served(good.cert, 'https://127.0.0.1:8443'), failurePolicy: 'Ignore', now });
  t.equal(url.status, 'ok', 'an IP in the url is checked against the IP SANs');
  t.end();
});

void t.test('a bundle with an old and a new CA (a rotation in progress) verifies either', (t) => {
  const bundle = b64(other.caCert + good.caCert);
  t.equal(checkCaBundle({ target: serviceTarget(bundle), served: served(good.cert), failurePolicy: 'Ignore', now }).status, 'ok');
  t.equal(parsePemBundle(decodeCaBundle(bundle)).length, 2);
  t.end();
});

void t.test('a stale caBundle (another CA) fails and says what the apiserver does about it', (t) => {
  const ignore = checkCaBundle({ target: serviceTarget(b64(other.caCert)), served: served(good.cert), failurePolicy: 'Ignore', now });
  t.equal(ignore.status, 'fail');
  t.match(ignore.detail, /^stale caBundle \(CN=thanos-injector-ca-[0-9a-f]+\): it does not verify the serving certificate from Secret/);
  t.match(ignore.detail, /certificate signed by unknown authority/);
  t.match(ignore.detail, /pods are created WITHOUT the sidecar \(failurePolicy Ignore\)/);
  t.match(ignore.detail, /certs\.caBundle/);
  const failClosed = checkCaBundle({ target: serviceTarget(b64(other.caCert)), served: served(good.cert), failurePolicy: 'Fail', now });
  t.match(failClosed.detail, /pod creation is refused \(failurePolicy Fail\)/);
  t.end();
});

void t.test('a blank caBundle fails; a url webhook may rely on the system roots', (t) => {
  const blank = checkCaBundle({ target: serviceTarget(''), served: served(good.cert), failurePolicy: 'Ignore', now });
  t.equal(blank.status, 'fail');
  t.match(blank.detail, /caBundle is empty/);
  const urlUntrusted = checkCaBundle({ target: urlTarget(''), served: served(good.cert), failurePolicy: 'Ignore', now, systemRoots: [other.caCert] });
  t.equal(urlUntrusted.status, 'fail', 'system roots that do not trust it');
  const urlTrusted = checkCaBundle({ target: urlTarget(''), served: served(good.cert), failurePolicy: 'Ignore', now, systemRoots: [good.caCert] });
  t.equal(urlTrusted.status, 'ok', urlTrusted.detail);
  t.match(urlTrusted.detail, /^the system roots \(caBundle empty\) verify the serving certificate/);
  const garbage = checkCaBundle({ target: serviceTarget(b64('not a certificate')), served: served(good.cert), failurePolicy: 'Ignore', now });
  t.equal(garbage.status, 'fail');
  t.match(garbage.detail, /holds no PEM certificate/);
  t.end();
});

void t.test('a certificate for another name fails even when the CA is right', (t) => {
  const target = { ...serviceTarget(b64(good.caCert)), name: 'other', dnsName: 'other.thanos-injector.svc' };
  const row = checkCaBundle({ target, served: served(good.cert), failurePolicy: 'Ignore', now });
  t.equal(row.status, 'fail');
  t.match(row.detail, /does not cover other\.thanos-injector\.svc \(DNS:tsi-thanos-sidecar-injector\.thanos-injector\.svc, IP Address:127\.0\.0\.1\)/);
  t.end();
});

void t.test('the serving certificate could not be read: skipped when reported elsewhere, else failed', (t) => {
  const unreachable = checkCaBundle({ target: urlTarget(b64(good.caCert)), served: { error: 'no TLS answer', reported: true }, failurePolicy: 'Ignore', now });
  t.equal(unreachable.status, 'skip');
  const noSecret = checkCaBundle({ target: serviceTarget(b64(good.caCert)), served: { error: 'Secret x/y not found', reported: false }, failurePolicy: 'Ignore', now });
  t.equal(noSecret.status, 'fail');
  t.match(noSecret.detail, 'Secret x/y not found');
  t.equal(checkExpiry({ error: 'no TLS answer', reported: true }, now).status, 'skip');
  t.end();
});

void t.test('a chain through an intermediate CA verifies; the intermediate alone in the bundle does too', async (t) => {
  const root = await issue({ cn: 'root-ca', isCA: true, notBefore: new Date(now.getTime() - DAY), notAfter: new Date(now.getTime() + 3650 * DAY) });
  const intermediate = await issue({ cn: 'intermediate-ca', isCA: true, ca: root, notBefore: new Date(now.getTime() - DAY), notAfter: new Date(now.getTime() + 365 * DAY) });
  const leaf = await issue({ names: ['127.0.0.1'], ca: intermediate, notBefore: new Date(now.getTime() - DAY), notAfter: new Date(now.getTime() + 90 * DAY) });
  const chain = served(leaf.cert + intermediate.cert, 'https://127.0.0.1:8443');
  t.equal(checkCaBundle({ target: urlTarget(b64(root.cert)), served: chain, failurePolicy: 'Ignore', now }).status, 'ok', 'root in the bundle, intermediate sent by the server');
  t.equal(checkCaBundle({ target: urlTarget(b64(intermediate.cert)), served: served(leaf.cert), failurePolicy: 'Ignore', now }).status, 'ok', 'intermediate in the bundle');
  t.equal(checkCaBundle({ target: urlTarget(b64(root.cert)), served: served(leaf.cert), failurePolicy: 'Ignore', now }).status, 'fail', 'root in the bundle, intermediate not sent');
});

void t.test('an expired CA in the bundle does not verify', async (t) => {
  const ca = await issue({ cn: 'old-ca', isCA: true, notBefore: new Date(now.getTime() - 400 * DAY), notAfter: new Date(now.getTime() - DAY) });
  const leaf = await issue({ names: ['127.0.0.1'], ca, notBefore: new Date(now.getTime() - 10 * DAY), notAfter: new Date(now.getTime() + 90 * DAY) });
  const result = verifyChain(new X509Certificate(leaf.cert), [], [new X509Certificate(ca.cert)], now);
  t.equal(result.verified, false);
  if (!result.verified) t.match(result.reason, /its issuer CN=old-ca is not valid now/);
  t.equal(checkCaBundle({ target: urlTarget(b64(ca.cert)), served: served(leaf.cert), failurePolicy: 'Ignore', now }).status, 'fail');
});

void t.test('days until expiry: ok, warn under 30 days, fail once expired or not yet valid', async (t) => {
  const ok = checkExpiry(served(good.cert), now);
  t.equal(ok.status, 'ok');
  t.match(ok.detail, /^36[45] days left \(expires \d{4}-\d{2}-\d{2}\)$/);

  const ca = { cert: good.caCert, key: good.caKey };
  const soon = await issue({ names: ['127.0.0.1'], ca, notBefore: new Date(now.getTime() - 60 * DAY), notAfter: new Date(now.getTime() + 10 * DAY + 3600_000) });
  const warned = checkExpiry(served(soon.cert), now);
  t.equal(warned.status, 'warn');
  t.match(warned.detail, /expires in 10 days/);

  const expired = await issue({ names: ['127.0.0.1'], ca, notBefore: new Date(now.getTime() - 90 * DAY), notAfter: new Date(now.getTime() - 2 * DAY) });
  const failed = checkExpiry(served(expired.cert), now);
  t.equal(failed.status, 'fail');
  t.match(failed.detail, /expired on \d{4}-\d{2}-\d{2} \(2 days ago\): the apiserver refuses it; renew it/);
  t.equal(checkCaBundle({ target: urlTarget(b64(good.caCert)), served: served(expired.cert), failurePolicy: 'Ignore', now }).status, 'ok',
    'the caBundle row judges the signature; the expiry is this row\'s business, so the caBundle is not called stale');

  const future = await issue({ names: ['127.0.0.1'], ca, notBefore: new Date(now.getTime() + 2 * DAY), notAfter: new Date(now.getTime() + 90 * DAY) });
  t.match(checkExpiry(served(future.cert), now), { status: 'fail', detail: /not valid before/ });
});
