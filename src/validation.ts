// Validation at the boundaries (config file, AdmissionReview, manifests): compiled checks, and
// errors turned into sentences a user can act on:
// `objstore.secretName: "Bad_Name" is not valid; expected a Secret name (...)`.
import { Compile } from 'typebox/compile';
import type { TSchema } from 'typebox';

/** A JSON Pointer segment decoded (RFC 6901: `~1` -> `/`, then `~0` -> `~`). */
export const decodeSegment = (segment: string) => segment.replaceAll('~1', '/').replaceAll('~0', '~');

/** The schema node a JSON-schema path like `#/properties/a/items` points at. */
function schemaAt(root: TSchema, schemaPath: string): Record<string, unknown> | undefined {
  let node: unknown = root;
  for (const part of schemaPath.replace(/^#\/?/, '').split('/').filter(Boolean)) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[decodeSegment(part)];
  }
  return node !== null && typeof node === 'object' ? (node as Record<string, unknown>) : undefined;
}

/** The value at a JSON Pointer (undefined where the path leaves the objects). */
export function resolvePointer(root: unknown, pointer: string): unknown {
  let node = root;
  for (const part of pointer.split('/').slice(1)) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[decodeSegment(part)];
  }
  return node;
}

/** A dotted field name: `/resources/requests/cpu` -> `resources.requests.cpu`, `/a/0/b` -> `a[0].b`. */
export function fieldName(pointer: string, prefix = ''): string {
  let name = prefix;
  for (const raw of pointer.split('/').slice(1)) {
    const part = decodeSegment(raw);
    name += /^[0-9]+$/.test(part) ? `[${part}]` : name === '' ? part : `.${part}`;
  }
  return name === '' ? '(top level)' : name;
}

/** "must be string" -> "a string", "must be object" -> "an object"; other messages as they are. */
function plainForm(message: string): string {
  const type = /^must be (\w+)$/.exec(message)?.[1];
  if (type === undefined) return message;
  return `${/^[aeiou]/.test(type) ? 'an' : 'a'} ${type}`;
}

/** A short rendering of the offending value; containers are described, never serialised whole
 * (they may be huge or nested thousands of levels deep). */
function shown(value: unknown): string {
  if (Array.isArray(value)) return `a list of ${value.length}`;
  if (value !== null && typeof value === 'object') return 'an object';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

interface SchemaError {
  keyword: string;
  schemaPath: string;
  instancePath: string;
  params: unknown;
  message: string;
}

/** One sentence per problem, at most `limit`. */
function sentences(schema: TSchema, value: unknown, errors: SchemaError[], prefix: string, limit: number): string[] {
  // Unions (`X | null`): report what is wrong inside X, not "must match a schema in anyOf" nor the
  // null branch; a union whose branches say nothing more keeps its own error.
  const relevant = errors.filter((error) => error.keyword !== 'boolean' && schemaAt(schema, error.schemaPath)?.type !== 'null');
  const kept = relevant.filter(
    (error) => error.keyword !== 'anyOf' || !relevant.some((other) => other !== error && other.schemaPath.startsWith(`${error.schemaPath}/anyOf/`)),
  );
  const sentences: string[] = [];
  for (const error of kept) {
    const field = fieldName(error.instancePath, prefix);
    let sentence: string;
    if (error.keyword === 'additionalProperties') {
      const extra = (error.params as { additionalProperties?: string[] }).additionalProperties ?? [];
      const node = schemaAt(schema, error.schemaPath);
      const known = Object.keys((node?.properties as Record<string, unknown> | undefined) ?? {});
      sentence = `${field}: unknown field${extra.length > 1 ? 's' : ''} ${extra.join(', ')}; known fields: ${known.join(', ')}`;
    } else if (error.keyword === 'required') {
      const missing = (error.params as { requiredProperties?: string[] }).requiredProperties ?? [];
      sentence = `${field}: missing required field ${missing.join(', ')}`;
    } else {
      const node = schemaAt(schema, error.schemaPath);
      const form = typeof node?.description === 'string' ? node.description : plainForm(error.message);
      sentence = `${field}: ${shown(resolvePointer(value, error.instancePath))} is not valid; expected ${form}`;
    }
    if (!sentences.includes(sentence)) sentences.push(sentence);
    if (sentences.length >= limit) break;
  }
  return sentences;
}

/**
 * A compiled check for `schema`: returns [] when the value is valid, else sentences naming each
 * field (prefixed with `prefix`, e.g. `request.object`) and its accepted form.
 */
export function compileCheck(schema: TSchema, prefix = '', limit = 5): (value: unknown) => string[] {
  const validator = Compile(schema);
  return (value) => (validator.Check(value) ? [] : sentences(schema, value, validator.Errors(value), prefix, limit));
}
