// `thanos-injector uninstall`: the first step of an uninstall (the chart's pre-delete hook runs it):
// the MutatingWebhookConfiguration goes before the injector's pods and Service, so that pod creation
// is never sent to an injector that is gone (with failurePolicy Fail it would be refused). What the
// injector created at run time (register's Services and endpoints ConfigMap, the certificate Secret)
// is owned by that configuration, and the garbage collector deletes it with it.
import { DEFAULT_WEBHOOK_CONFIGURATION } from '../check/webhook.ts';
import { ApiError, call, connect } from '../kube/client.ts';
import { deadline } from '../kube/deadline.ts';
import { describeApiError, statusOf } from '../kube/errors.ts';
import { parseDuration } from '../units.ts';
import { CommandError, UsageError } from '../errors.ts';
import { DNS_SUBDOMAIN, checkName, parseFlags } from './args.ts';

export const help = `Usage: thanos-injector uninstall [flags]

Deletes the injector's MutatingWebhookConfiguration and waits until it is gone: from then on pods
are created without the webhook (and never refused for want of an injector). The Services and the
endpoints ConfigMap that thanos-injector register wrote, and the certificate Secret of certs.mode
auto, are owned by that configuration: the garbage collector deletes them with it. Running pods keep
their sidecar; thanos-injector rollout re-creates them without it. The chart runs this command as a
pre-delete hook, so helm uninstall removes the webhook configuration first.

Exit codes: 0 gone (or already gone), 1 an API call failed or it was still there at the timeout.

Flags:
      --webhook-config NAME   the MutatingWebhookConfiguration (default: ${DEFAULT_WEBHOOK_CONFIGURATION})
      --policy NAME           also the MutatingAdmissionPolicy of that name (thanos-injector policy),
                              first: from then on the apiserver injects no pod itself either
      --timeout DURATION      how long to wait for it to be gone (default: 60s)
      --kubeconfig FILE       kubeconfig to use (default: KUBECONFIG, ~/.kube/config, else in-cluster)
  -h, --help                  show this help
`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, { 'webhook-config': { type: 'string' }, policy: { type: 'string' }, timeout: { type: 'string' }, kubeconfig: { type: 'string' } }, 'uninstall');
  if (values.help) {
    process.stdout.write(help);
    return 0;
  }
  const name = checkName('webhook-config', values['webhook-config'] ?? DEFAULT_WEBHOOK_CONFIGURATION, DNS_SUBDOMAIN, 'a MutatingWebhookConfiguration name');
  const timeoutMs = values.timeout === undefined ? 60_000 : parseDuration(values.timeout);
  if (timeoutMs === undefined || timeoutMs <= 0) throw new UsageError(`--timeout: "${values.timeout ?? ''}" is not valid; expected a duration such as 60s`);
  const kube = connect(values.kubeconfig);
  if (values.policy !== undefined) await deletePolicy(kube, checkName('policy', values.policy, DNS_SUBDOMAIN, 'a MutatingAdmissionPolicy name'));
  const exists = async () => {
    try {
      await kube.admission.readMutatingWebhookConfiguration({ name }, deadline(10_000));
      return true;
    } catch (error) {
      if (statusOf(error) === 404) return false;
      throw new ApiError(describeApiError(`cannot read MutatingWebhookConfiguration ${name}`, error, kube.server));
    }
  };
  if (!(await exists())) {
    process.stdout.write(`MutatingWebhookConfiguration ${name}: already gone\n`);
    return 0;
  }
  await call(kube, `cannot delete MutatingWebhookConfiguration ${name}`, async () => {
    try {
      await kube.admission.deleteMutatingWebhookConfiguration({ name }, deadline(10_000));
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
    }
  });
  const deadlineAt = Date.now() + timeoutMs;
  while (await exists()) {
    if (Date.now() >= deadlineAt) throw new CommandError(`MutatingWebhookConfiguration ${name} is still there after ${timeoutMs / 1000} s (a finalizer?)`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  process.stdout.write(`MutatingWebhookConfiguration ${name}: deleted; pods are created without the webhook from now on, and what it owns (register's Services and ConfigMap, the certificate Secret) goes with it\n`);
  return 0;
}

/** Deletes the policy (its bindings, owned by it or by the chart, go with it or with the release). */
async function deletePolicy(kube: ReturnType<typeof connect>, name: string): Promise<void> {
  const gone = await call(kube, `cannot delete MutatingAdmissionPolicy ${name}`, async () => {
    try {
      await kube.admission.deleteMutatingAdmissionPolicy({ name }, deadline(10_000));
      return false;
    } catch (error) {
      if (statusOf(error) === 404) return true;
      throw error;
    }
  });
  process.stdout.write(`MutatingAdmissionPolicy ${name}: ${gone ? 'already gone' : "deleted; the apiserver injects no pod itself from now on, and what it owns (in mode policy, register's Services and ConfigMap) goes with it"}\n`);
}
