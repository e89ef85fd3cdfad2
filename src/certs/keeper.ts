// certs.mode=auto, the actions: keeps the CA and serving certificate in one Secret of the
// injector's namespace (created when missing, rotated when due, optimistic concurrency so that
// replicas converge on one Secret), serves what the Secret holds (another replica may have rotated
// it), and keeps every webhook's caBundle in the MutatingWebhookConfiguration equal to the CA
// (a `helm upgrade` or a GitOps re-apply blanks it). Decisions come from auto.ts.
import {
  DEFAULT_RENEWAL_POLICY,
  bundleFromSecretData,
  caBundlePatch,
  permissionHint,
  planCertificates,
  secretDataOf,
  trustBundle,
  type CertificateBundle,
  type CertificatePlan,
  type RenewalPolicy,
  type WebhookConfigurationLike,
} from './auto.ts';
import { generateCertificates, issueServingCertificate } from './generate.ts';
import type { CertificateApi, SecretObject } from './kube.ts';
import { ServedCertificates } from './served.ts';
import { MANAGED_BY_LABEL, MANAGER } from '../inject/names.ts';
import type { V1OwnerReference } from '@kubernetes/client-node';
import { isOwnedBy, ownerOf, withOwner } from '../kube/owner.ts';
import { messageOf } from '../errors.ts';
import { describeApiError, statusOf } from '../kube/errors.ts';

/** pino's shape (fastify's logger), reduced to what the keeper uses. */
export interface KeeperLog {
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
  debug(details: object, message: string): void;
}

export interface KeeperOptions {
  api: CertificateApi;
  namespace: string;
  secretName: string;
  /** The MutatingWebhookConfiguration whose caBundle is kept; none: caBundle is left alone. */
  webhookConfiguration?: string;
  /** SANs of the serving certificate. */
  names: string[];
  intervalMs: number;
  policy?: RenewalPolicy;
  now?: () => Date;
  /** Parent of the private temporary folder (default: the OS temp folder). */
  tmpDir?: string;
}

export interface KeeperHooks {
  log: KeeperLog;
  onCaBundlePatch?: (result: 'success' | 'failure') => void;
  /** New files were written: the server should serve them now (before caBundle may change). */
  onServedChange?: () => Promise<void>;
}

/** A failed API call: one line naming the operation, the HTTP status and the likely fix. */
export class KubernetesCallError extends Error {
  readonly status: number | undefined;
  constructor(message: string, status: number | undefined) {
    super(message);
    this.status = status;
  }
}

const SECRET_LABELS = { 'app.kubernetes.io/name': 'thanos-sidecar-injector', [MANAGED_BY_LABEL]: MANAGER };
const MAX_WRITE_ATTEMPTS = 3;

export class CertificateKeeper {
  private readonly options: KeeperOptions;
  private readonly policy: RenewalPolicy;
  private readonly now: () => Date;
  private served: ServedCertificates | undefined;
  private current: CertificateBundle | undefined;
  private hooks: KeeperHooks;
  private readonly notes: string[] = [];
  private readonly problems = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> = Promise.resolve();
  private stopped = false;
  /** The webhook configuration was found once: from then on its absence means the install is being removed. */
  private sawConfiguration = false;

  constructor(options: KeeperOptions) {
    this.options = options;
    this.policy = options.policy ?? DEFAULT_RENEWAL_POLICY;
    this.now = options.now ?? (() => new Date());
    // Until start() gets the server's logger, messages are kept and returned by prepare().
    const note = (_details: object, message: string) => void this.notes.push(message);
    this.hooks = { log: { info: note, warn: note, debug: () => undefined } };
  }

  private get secretRef(): string {
    return `${this.options.namespace}/${this.options.secretName}`;
  }

  get certFile(): string {
    return this.files().certFile;
  }

  get keyFile(): string {
    return this.files().keyFile;
  }

  /** The CA the webhook configuration must trust (ca.crt), once prepared. */
  get caCert(): string | undefined {
    return this.current?.caCert;
  }

  private files(): ServedCertificates {
    if (this.served === undefined) throw new Error('the certificate keeper is not prepared');
    return this.served;
  }

  /**
   * Start-up: makes sure the Secret holds usable certificates (creating or rotating them) and
   * writes the pair where the server will read it. Throws a KubernetesCallError when the Secret
   * can be neither read nor written. Returns what it did, as log lines.
   */
  async prepare(): Promise<string[]> {
    const bundle = await this.syncSecret();
    this.served = await ServedCertificates.create(this.options.tmpDir);
    await this.serve(bundle);
    this.notes.push(`certs auto mode: serving the certificate of Secret ${this.secretRef} from ${this.served.dir} (checked every ${this.options.intervalMs / 1000}s)`);
    return this.notes.splice(0);
  }

  /** Starts the periodic check (the first one at once: caBundle is repaired right away). */
  start(hooks: KeeperHooks): void {
    this.hooks = hooks;
    this.checkThenWait();
  }

  private checkThenWait(): void {
    this.checking = this.check().finally(() => {
      if (!this.stopped) this.timer = setTimeout(() => this.checkThenWait(), this.options.intervalMs).unref();
    });
  }

  /** Stops the checks, aborting API calls in progress. The files stay until dispose(). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.options.api.close?.();
    await this.checking;
  }

  /** Stops the checks and removes the private folder (once the server no longer reads it). */
  async dispose(): Promise<void> {
    await this.stop();
    await this.served?.remove();
  }

  /** One round: the Secret (re-read, rotated when due), the served pair, the caBundle. Never throws. */
  async check(): Promise<void> {
    try {
      const bundle = await this.syncSecret();
      await this.serve(bundle);
      this.resolved('secret', `Secret ${this.secretRef} is read and served again`);
    } catch (error) {
      this.problem('secret', error instanceof Error ? error.message : String(error));
    }
    if (this.options.webhookConfiguration !== undefined && this.current !== undefined) {
      await this.ensureCaBundle(this.options.webhookConfiguration, this.current.caCert);
    }
  }

  private async call<T>(operation: string, verb: string, resource: string, namespace: string | undefined, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      const hint = permissionHint(error, verb, resource, namespace);
      throw new KubernetesCallError(`${describeApiError(operation, error)}${hint ? `; ${hint}` : ''}`, statusOf(error));
    }
  }

  /** Reads the Secret and, when a rotation is due, writes a new one; returns what it then holds. */
  private async syncSecret(): Promise<CertificateBundle> {
    const { api, namespace, secretName } = this.options;
    for (let attempt = 1; ; attempt++) {
      const stored = await this.call(`read Secret ${this.secretRef}`, 'get', 'secrets', namespace, () => api.readSecret(namespace, secretName));
      const current = bundleFromSecretData(stored?.data);
      const plan = planCertificates(current, this.options.names, this.now(), this.policy);
      if (plan.action === 'keep') return current as CertificateBundle; // only a complete, valid bundle is kept
      const owner = stored === undefined ? await this.ownerOfNewSecret() : undefined;
      if (owner === 'gone' && this.current !== undefined) {
        // Deleted with the webhook configuration (`helm uninstall`): a Secret written now would be left behind.
        this.problem('removed', `Secret ${this.secretRef} and MutatingWebhookConfiguration ${this.options.webhookConfiguration ?? ''} are gone: the install is being removed, so the Secret is not created again; serving the certificate in memory until this pod stops`);
        return this.current;
      }
      if (attempt > MAX_WRITE_ATTEMPTS) {
        throw new Error(`Secret ${this.secretRef} changed under every one of ${MAX_WRITE_ATTEMPTS} attempts to write it; retrying at the next check`);
      }
      const bundle = await this.renew(plan, current);
      try {
        await this.write(stored, bundle, owner === 'gone' ? undefined : owner);
      } catch (error) {
        // 409: another replica created or updated it first (AlreadyExists, or a stale resourceVersion);
        // 404 on update: it was deleted since we read it. Either way, read it again and use what is
        // there. (A 404 on create means the namespace does not exist: an error like any other.)
        const raced = error instanceof KubernetesCallError && (error.status === 409 || (error.status === 404 && stored !== undefined));
        if (!raced) throw error;
        this.hooks.log.info({ secret: this.secretRef }, `${error.message}; another writer was first, reading the Secret again`);
        continue;
      }
      const what = plan.action === 'renew-all' ? 'a new CA and serving certificate' : 'a new serving certificate (same CA)';
      const reason = stored === undefined ? 'there was no such Secret' : plan.reason;
      this.hooks.log.info(
        { secret: this.secretRef, reason, names: this.options.names },
        `${stored === undefined ? 'created' : 'updated'} Secret ${this.secretRef} with ${what}: ${reason}`,
      );
      return bundle;
    }
  }

  private async renew(plan: Exclude<CertificatePlan, { action: 'keep' }>, current: Partial<CertificateBundle>): Promise<CertificateBundle> {
    const { names } = this.options;
    if (plan.action === 'renew-serving' && current.caCert !== undefined && current.caKey !== undefined) {
      const serving = await issueServingCertificate({ cert: current.caCert, key: current.caKey }, names, this.policy.servingDays);
      return { caCert: current.caCert, caKey: current.caKey, ...serving };
    }
    const fresh = await generateCertificates(names, this.policy.servingDays);
    return { ...fresh, caCert: trustBundle(fresh.caCert, current.caCert, this.now()) };
  }

  /**
   * The owner a new Secret is created with: the webhook configuration when it exists; none when
   * this keeper has not seen it yet (a first install may create it after the injector starts: the
   * owner is added once it exists); 'gone' when it has been seen and is gone now.
   */
  private async ownerOfNewSecret(): Promise<V1OwnerReference | undefined | 'gone'> {
    const name = this.options.webhookConfiguration;
    if (name === undefined) return undefined;
    let configuration;
    try {
      configuration = await this.options.api.readWebhookConfiguration(name);
    } catch {
      return undefined; // not readable now: created unowned, the owner is added at a later check
    }
    if (configuration === undefined) return this.sawConfiguration ? 'gone' : undefined;
    return ownerOf(configuration);
  }

  private async write(stored: SecretObject | undefined, bundle: CertificateBundle, owner: V1OwnerReference | undefined): Promise<void> {
    const { api, namespace, secretName } = this.options;
    if (stored === undefined) {
      const secret: SecretObject = {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: secretName, namespace, labels: SECRET_LABELS, ...(owner === undefined ? {} : { ownerReferences: [owner] }) },
        type: 'kubernetes.io/tls',
        data: secretDataOf(bundle),
      };
      await this.call(`create Secret ${this.secretRef}`, 'create', 'secrets', namespace, () => api.createSecret(namespace, secret));
      return;
    }
    // The object as read, resourceVersion included: the update fails if anyone wrote it since.
    const secret: SecretObject = { ...stored, data: { ...stored.data, ...secretDataOf(bundle) } };
    await this.call(`update Secret ${this.secretRef}`, 'update', 'secrets', namespace, () => api.replaceSecret(namespace, secretName, secret));
  }

  /**
   * Puts the Secret's pair where the server reads it, and has it served before going on: caBundle
   * is only switched to a new CA once this replica serves a certificate of that CA.
   */
  private async serve(bundle: CertificateBundle): Promise<void> {
    this.current = bundle;
    if (this.served === undefined) return;
    if (await this.served.write({ caCert: bundle.caCert, cert: bundle.cert, key: bundle.key })) {
      this.hooks.log.debug({ secret: this.secretRef, dir: this.served.dir }, 'serving certificate files updated from the Secret');
      await this.hooks.onServedChange?.();
    }
  }

  private async ensureCaBundle(name: string, caCert: string): Promise<void> {
    const { api } = this.options;
    const resource = 'mutatingwebhookconfigurations';
    let configuration;
    try {
      configuration = await this.call(`read MutatingWebhookConfiguration ${name}`, 'get', resource, undefined, () => api.readWebhookConfiguration(name));
    } catch (error) {
      this.problem('webhook', messageOf(error));
      return;
    }
    if (configuration === undefined) {
      this.problem('webhook', `MutatingWebhookConfiguration ${name} not found; its caBundle is set as soon as it exists (checked every ${this.options.intervalMs / 1000}s)`);
      return;
    }
    this.resolved('webhook', `MutatingWebhookConfiguration ${name} found`);
    this.sawConfiguration = true;
    await this.ensureOwned(configuration);
    const repair = caBundlePatch(configuration, Buffer.from(caCert, 'utf8').toString('base64'));
    if (repair.operations.length === 0) return;
    try {
      await this.call(`patch caBundle of MutatingWebhookConfiguration ${name}`, 'patch', resource, undefined, () => api.patchWebhookConfiguration(name, repair.operations));
    } catch (error) {
      this.hooks.onCaBundlePatch?.('failure');
      this.problem('patch', messageOf(error));
      return;
    }
    this.hooks.onCaBundlePatch?.('success');
    this.problems.delete('patch');
    const fixed = repair.repaired.map((webhook) => `${webhook.name} (was ${webhook.was === 'empty' ? 'empty' : 'a different CA'})`);
    this.hooks.log.info(
      { webhookConfiguration: name, webhooks: repair.repaired },
      `set caBundle of MutatingWebhookConfiguration ${name} to the CA of Secret ${this.secretRef}: ${fixed.join(', ')}`,
    );
  }

  /** The Secret goes with the install: the webhook configuration is its owner (src/kube/owner.ts), added once. */
  private async ensureOwned(configuration: WebhookConfigurationLike): Promise<void> {
    const owner = ownerOf(configuration);
    if (owner === undefined) return;
    const { api, namespace, secretName } = this.options;
    try {
      const stored = await this.call(`read Secret ${this.secretRef}`, 'get', 'secrets', namespace, () => api.readSecret(namespace, secretName));
      if (stored === undefined || isOwnedBy(stored.metadata, owner)) return;
      const secret: SecretObject = { ...stored, metadata: { ...stored.metadata, ownerReferences: withOwner(stored.metadata, owner) } };
      await this.call(`update Secret ${this.secretRef}`, 'update', 'secrets', namespace, () => api.replaceSecret(namespace, secretName, secret));
      this.problems.delete('owner');
      this.hooks.log.info({ secret: this.secretRef, owner: owner.name }, `Secret ${this.secretRef} is now owned by MutatingWebhookConfiguration ${owner.name}: it is deleted with the install`);
    } catch (error) {
      // A conflict (another replica was first) is settled at the next check.
      this.problem('owner', messageOf(error));
    }
  }

  /** A warning the first time (and whenever it changes); debug while it repeats every check. */
  private problem(topic: string, message: string): void {
    const repeated = this.problems.get(topic) === message;
    this.problems.set(topic, message);
    if (repeated) this.hooks.log.debug({ topic }, message);
    else this.hooks.log.warn({ topic }, message);
  }

  private resolved(topic: string, message: string): void {
    if (this.problems.delete(topic)) this.hooks.log.info({ topic }, message);
  }
}
