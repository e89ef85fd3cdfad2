// The policy generated from a configuration: its objects (the policy and the two bindings that
// select as the chart's two webhooks do), a generation that follows what it does to a pod and
// nothing else, and the configurations it cannot express, refused with the reason. That the CEL
// injects exactly as the webhook is proven on the real apiserver (test/e2e/policy.test.ts).
import t from 'tap';
import { buildConfig } from '../../src/config/load.ts';
import { generatePolicy, PolicyScopeError } from '../../src/policy/generate.ts';

interface Binding { metadata: { name: string }; spec: { policyName: string; matchResources: { namespaceSelector: unknown; objectSelector: unknown } } }
interface Policy { kind: string; metadata: { name: string }; spec: { failurePolicy: string; reinvocationPolicy: string; variables: { name: string; expression: string }[]; mutations: { patchType: string }[] } }

void t.test('a policy and two bindings, selecting as the webhooks do', (t) => {
  const { objects } = generatePolicy(buildConfig({ excludedNamespaces: ['kube-system'], injectorNamespace: 'thanos-injector' }), 'tsi');
  const [policy, ...bindings] = objects as [Policy, ...Binding[]];
  t.equal(policy.kind, 'MutatingAdmissionPolicy');
  t.equal(policy.metadata.name, 'tsi');
  t.same([policy.spec.failurePolicy, policy.spec.reinvocationPolicy], ['Ignore', 'IfNeeded'], 'an error leaves the pod to the webhook; a later change gets a second look');
  t.same(policy.spec.mutations.map((m) => m.patchType), ['JSONPatch'], 'JSONPatch: ApplyConfiguration refuses args');
  t.ok(policy.spec.variables.some((v) => v.name === 'claimed'), 'the shapes it claims, in one variable');
  t.same(bindings.map((b) => [b.metadata.name, b.spec.policyName]), [['tsi-namespace', 'tsi'], ['tsi-pod', 'tsi']]);
  const excluded = { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'thanos-injector'] };
  const podCreation = [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }];
  t.same(bindings[0]?.spec.matchResources, {
    resourceRules: podCreation,
    namespaceSelector: { matchExpressions: [{ key: 'thanos-injection', operator: 'In', values: ['enabled'] }, excluded] },
    objectSelector: { matchExpressions: [{ key: 'thanos-injection', operator: 'NotIn', values: ['disabled'] }] },
  }, 'namespace opt-in: the namespace labelled enabled, the pod not labelled disabled');
  t.same(bindings[1]?.spec.matchResources, {
    resourceRules: podCreation,
    namespaceSelector: { matchExpressions: [{ key: 'thanos-injection', operator: 'DoesNotExist' }, excluded] },
    objectSelector: { matchLabels: { 'thanos-injection': 'enabled' } },
  }, 'pod opt-in: the pod labelled enabled in a namespace without the label (pod creation only, whatever the policy says)');
  t.end();
});

void t.test('the generation follows what the policy does to a pod, not its name or where it applies', (t) => {
  const generation = (config: Record<string, unknown>, name = 'tsi') => generatePolicy(buildConfig(config), name).generation;
  t.match(generation({}), /^[0-9a-f]{12}$/);
  t.equal(generation({}), generation({}), 'the same configuration, the same generation');
  t.equal(generation({}, 'other'), generation({}), 'the name does not count');
  t.not(generation({ logLevel: 'debug' }), generation({}), 'a sidecar flag counts');
  t.not(generation({ image: 'quay.io/thanos/thanos:v0.43.0' }), generation({}), 'the image counts');
  t.end();
});

void t.test('what the policy cannot express is refused with the reason (the webhook injects those)', (t) => {
  const refused = (config: Record<string, unknown>) => {
    try {
      generatePolicy(buildConfig(config), 'tsi');
      return 'generated';
    } catch (error) {
      return error instanceof PolicyScopeError ? error.message : `unexpected: ${String(error)}`;
    }
  };
  t.match(refused({ objstore: { enabled: false } }), /^objstore\.enabled is false: the webhook injects with this configuration, the policy cannot$/);
  t.match(refused({ objstore: { configFile: '/vault/secrets/objstore.yml' } }), /objstore\.configFile/);
  t.match(refused({ volumes: [], volumeMounts: [{ name: 'certs', mountPath: '/certs' }] }), /volumeMounts mounts certs, a volume of the pod/);
  t.match(refused({ image: 'registry.local/thanos:main' }), /compaction auto with image registry\.local\/thanos:main, whose tag does not tell its Thanos version/);
  t.match(refused({ compaction: 'delayed', image: 'quay.io/thanos/thanos:v0.40.1' }), /compaction delayed needs Thanos >= 0\.41\.0/);
  t.equal(refused({ compaction: 'disabled', image: 'registry.local/thanos:main' }), 'generated', 'compaction disabled needs no version');
  t.end();
});
