// Applies injection operations to a document in place, with the apiserver's rules (evanphx
// json-patch v4): an `add` needs its parent, a `replace` its target, an array index must be in
// range, `-` appends. The webhook runs this on every patch before answering (a patch the
// apiserver cannot apply fails pod creation whatever the failurePolicy), and the offline CLI
// uses it to print the injected manifests. Only the two operations the injector emits exist here.
import type { PatchOperation } from './patch.ts';

export class PatchError extends Error {}

function decode(segment: string): string {
  return segment.includes('~') ? segment.replaceAll('~1', '/').replaceAll('~0', '~') : segment;
}

function isContainer(value: unknown): value is Record<string, unknown> | unknown[] {
  return typeof value === 'object' && value !== null;
}

/** Applies `ops` to `document` in place; throws PatchError naming the operation that does not apply. */
export function applyOperations(document: object, ops: PatchOperation[]): void {
  for (const [index, operation] of ops.entries()) {
    const error = (why: string) => new PatchError(`patch operation ${index} (${operation.op} ${operation.path}): ${why}`);
    const segments = operation.path.split('/');
    if (segments[0] !== '' || segments.length < 2) throw error('not a JSON pointer below the root');
    let parent: unknown = document;
    for (let i = 1; i < segments.length - 1; i++) {
      const key = decode(segments[i] as string);
      if (key === '__proto__' || !isContainer(parent) || !Object.hasOwn(parent, key)) throw error('the path does not exist');
      parent = (parent as Record<string, unknown>)[key];
    }
    if (!isContainer(parent)) throw error('the parent is missing');
    const last = decode(segments[segments.length - 1] as string);
    if (Array.isArray(parent)) {
      const position = last === '-' && operation.op === 'add' ? parent.length : /^(0|[1-9][0-9]*)$/.test(last) ? Number(last) : -1;
      const limit = operation.op === 'add' ? parent.length : parent.length - 1;
      if (position < 0 || position > limit) throw error(`index ${last} is out of range (array of ${parent.length})`);
      if (operation.op === 'add') parent.splice(position, 0, operation.value);
      else parent[position] = operation.value;
      continue;
    }
    if (last === '__proto__') throw error('__proto__ is not a key');
    if (operation.op === 'replace' && !Object.hasOwn(parent, last)) throw error('nothing to replace');
    parent[last] = operation.value;
  }
}
