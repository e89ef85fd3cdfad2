// Which back end injects a pod: the policy (src/policy/generate.ts) or the webhook, and why. The
// policy claims a pod the engine injects with no warning (the apiserver cannot give one) whose
// shape its CEL reads exactly; each line below names a shape it leaves to the webhook. What this
// says is held to what the apiserver does with the generated policy, pod by pod, in the
// differential test (test/e2e/policy.test.ts). Pure.
import type { Config } from '../config/schema.ts';
import { isThanosImage } from '../inject/decide.ts';
import { injectPod } from '../inject/inject.ts';
import { PREFIX } from '../inject/names.ts';
import { allContainers, mountHolding, type PodLike } from '../inject/pod.ts';
import { prometheusIndex } from '../inject/prometheus.ts';
import { DURATION_PATTERN } from '../units.ts';
import { EPHEMERAL_WARNING_START } from '../inject/tsdb-volume.ts';
import { resolveSettings } from '../inject/overrides.ts';
import { LEFT_TO_WEBHOOK_FLAGS, policyVolumeNames, RELATIVE_PATH, SAFE_PATH, SHELLS, VERSION_TAG } from './generate.ts';

export type Claim = { backEnd: 'policy' } | { backEnd: 'webhook'; why: string };

const SAFE = new RegExp(SAFE_PATH);
const RELATIVE = new RegExp(RELATIVE_PATH);
const TAG = new RegExp(VERSION_TAG);

const flagValue = (args: readonly string[], name: string) => args.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3);

/** Where a pod created in `namespace` is injected once the policy generated from `config` is bound. */
export function policyClaim(pod: PodLike, namespace: string, config: Config, kubernetesVersion: string): Claim {
  const webhook = (why: string): Claim => ({ backEnd: 'webhook', why });
  const result = injectPod(pod, { config, namespace, kubernetesVersion });
  if (result.outcome === 'denied') return webhook(`the webhook refuses it, saying why: ${result.message}`);
  if (result.outcome === 'skipped') return webhook(`neither injects it (${result.reason}): ${result.message}`);
  // The warning on a TSDB deleted with the pod is the policy's too (its ValidatingAdmissionPolicy gives it); any other only the webhook's.
  const others = result.warnings.filter((warning) => !warning.startsWith(EPHEMERAL_WARNING_START));
  if (others.length > 0) return webhook(`its injection comes with a warning, which only the webhook can give: ${others[0] ?? ''}`);
  if (Object.keys(pod.metadata?.annotations ?? {}).some((key) => key.startsWith(PREFIX))) return webhook(`it has a ${PREFIX} annotation (per-pod settings)`);
  const spec = pod.spec!;
  const mentions = allContainers(spec).find((c) => isThanosImage(c.image) || [...(c.command ?? []), ...(c.args ?? [])].some((arg) => arg.includes('thanos')));
  if (mentions !== undefined) return webhook(`container ${mentions.name} mentions thanos (only the webhook tells a sidecar of the pod's own from a mention)`);
  const prometheus = spec.containers[prometheusIndex(pod) ?? 0]!;
  const command = prometheus.command ?? [];
  const program = command[0] ?? '';
  if (command.length > 1 || program.startsWith('-') || SHELLS.includes(program.slice(program.lastIndexOf('/') + 1))) {
    return webhook(`container ${prometheus.name} runs ${command.join(' ')} (the policy reads Prometheus' flags in args only)`);
  }
  const args = prometheus.args ?? [];
  const unusual = args.find((arg) => !arg.startsWith('--') || arg === '--');
  if (unusual !== undefined) return webhook(`Prometheus' argument ${JSON.stringify(unusual)} is not --flag or --flag=value`);
  const edited = LEFT_TO_WEBHOOK_FLAGS.find((flag) => args.some((arg) => arg === `--${flag}` || arg.startsWith(`--${flag}=`)));
  if (edited !== undefined) return webhook(`Prometheus sets --${edited}, which the webhook reads or edits in place`);
  const tsdb = flagValue(args, 'storage.tsdb.path') ?? 'data';
  if (!SAFE.test(tsdb) && !(prometheus.workingDir === undefined && RELATIVE.test(tsdb))) return webhook(`the TSDB path ${tsdb} is not a plain path`);
  const mount = (prometheus.volumeMounts ?? []).find((m) => !SAFE.test(m.mountPath));
  if (mount !== undefined) return webhook(`Prometheus mounts ${mount.name} at ${mount.mountPath}, not a plain path`);
  const holder = mountHolding(prometheus.volumeMounts, tsdb.startsWith('/') ? tsdb : `/prometheus/${tsdb}`)?.mount;
  const volumes = (spec.volumes ?? []).filter((v) => v.name === holder?.name);
  if (volumes.length !== 1) return webhook(`the TSDB volume ${holder?.name ?? ''} is not one of the pod's volumes (a StatefulSet's claim is, in its pods)`);
  const listen = flagValue(args, 'web.listen-address');
  if (listen !== undefined && !(/:[1-9][0-9]{0,4}$/.test(listen) && Number(listen.slice(listen.lastIndexOf(':') + 1)) <= 65535)) return webhook(`--web.listen-address=${listen} has no port the policy reads`);
  const route = flagValue(args, 'web.route-prefix');
  if (route !== undefined && !/^\/?([A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*\/?)?$/.test(route)) return webhook(`--web.route-prefix=${route} is not a plain path`);
  const retention = flagValue(args, 'storage.tsdb.retention.time') ?? flagValue(args, 'storage.tsdb.retention') ?? '15d';
  if (retention === '' || !DURATION_PATTERN.test(retention) || /[0-9]{7,}/.test(retention)) return webhook(`the retention ${JSON.stringify(retention)} is not a duration the policy reads`);
  const image = (prometheus.image ?? '').split('@')[0] ?? '';
  const tag = image.lastIndexOf(':') > image.lastIndexOf('/') ? image.slice(image.lastIndexOf(':') + 1) : '';
  if (!TAG.test(tag)) return webhook(`the Prometheus image's tag ${JSON.stringify(tag)} is not a version the policy reads`);
  const injectorVolumes = policyVolumeNames(resolveSettings(config, {}, kubernetesVersion).settings);
  const taken = [...(spec.volumes ?? []).map((v) => v.name), ...allContainers(spec).flatMap((c) => (c.volumeMounts ?? []).map((m) => m.name))]
    .find((name) => injectorVolumes.includes(name));
  if (taken !== undefined) return webhook(`the pod already uses the name ${taken}, which the injector's volume takes (the webhook renames it)`);
  return { backEnd: 'policy' };
}
