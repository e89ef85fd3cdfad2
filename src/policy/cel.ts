// JSON values written as CEL for a MutatingAdmissionPolicy: typed object initializers
// (`Object.spec.initContainers{...}`, the type named by the field path from the root, list levels
// skipped), map literals for Kubernetes maps, and values that vary with the pod. A value the engine
// renders differently for different pods comes in as variants, one per case (a few features of the
// pod); what all variants share is written once, what differs becomes a conditional on the fewest
// features that tell the cases apart (or an optional field). Pure.
import { canonical } from '../inject/status.ts';

/** A rendered value and the case it was rendered for (feature -> value). */
export interface Variant {
  features: Readonly<Record<string, string>>;
  value: unknown;
}

/** A case's feature as a CEL condition on the real pod. */
export type FeatureCondition = (feature: string, value: string) => string;

/**
 * Stand-ins: a string (or a number, whole) the engine rendered from a stand-in pod value, and the CEL
 * expression of the real pod's value (a string expression for strings, an int expression for numbers).
 */
export type StandIns = ReadonlyMap<string | number, string>;

/** Fields of a container that are Kubernetes maps (string keys), not objects of a schema. */
const MAP_FIELDS = new Set(['resources.limits', 'resources.requests', 'nodeSelector']);

/** A CEL string literal (JSON's escapes are CEL's). */
export const celString = (text: string): string => JSON.stringify(text);

/** `text` with every stand-in replaced by its expression, as a CEL string expression. */
function stringExpression(text: string, standIns: StandIns): string {
  const keys = [...standIns.keys()].filter((key): key is string => typeof key === 'string').sort((a, b) => b.length - a.length);
  let parts: { text: string; expression?: string }[] = [{ text }];
  for (const key of keys) {
    parts = parts.flatMap((part) => {
      if (part.expression !== undefined || !part.text.includes(key)) return [part];
      const pieces = part.text.split(key);
      return pieces.flatMap((piece, i) => (i === 0 ? [{ text: piece }] : [{ text: '', expression: standIns.get(key) as string }, { text: piece }]));
    });
  }
  const terms = parts.filter((part) => part.expression !== undefined || part.text !== '').map((part) => part.expression ?? celString(part.text));
  return terms.length === 0 ? '""' : terms.join(' + ');
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** One value as CEL; `type` is its Object type path (`Object.spec.initContainers`), `field` its path below the container. */
function literal(value: unknown, type: string, field: string, standIns: StandIns): string {
  if (typeof value === 'string') return stringExpression(value, standIns);
  if (typeof value === 'number') return standIns.get(value) ?? String(value);
  if (typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `[${value.map((item) => literal(item, type, field, standIns)).join(', ')}]`;
  if (isObject(value)) {
    if (MAP_FIELDS.has(field)) return `{${Object.entries(value).map(([k, v]) => `${celString(k)}: ${literal(v, type, field, standIns)}`).join(', ')}}`;
    const fields = Object.entries(value).filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}: ${literal(v, `${type}.${k}`, field === '' ? k : `${field}.${k}`, standIns)}`);
    return `${type}{${fields.join(', ')}}`;
  }
  throw new Error(`a value CEL cannot hold: ${JSON.stringify(value)}`);
}

/**
 * The condition under which a pod is in `group` and not in `rest`: the fewest features the group's
 * variants share that no other variant has all of (greedy); the cases themselves, or'ed, when the
 * group shares too little.
 */
function separating(group: readonly Variant[], rest: readonly Variant[], condition: FeatureCondition): string {
  const matches = (variant: Variant, pairs: [string, string][]) => pairs.every(([feature, value]) => variant.features[feature] === value);
  const first = group[0] as Variant;
  let pairs = Object.entries(first.features).filter(([feature, value]) => group.every((variant) => variant.features[feature] === value));
  const separates = (candidate: [string, string][]) => !rest.some((variant) => matches(variant, candidate));
  if (!separates(pairs)) {
    return `(${group.map((variant) => Object.entries(variant.features).map(([f, v]) => condition(f, v)).join(' && ')).map((c) => `(${c})`).join(' || ')})`;
  }
  for (const pair of [...pairs]) {
    const without = pairs.filter((p) => p !== pair);
    if (separates(without)) pairs = without;
  }
  return pairs.length === 0 ? 'true' : `(${pairs.map(([feature, value]) => condition(feature, value)).join(' && ')})`;
}

/**
 * The variants of one value as one CEL expression: shared objects field by field (a field only some
 * variants have becomes an optional field), anything else that differs as a chain of conditionals
 * over the distinct values. The variants' conditions must cover every case: the last value needs none.
 */
export function variantsExpression(variants: readonly Variant[], type: string, standIns: StandIns, condition: FeatureCondition, field = ''): string {
  const distinct = new Map<string, Variant[]>();
  for (const variant of variants) {
    const key = canonical(variant.value);
    distinct.set(key, [...(distinct.get(key) ?? []), variant]);
  }
  const groups = [...distinct.values()];
  if (groups.length === 1) return literal((groups[0] as Variant[])[0]?.value, type, field, standIns);
  if (variants.every((variant) => isObject(variant.value)) && !MAP_FIELDS.has(field)) {
    const keys = [...new Set(variants.flatMap((variant) => Object.keys(variant.value as object)))];
    const fields = keys.map((key) => {
      const having = variants.filter((variant) => (variant.value as Record<string, unknown>)[key] !== undefined)
        .map((variant) => ({ features: variant.features, value: (variant.value as Record<string, unknown>)[key] }));
      const sub = variantsExpression(having, `${type}.${key}`, standIns, condition, field === '' ? key : `${field}.${key}`);
      if (having.length === variants.length) return `${key}: ${sub}`;
      const lacking = variants.filter((variant) => (variant.value as Record<string, unknown>)[key] === undefined);
      return `?${key}: ${separating(having, lacking, condition)} ? optional.of(${sub}) : optional.none()`;
    });
    return `${type}{${fields.join(', ')}}`;
  }
  // Each value under the condition that tells its cases from those of the values after it.
  const chain = groups.slice(0, -1).map((group, i) => `${separating(group, groups.slice(i + 1).flat(), condition)} ? ${literal(group[0]?.value, type, field, standIns)} : `).join('');
  return `${chain}${literal(groups.at(-1)?.[0]?.value, type, field, standIns)}`;
}
