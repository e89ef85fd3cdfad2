// Applies injection operations to a document, checking each one (fast-json-patch with
// validation: a missing parent or out-of-range index is an error, as in the apiserver).
import jsonpatch from 'fast-json-patch';
import type { PatchOperation } from './patch.ts';

/** Applies `ops` to `document` in place; throws when an operation does not apply. */
export function applyOperations(document: object, ops: PatchOperation[]): void {
  jsonpatch.applyPatch(document, ops, true, true, true);
}
