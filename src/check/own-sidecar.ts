// A pod that runs a Thanos sidecar of its own (a hand-made `thanos sidecar` container, as in the
// seed's blog post): the injector admits it as written, so what becomes of that sidecar is the
// user's choice. This row names the container and the choices. Pure.
import type { V1Pod } from '@kubernetes/client-node';
import type { Config } from '../config/schema.ts';
import { existingSidecar } from '../inject/decide.ts';
import { PREFIX, SIDECAR_NAME } from '../inject/names.ts';
import { recreateCommand } from './owner.ts';
import { sidecarOf } from './pod.ts';
import { CHECK, ok, warn, type CheckRow } from './rows.ts';

const ANNOTATION = `${PREFIX}existing-sidecar`;

/** Where the share-user choice comes from for this pod, if it was made (annotation first, as the injector reads it). */
function shareUserChoice(pod: V1Pod, config: Config): string | undefined {
  const annotation = pod.metadata?.annotations?.[ANNOTATION];
  if (annotation !== undefined) return annotation === 'share-user' ? `annotated ${ANNOTATION}: share-user` : undefined;
  const namespace = pod.metadata?.namespace ?? '';
  if (config.existingSidecar.shareUser) return 'the injector configuration shares the user (existingSidecar.shareUser)';
  if (config.existingSidecar.namespaces.includes(namespace)) return `the injector configuration shares the user in namespace ${namespace} (existingSidecar.namespaces)`;
  return undefined;
}

/** The row for a pod with its own sidecar; undefined for any other pod. */
export function checkOwnSidecar(pod: V1Pod, config: Config): CheckRow | undefined {
  const own = pod.spec === undefined ? undefined : existingSidecar(pod.spec);
  if (own === undefined) return undefined;
  const name = CHECK.ownSidecar;
  const subject = `pod ${pod.metadata?.name ?? ''}: container ${own.name} runs its own Thanos sidecar`;
  const recreate = recreateCommand(pod);
  const choices = `choose: keep it as it is; annotate the pod template ${ANNOTATION}: share-user so that it can upload (the injector sets one pod-level user for Prometheus and it); ` +
    `or remove container ${own.name} to let the injector add and manage ${SIDECAR_NAME}`;
  if (sidecarOf(pod) !== undefined) {
    return warn(name, `${subject}, and the pod also has the injector's ${SIDECAR_NAME} (added before the injector left such pods alone): two sidecars cannot both listen on the same ports; ` +
      `re-create the pod (${recreate}) to keep only ${own.name}, and ${choices}`);
  }
  if (pod.metadata?.annotations?.[ANNOTATION] === 'leave') return ok(name, `${subject}; annotated ${ANNOTATION}: leave, so the injector leaves the pod as it is`);
  const shared = shareUserChoice(pod, config);
  if (shared === undefined) return warn(name, `${subject}; the injector leaves the pod as it is (no second sidecar); ${choices}`);
  if (pod.spec?.securityContext?.runAsUser === undefined) {
    return warn(name, `${subject}; ${shared}, but the pod has no pod-level runAsUser yet (created before that choice): re-create it (${recreate})`);
  }
  return ok(name, `${subject}; ${shared}: the pod runs as user ${pod.spec.securityContext.runAsUser}, so it can upload`);
}
