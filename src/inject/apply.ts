// Applies injection operations to a document, checking each one as the apiserver would: an `add`
// needs its parent, a `replace` its target, an array index must be in range (fast-json-patch).
import jsonpatch from 'fast-json-patch';
import type { PatchOperation } from './patch.ts';

/**
 * fast-json-patch's own validator also walks every value looking for `undefined` (our values are
 * rendered objects that JSON serialises as they are); this keeps only the path checks, which are
 * what decides whether the apiserver can apply the patch.
 */
function checkPath(operation: jsonpatch.Operation, index: number, document: unknown, existing: string): void {
  const fail = (message: string, name: 'OPERATION_PATH_CANNOT_ADD' | 'OPERATION_PATH_UNRESOLVABLE') => {
    throw new jsonpatch.JsonPatchError(message, name, index, operation, document);
  };
  if (operation.op === 'add') {
    // `existing` is the longest prefix of the path that exists: the path itself or its parent.
    const parent = operation.path.slice(0, operation.path.lastIndexOf('/'));
    if (existing !== operation.path && existing !== parent) fail(`cannot add at ${operation.path}: its parent is missing`, 'OPERATION_PATH_CANNOT_ADD');
  } else if (operation.op === 'replace' && operation.path !== existing) {
    fail(`cannot replace ${operation.path}: it does not exist`, 'OPERATION_PATH_UNRESOLVABLE');
  }
}

/** Applies `ops` to `document` in place; throws when an operation does not apply. */
export function applyOperations(document: object, ops: PatchOperation[]): void {
  jsonpatch.applyPatch(document, ops, checkPath, true, true);
}
