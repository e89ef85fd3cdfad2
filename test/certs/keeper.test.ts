// The certs.mode=auto keeper against an in-memory API that behaves like the apiserver where it
// matters (404, 409 AlreadyExists, 409 on a stale resourceVersion, 403, JSON patch with `test`):
// the Secret is created once, reused, rotated with optimistic concurrency, and replicas converge;
// the served files follow the Secret; caBundle is repaired and a missing configuration is not fatal.
import t, { type Test } from 'tap';
import { X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { ApiException } from '@kubernetes/client-node';
import { applyPatchStrict } from '../harness/jsonpatch.ts';
import {
  bundleFromSecretData,
  secretDataOf,
  servingNames,
  type JsonPatchOperation,
  type WebhookConfigurationLike,
} from '../../src/certs/auto.ts';
import { generateCertificates } from '../../src/certs/generate.ts';
import { issueServingCertificate } from '../../src/certs/generate.ts';
import { CertificateKeeper, type KeeperHooks, type KeeperLog } from '../../src/certs/keeper.ts';
import type { CertificateApi, SecretObject } from '../../src/certs/kube.ts';

const NAMESPACE = 'thanos-injector';
const SECRET = 'thanos-injector-tls';
const WEBHOOKS = 'thanos-sidecar-injector';
const NAMES = servingNames('thanos-injector', NAMESPACE, ['127.0.0.1']);

const status = (code: number, reason: string, message: string) =>
  new ApiException(code, 'Unknown API Status Code!', JSON.stringify({ kind: 'Status', code, reason, message }), {});

/** One Secret and one MutatingWebhookConfiguration, with the apiserver's concurrency rules. */
class FakeApi implements CertificateApi {
  secret: SecretObject | undefined;
  webhooks: WebhookConfigurationLike | undefined;
  version = 0;
  writes: string[] = [];
  patches: JsonPatchOperation[][] = [];
  forbidden = new Set<string>();
  namespaceExists = true;
  /** Runs once just before the next write lands (another replica winning the race). */
  beforeWrite: (() => void) | undefined;

  private guard(verb: string): void {
    if (this.forbidden.has(verb)) throw status(403, 'Forbidden', `cannot ${verb}`);
  }

  private race(): void {
    const other = this.beforeWrite;
    this.beforeWrite = undefined;
    other?.();
  }

  store(secret: SecretObject): SecretObject {
    this.version += 1;
    this.secret = structuredClone({ ...secret, metadata: { ...secret.metadata, resourceVersion: String(this.version) } });
    return structuredClone(this.secret);
  }

  readSecret(): Promise<SecretObject | undefined> {
    this.guard('get');
    return Promise.resolve(structuredClone(this.secret));
  }

  createSecret(_namespace: string, secret: SecretObject): Promise<SecretObject> {
    this.guard('create');
    if (!this.namespaceExists) return Promise.reject(status(404, 'NotFound', `namespaces "${NAMESPACE}" not found`));
    this.race();
    if (this.secret) return Promise.reject(status(409, 'AlreadyExists', `secrets "${SECRET}" already exists`));
    this.writes.push('create');
    return Promise.resolve(this.store(secret));
  }

  replaceSecret(_namespace: string, _name: string, secret: SecretObject): Promise<SecretObject> {
    this.guard('update');
    this.race();
    if (!this.secret) return Promise.reject(status(404, 'NotFound', `secrets "${SECRET}" not found`));
    if (secret.metadata?.resourceVersion !== this.secret.metadata?.resourceVersion) {
      return Promise.reject(status(409, 'Conflict', 'the object has been modified; please apply your changes to the latest version and try again'));
    }
    this.writes.push('update');
    return Promise.resolve(this.store(secret));
  }

  readWebhookConfiguration(): Promise<WebhookConfigurationLike | undefined> {
    return Promise.resolve(structuredClone(this.webhooks));
  }

  patchWebhookConfiguration(_name: string, operations: JsonPatchOperation[]): Promise<void> {
    this.guard('patch');
    if (!this.webhooks) return Promise.reject(status(404, 'NotFound', 'not found'));
    this.patches.push(operations);
    this.webhooks = applyPatchStrict(this.webhooks, operations) as typeof this.webhooks;
    return Promise.resolve();
  }
}

class MemoryLog implements KeeperLog {
  lines: { level: string; message: string }[] = [];
  info(_details: object, message: string): void {
    this.lines.push({ level: 'info', message });
  }
  warn(_details: object, message: string): void {
    this.lines.push({ level: 'warn', message });
  }
  debug(_details: object, message: string): void {
    this.lines.push({ level: 'debug', message });
  }
  at(level: string): string[] {
    return this.lines.filter((line) => line.level === level).map((line) => line.message);
  }
}

function keeperFor(api: FakeApi, t: Test, names = NAMES): CertificateKeeper {
  const keeper = new CertificateKeeper({ api, namespace: NAMESPACE, secretName: SECRET, webhookConfiguration: WEBHOOKS, names, intervalMs: 60_000 });
  t.teardown(() => keeper.dispose());
  return keeper;
}

/** Starts a prepared keeper with a MemoryLog (and `hooks`), lets its first check run and stops it; the log. */
async function firstCheck(keeper: CertificateKeeper, hooks: Omit<KeeperHooks, 'log'> = {}): Promise<MemoryLog> {
  const log = new MemoryLog();
  keeper.start({ log, ...hooks });
  await keeper.stop();
  return log;
}

function stored(api: FakeApi) {
  return bundleFromSecretData(api.secret?.data);
}

const emptyWebhooks = (): WebhookConfigurationLike => ({
  webhooks: [{ name: 'namespace.x.io', clientConfig: {} }, { name: 'pod.x.io', clientConfig: { caBundle: 'b2xk' } }],
});

void t.test('no Secret: it is created with the four keys, and its pair is served from a private folder', async (t) => {
  const api = new FakeApi();
  const keeper = keeperFor(api, t);
  const notes = await keeper.prepare();
  t.same(api.writes, ['create']);
  t.same(Object.keys(api.secret?.data ?? {}).sort(), ['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
  t.equal(api.secret?.type, 'kubernetes.io/tls');
  t.match(notes.join('\n'), `created Secret ${NAMESPACE}/${SECRET} with a new CA and serving certificate: there was no such Secret`);
  t.equal(await readFile(keeper.certFile, 'utf8'), stored(api).cert, 'tls.crt served');
  t.equal(await readFile(keeper.keyFile, 'utf8'), stored(api).key, 'tls.key served');
  t.equal(keeper.caCert, stored(api).caCert);
  t.equal((await stat(keeper.certFile.replace(/\/tls\.crt$/, ''))).mode & 0o777, 0o700, 'folder 0700');
  t.equal((await stat(keeper.keyFile)).mode & 0o777, 0o600, 'key 0600');
  const cert = new X509Certificate(stored(api).cert ?? '');
  t.ok(NAMES.every((name) => (name === '127.0.0.1' ? cert.checkIP(name) : cert.checkHost(name))), 'covers the Service names and the IP');
});

void t.test('a valid Secret is used as it is: no write, the CA untouched', async (t) => {
  const api = new FakeApi();
  api.store({ metadata: { name: SECRET }, data: secretDataOf(await generateCertificates(NAMES)) });
  const before = structuredClone(api.secret);
  await keeperFor(api, t).prepare();
  t.same(api.writes, []);
  t.same(api.secret, before);
});

void t.test('a Secret that does not cover the names: new serving certificate, same CA, updated with the resourceVersion read', async (t) => {
  const api = new FakeApi();
  const old = await generateCertificates(['somewhere-else']);
  api.store({ metadata: { name: SECRET, labels: { team: 'a' } }, type: 'kubernetes.io/tls', data: { ...secretDataOf(old), extra: 'a2VlcA==' } });
  const notes = await keeperFor(api, t).prepare();
  t.same(api.writes, ['update']);
  t.equal(stored(api).caCert, old.caCert, 'CA kept (caBundle stays stable)');
  t.equal(stored(api).caKey, old.caKey);
  t.not(stored(api).cert, old.cert, 'new serving certificate');
  t.ok(new X509Certificate(stored(api).cert ?? '').checkIssued(new X509Certificate(old.caCert)), 'signed by the same CA');
  t.equal(api.secret?.data?.extra, 'a2VlcA==', 'other keys kept');
  t.same(api.secret?.metadata?.labels, { team: 'a' }, 'metadata kept');
  t.match(notes.join('\n'), /updated Secret .* with a new serving certificate \(same CA\): tls\.crt does not cover thanos-injector,/);
});

void t.test('a CA near its end is replaced, and ca.crt keeps the old CA after the new one while it is valid', async (t) => {
  const api = new FakeApi();
  const old = await generateCertificates(NAMES);
  api.store({ metadata: { name: SECRET }, data: secretDataOf(old) });
  const sevenYearsOn = new Date(Date.now() + 7 * 365 * 24 * 3600 * 1000);
  const keeper = new CertificateKeeper({ api, namespace: NAMESPACE, secretName: SECRET, names: NAMES, intervalMs: 60_000, now: () => sevenYearsOn });
  t.teardown(() => keeper.dispose());
  const notes = await keeper.prepare();
  t.match(notes.join('\n'), /updated Secret .* with a new CA and serving certificate: the CA expires/);
  const caCerts = (stored(api).caCert ?? '').match(/-----BEGIN CERTIFICATE-----/g) ?? [];
  t.equal(caCerts.length, 2, 'ca.crt: the new CA, then the old one');
  t.not(new X509Certificate(stored(api).caCert ?? '').fingerprint256, new X509Certificate(old.caCert).fingerprint256, 'the new CA first (it signs)');
  t.ok((stored(api).caCert ?? '').includes(old.caCert), 'the old CA still trusted');
  t.ok(new X509Certificate(stored(api).cert ?? '').checkIssued(new X509Certificate(stored(api).caCert ?? '')), 'the serving certificate is signed by the new CA');
});

void t.test('AlreadyExists: another replica created the Secret first; its certificates are used', async (t) => {
  const api = new FakeApi();
  const winner = await generateCertificates(NAMES);
  api.beforeWrite = () => api.store({ metadata: { name: SECRET }, data: secretDataOf(winner) });
  const keeper = keeperFor(api, t);
  const notes = await keeper.prepare();
  t.same(api.writes, [], 'our create lost; nothing else written');
  t.equal(stored(api).caCert, winner.caCert);
  t.equal(await readFile(keeper.certFile, 'utf8'), winner.cert, 'the winner\'s certificate is served');
  t.match(notes.join('\n'), /HTTP 409 Conflict: secrets ".*" already exists; another writer was first/);
});

void t.test('a stale resourceVersion (409 Conflict) on rotation: re-read and converge on what the other replica wrote', async (t) => {
  const api = new FakeApi();
  const old = await generateCertificates(['somewhere-else']);
  api.store({ metadata: { name: SECRET }, data: secretDataOf(old) });
  const rotated = { ...old, ...(await issueServingCertificate({ cert: old.caCert, key: old.caKey }, NAMES)) };
  api.beforeWrite = () => api.store({ metadata: { name: SECRET }, data: secretDataOf(rotated) });
  const keeper = keeperFor(api, t);
  await keeper.prepare();
  t.same(api.writes, [], 'our update was refused');
  t.equal(stored(api).cert, rotated.cert);
  t.equal(await readFile(keeper.certFile, 'utf8'), rotated.cert, 'the other replica\'s certificate is served');
});

void t.test('the Secret deleted between our read and our update (404): re-read, then created', async (t) => {
  const api = new FakeApi();
  api.store({ metadata: { name: SECRET }, data: secretDataOf(await generateCertificates(['somewhere-else'])) });
  api.beforeWrite = () => (api.secret = undefined);
  const keeper = keeperFor(api, t);
  await keeper.prepare();
  t.same(api.writes, ['create']);
  t.equal(await readFile(keeper.certFile, 'utf8'), stored(api).cert);
});

void t.test('two replicas starting together end with one Secret and one CA', async (t) => {
  const api = new FakeApi();
  const [a, b] = [keeperFor(api, t), keeperFor(api, t)];
  await Promise.all([a.prepare(), b.prepare()]);
  t.same(api.writes, ['create']);
  t.equal(a.caCert, b.caCert);
  t.equal(await readFile(a.certFile, 'utf8'), await readFile(b.certFile, 'utf8'));
});

void t.test('startup without RBAC: the error names the call, the status and the missing permission', async (t) => {
  const api = new FakeApi();
  api.forbidden.add('get');
  await t.rejects(keeperFor(api, t).prepare(), {
    message: `read Secret ${NAMESPACE}/${SECRET}: HTTP 403 Forbidden: cannot get; the injector's ServiceAccount likely lacks the RBAC permission "get" on secrets in namespace ${NAMESPACE}`,
  });
  const cannotCreate = new FakeApi();
  cannotCreate.forbidden.add('create');
  await t.rejects(keeperFor(cannotCreate, t).prepare(), { message: /^create Secret .*: HTTP 403 .*"create" on secrets/ });
  const noNamespace = new FakeApi();
  noNamespace.namespaceExists = false;
  await t.rejects(keeperFor(noNamespace, t).prepare(), {
    message: `create Secret ${NAMESPACE}/${SECRET}: HTTP 404 Not Found: namespaces "${NAMESPACE}" not found; does namespace ${NAMESPACE} exist?`,
  }, 'a 404 on create is no race');
});

void t.test('a check repairs every webhook\'s caBundle with one JSON patch and counts it', async (t) => {
  const api = new FakeApi();
  api.webhooks = emptyWebhooks();
  const keeper = keeperFor(api, t);
  await keeper.prepare();
  const results: string[] = [];
  const log = await firstCheck(keeper, { onCaBundlePatch: (result) => results.push(result) });
  const caBundle = Buffer.from(keeper.caCert ?? '').toString('base64');
  t.same(api.webhooks?.webhooks?.map((w) => w.clientConfig?.caBundle), [caBundle, caBundle]);
  t.same(results, ['success']);
  t.same(log.at('info'), [`set caBundle of MutatingWebhookConfiguration ${WEBHOOKS} to the CA of Secret ${NAMESPACE}/${SECRET}: namespace.x.io (was empty), pod.x.io (was a different CA)`]);
  await keeper.check();
  t.equal(api.patches.length, 1, 'nothing to patch the second time');
});

const OWNER = [{ apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', name: WEBHOOKS, uid: 'webhook-uid' }];

void t.test('the Secret is created owned by the webhook configuration (deleted with the install), in one write', async (t) => {
  const api = new FakeApi();
  api.webhooks = { ...emptyWebhooks(), metadata: { name: WEBHOOKS, uid: 'webhook-uid' } };
  const keeper = keeperFor(api, t);
  await keeper.prepare();
  await firstCheck(keeper);
  t.same(api.secret?.metadata?.ownerReferences, OWNER);
  t.same(api.writes, ['create'], 'owned from its creation');
  t.ok(api.secret?.data?.['tls.crt'], 'the certificates kept');
  await keeper.check();
  t.same(api.writes, ['create'], 'nothing to write the second time');
});

void t.test('a Secret created before the webhook configuration exists (a first install) gets its owner once it does', async (t) => {
  const api = new FakeApi();
  const keeper = keeperFor(api, t);
  await keeper.prepare();
  t.same(api.secret?.metadata?.ownerReferences, undefined, 'nothing to own it yet');
  api.webhooks = { ...emptyWebhooks(), metadata: { name: WEBHOOKS, uid: 'webhook-uid' } };
  const log = await firstCheck(keeper);
  t.same(api.secret?.metadata?.ownerReferences, OWNER);
  t.same(api.writes, ['create', 'update'], 'created, then the owner added');
  t.match(log.at('info'), [`Secret ${NAMESPACE}/${SECRET} is now owned by MutatingWebhookConfiguration ${WEBHOOKS}: it is deleted with the install`, /caBundle/]);
});

void t.test('helm uninstall: once the webhook configuration and its Secret are gone, the Secret is not created again (it would be left behind); a Secret deleted alone is', async (t) => {
  const api = new FakeApi();
  api.webhooks = { ...emptyWebhooks(), metadata: { name: WEBHOOKS, uid: 'webhook-uid' } };
  const keeper = keeperFor(api, t);
  await keeper.prepare();
  const log = await firstCheck(keeper);

  api.secret = undefined;
  await keeper.check();
  t.same((api.secret as SecretObject | undefined)?.metadata?.ownerReferences, OWNER, 'deleted alone: created again, owned');
  t.same(api.writes, ['create', 'create']);
  const served = await readFile(keeper.certFile, 'utf8');

  api.secret = undefined;
  api.webhooks = undefined;
  await keeper.check();
  await keeper.check();
  t.equal(api.secret, undefined, 'not created again');
  t.same(api.writes, ['create', 'create']);
  t.same(log.at('warn').filter((line) => line.includes('being removed')), [
    `Secret ${NAMESPACE}/${SECRET} and MutatingWebhookConfiguration ${WEBHOOKS} are gone: the install is being removed, so the Secret is not created again; serving the certificate in memory until this pod stops`,
  ], 'said once');
  t.equal(await readFile(keeper.certFile, 'utf8'), served, 'the same certificate is still served');
});

void t.test('a missing webhook configuration is a warning (once), then repaired when it appears', async (t) => {
  const api = new FakeApi();
  const keeper = keeperFor(api, t);
  await keeper.prepare();
  const log = await firstCheck(keeper);
  await keeper.check();
  t.same(log.at('warn'), [`MutatingWebhookConfiguration ${WEBHOOKS} not found; its caBundle is set as soon as it exists (checked every 60s)`]);
  t.equal(log.at('debug').filter((line) => line.includes('not found')).length, 1, 'repeated at debug level');
  api.webhooks = emptyWebhooks();
  await keeper.check();
  t.match(log.at('info'), [`MutatingWebhookConfiguration ${WEBHOOKS} found`, /^set caBundle/]);
});

void t.test('a forbidden patch is a warning with the RBAC hint and a failure count, not a crash', async (t) => {
  const api = new FakeApi();
  api.webhooks = emptyWebhooks();
  api.forbidden.add('patch');
  const keeper = keeperFor(api, t);
  await keeper.prepare();
  const results: string[] = [];
  const log = await firstCheck(keeper, { onCaBundlePatch: (result) => results.push(result) });
  t.same(results, ['failure']);
  t.match(log.at('warn'), [/^patch caBundle of MutatingWebhookConfiguration .*: HTTP 403 .*"patch" on mutatingwebhookconfigurations$/]);
});

void t.test('the served pair follows the Secret: replaced by hand, then deleted (a new CA follows into caBundle)', async (t) => {
  const api = new FakeApi();
  api.webhooks = emptyWebhooks();
  const keeper = keeperFor(api, t);
  await keeper.prepare();
  const servedWithPatches: number[] = []; // how many caBundle patches had happened when the server was told to reload
  await firstCheck(keeper, { onServedChange: () => Promise.resolve(void servedWithPatches.push(api.patches.length)) });
  const first = stored(api);

  const replaced = await issueServingCertificate({ cert: first.caCert ?? '', key: first.caKey ?? '' }, NAMES);
  api.store({ ...api.secret, data: { ...api.secret?.data, 'tls.crt': Buffer.from(replaced.cert).toString('base64'), 'tls.key': Buffer.from(replaced.key).toString('base64') } });
  await keeper.check();
  t.equal(await readFile(keeper.certFile, 'utf8'), replaced.cert, 'the new pair is served');
  t.equal(await readFile(keeper.keyFile, 'utf8'), replaced.key);
  t.equal(api.patches.length, 1, 'same CA: caBundle untouched');
  t.same(servedWithPatches, [1], 'the server was told to reload the new pair');

  api.secret = undefined;
  await keeper.check();
  const second = stored(api);
  t.not(second.caCert, first.caCert, 'a new CA');
  t.equal(await readFile(keeper.certFile, 'utf8'), second.cert);
  t.equal(api.webhooks.webhooks?.[0]?.clientConfig?.caBundle, Buffer.from(second.caCert ?? '').toString('base64'), 'caBundle follows');
  t.equal(api.patches.length, 2);
  t.same(servedWithPatches, [1, 1], 'the new CA\'s certificate was served before caBundle moved to the new CA');
});

void t.test('an unreadable Secret during checks keeps serving the last pair and keeps caBundle right', async (t) => {
  const api = new FakeApi();
  const keeper = keeperFor(api, t);
  await keeper.prepare();
  const served = await readFile(keeper.certFile, 'utf8');
  api.forbidden.add('get');
  api.webhooks = emptyWebhooks();
  const log = await firstCheck(keeper);
  t.match(log.at('warn'), [/^read Secret .*HTTP 403/]);
  t.equal(await readFile(keeper.certFile, 'utf8'), served);
  t.equal(api.patches.length, 1, 'caBundle still repaired with the CA in use');
  api.forbidden.delete('get');
  await keeper.check();
  t.match(log.at('info'), [/^set caBundle/, `Secret ${NAMESPACE}/${SECRET} is read and served again`]);
});

void t.test('dispose removes the private folder', async (t) => {
  const api = new FakeApi();
  const keeper = keeperFor(api, t);
  await keeper.prepare();
  const certFile = keeper.certFile;
  await keeper.dispose();
  await t.rejects(stat(certFile), { code: 'ENOENT' });
});
