// The injector's decision as the apiserver can evaluate it before calling the webhook: CEL
// matchConditions (GA in Kubernetes 1.30). Only pods that may be Prometheus pods, or that bring a
// Thanos sidecar of their own, reach the injector; nginx, batch jobs and every other pod of a
// labelled namespace are admitted without a call (and without depending on the injector being up).
// The conditions are a superset of decide(): every pod it would inject, deny or warn about passes
// (a test evaluates both over the golden fixtures and generated pods), and they drop what it always
// skips (mirror pods, pods that already have the sidecar). `object` is the untyped pod, where empty
// fields are absent: every optional field is guarded with has(), since under failurePolicy Ignore
// an evaluation error would silently skip the webhook for that pod. Only standard CEL is used
// (has, in, exists, contains, matches with RE2), so any conforming evaluator agrees with the
// apiserver's.
import { MIRROR_ANNOTATION, PREFIX, SIDECAR_NAME } from './names.ts';

export interface MatchCondition {
  name: string;
  expression: string;
}

/** An image whose last path segment is `name` (any registry, tag or digest): isPrometheusImage / isThanosImage. */
const imageNamed = (name: string) => `'^([^@]*/)?${name}(:[^/@]*)?(@.*)?$'`;

/** `list` (a field of the pod spec that may be absent) has an element `c` for which `predicate` holds. */
const anyContainer = (list: 'containers' | 'initContainers', predicate: string) =>
  `(has(object.spec.${list}) && object.spec.${list}.exists(c, ${predicate}))`;

/** The prometheus-container annotation is the escape hatch: it names Prometheus whatever it runs. */
const annotated = `(has(object.metadata.annotations) && '${PREFIX}prometheus-container' in object.metadata.annotations)`;
/** findPrometheus(): a container named prometheus, or running a Prometheus image. */
const prometheusContainer = `c.name == 'prometheus' || (has(c.image) && c.image.matches(${imageNamed('prometheus')}))`;
/** A superset of runsThanosSidecar(): a Thanos image, or `thanos` anywhere in its command or args. */
const thanosContainer = `(has(c.image) && c.image.matches(${imageNamed('thanos')})) || (has(c.command) && c.command.exists(a, a.contains('thanos'))) || (has(c.args) && c.args.exists(a, a.contains('thanos')))`;
const injected = `c.name == '${SIDECAR_NAME}'`;

/** The matchConditions of both webhooks, in the order the apiserver evaluates them. */
export function matchConditions(): MatchCondition[] {
  return [
    { name: 'not-a-mirror-pod', expression: `!has(object.metadata.annotations) || !('${MIRROR_ANNOTATION}' in object.metadata.annotations)` },
    { name: 'not-injected-yet', expression: `!${anyContainer('containers', injected)} && !${anyContainer('initContainers', injected)}` },
    {
      name: 'prometheus-or-own-thanos-sidecar',
      expression: `${annotated} || ${anyContainer('containers', prometheusContainer)} || ${anyContainer('containers', thanosContainer)} || ${anyContainer('initContainers', thanosContainer)}`,
    },
  ];
}
