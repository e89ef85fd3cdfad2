// An independent RFC 6902 (JSON Patch) applier with the semantics kube-apiserver
// uses for mutating-webhook patches: gopkg.in/evanphx/json-patch.v4, called
// with no options (dispatcher.go: jsonpatch.DecodePatch(...).Apply(objJS)).
//
// Deliberately NOT built on fast-json-patch or any other library: the point is
// to catch patches that a lenient applier accepts but the apiserver rejects.
//
// evanphx v4 behaviour reproduced here (differences from a textbook RFC 6902
// applier are marked "v4:"):
// - `add` never creates a missing parent ("doc is missing path").
// - `add` on an existing object member replaces it.
// - `-` as the last array token appends (add, and the destination of move/copy).
// - v4: array indices are parsed like Go's strconv.Atoi: an optional sign and
//   decimal digits (leading zeros accepted).
// - v4: negative indices count from the end (SupportNegativeIndices = true):
//   for add the valid range is [-(len+1), len] and -1 appends; for
//   remove/replace/test/from it is [-len, len).
// - `replace` and `remove` need the target to exist.
// - v4: `test` of a missing object member passes when the expected value is
//   null (the library treats a missing member and null alike there).
// - JSON Pointer tokens are decoded in one left-to-right pass: `~1` -> `/`,
//   `~0` -> `~`, so `~01` is the literal text `~1`. v4: any other `~` sequence
//   is kept literally (no error).
//
// Where this harness is STRICTER than v4 (a patch that v4 would accept is
// rejected here; all of these are webhook bugs in practice):
// - a `path`/`from` that is not empty and does not start with `/` (v4 silently
//   drops the first token);
// - the root path "" for any op (v4 rejects it for add/remove/move/copy; its
//   whole-document replace/test support varies between v4 releases);
// - a missing `value` member on add/replace/test (v4 adds null).

import { isRecord, jsonClone, jsonEqual } from './json.ts';
import type { JsonRecord } from './json.ts';

type Container = JsonRecord | unknown[];

/** Error raised for a patch that the apiserver would fail to apply. */
export class JsonPatchError extends Error {
  /** Index of the failing operation in the patch array (-1: the patch itself). */
  readonly opIndex: number;
  /** The failing operation's `op` member (or '?' when it is not a string). */
  readonly op: string;
  /** The failing operation's `path` member (or '?' when it is not a string). */
  readonly path: string;

  constructor(opIndex: number, op: string, path: string, detail: string) {
    super(
      opIndex < 0
        ? `json patch: ${detail}`
        : `json patch op ${opIndex} (${op} ${JSON.stringify(path)}): ${detail}`,
    );
    this.name = 'JsonPatchError';
    this.opIndex = opIndex;
    this.op = op;
    this.path = path;
  }
}

/** Raised internally; wrapped into a JsonPatchError naming the op. */
class StepError extends Error {}

function isContainer(value: unknown): value is Container {
  return Array.isArray(value) || isRecord(value);
}

/**
 * Decode one JSON Pointer reference token (RFC 6901 section 4): a single pass,
 * so `~01` becomes `~1` and not `/`.
 */
export function decodePointerToken(token: string): string {
  return token.replace(/~[01]/g, (m) => (m === '~1' ? '/' : '~'));
}

/** Encode one JSON Pointer reference token: `~` -> `~0` first, then `/` -> `~1`. */
export function encodePointerToken(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** Split a JSON Pointer into decoded tokens. Only non-root pointers are accepted. */
function parsePointer(pointer: string, member: 'path' | 'from'): string[] {
  if (pointer === '') {
    throw new StepError(`${member} "" (the whole document) is not supported by evanphx/json-patch v4`);
  }
  if (!pointer.startsWith('/')) {
    throw new StepError(`${member} ${JSON.stringify(pointer)} is not a JSON Pointer (must start with "/")`);
  }
  return pointer.slice(1).split('/').map(decodePointerToken);
}

/** Go strconv.Atoi: optional sign, decimal digits. Returns undefined when it would fail. */
function atoi(token: string): number | undefined {
  if (!/^[+-]?[0-9]+$/.test(token)) return undefined;
  const n = Number(token);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * Index of an EXISTING array element (get/replace/remove/test/from):
 * v4 accepts [-len, len), negatives counting from the end.
 */
function existingIndex(arr: unknown[], token: string): number {
  const idx = atoi(token);
  if (idx === undefined) throw new StepError(`${JSON.stringify(token)} is not a proper array index`);
  if (idx >= arr.length || idx < -arr.length) {
    throw new StepError(`Unable to access invalid index: ${idx} (array length ${arr.length})`);
  }
  return idx < 0 ? idx + arr.length : idx;
}

/**
 * Insertion index for `add` into an array: `-` appends; v4 accepts
 * [-(len+1), len], where -1 means "after the last element".
 */
function insertIndex(arr: unknown[], token: string): number {
  if (token === '-') return arr.length;
  const idx = atoi(token);
  if (idx === undefined) throw new StepError(`value was not a proper array index: ${JSON.stringify(token)}`);
  const size = arr.length + 1;
  if (idx >= size || idx < -size) {
    throw new StepError(`Unable to access invalid index: ${idx} (array length ${arr.length})`);
  }
  return idx < 0 ? idx + size : idx;
}

/** Define an own enumerable member (safe for keys such as `__proto__`). */
function setMember(obj: JsonRecord, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * Walk every token but the last (evanphx findObject). Each intermediate value
 * must exist and be an object or array, otherwise the op "does not apply: doc
 * is missing path". Returns the parent container and the last (decoded) token.
 */
function findParent(root: Container, tokens: string[], opName: string, pointer: string): [Container, string] {
  let cur: Container = root;
  const missing = () => new StepError(`${opName} operation does not apply: doc is missing path: ${JSON.stringify(pointer)}`);
  for (let i = 0; i < tokens.length - 1; i++) {
    const token = tokens[i] as string;
    let next: unknown;
    if (Array.isArray(cur)) {
      const idx = atoi(token);
      if (idx === undefined || idx >= cur.length || idx < -cur.length) throw missing();
      next = cur[idx < 0 ? idx + cur.length : idx];
    } else {
      if (!Object.hasOwn(cur, token)) throw missing();
      next = cur[token];
    }
    if (!isContainer(next)) throw missing();
    cur = next;
  }
  return [cur, tokens[tokens.length - 1] as string];
}

/** Read the value at (parent, key); the target must exist. */
function getExisting(parent: Container, key: string, what: string): unknown {
  if (Array.isArray(parent)) return parent[existingIndex(parent, key)];
  if (!Object.hasOwn(parent, key)) throw new StepError(`${what}: unable to get nonexistent key: ${JSON.stringify(key)}`);
  return parent[key];
}

function addAt(parent: Container, key: string, value: unknown): void {
  if (Array.isArray(parent)) {
    parent.splice(insertIndex(parent, key), 0, value);
  } else {
    // RFC 6902 4.1 / v4 partialDoc.add: an existing member is replaced.
    setMember(parent, key, value);
  }
}

function removeAt(parent: Container, key: string, opName: string): unknown {
  if (Array.isArray(parent)) {
    const idx = existingIndex(parent, key);
    return parent.splice(idx, 1)[0];
  }
  if (!Object.hasOwn(parent, key)) {
    throw new StepError(`${opName}: Unable to remove nonexistent key: ${JSON.stringify(key)}`);
  }
  const old = parent[key];
  delete parent[key];
  return old;
}

function stringMember(op: JsonRecord, member: string): string {
  const v = op[member];
  if (v === undefined) throw new StepError(`operation missing ${member} field`);
  if (typeof v !== 'string') throw new StepError(`operation ${member} field must be a string`);
  return v;
}

function valueMember(op: JsonRecord): unknown {
  if (!Object.hasOwn(op, 'value')) throw new StepError('operation missing value field');
  return jsonClone(op.value);
}

function applyOne(root: Container, opName: string, op: JsonRecord): void {
  switch (opName) {
    case 'add': {
      const path = stringMember(op, 'path');
      const value = valueMember(op);
      const [parent, key] = findParent(root, parsePointer(path, 'path'), 'add', path);
      addAt(parent, key, value);
      return;
    }
    case 'remove': {
      const path = stringMember(op, 'path');
      const [parent, key] = findParent(root, parsePointer(path, 'path'), 'remove', path);
      removeAt(parent, key, 'remove');
      return;
    }
    case 'replace': {
      const path = stringMember(op, 'path');
      const value = valueMember(op);
      const [parent, key] = findParent(root, parsePointer(path, 'path'), 'replace', path);
      // The target must exist ("replace operation does not apply: doc is missing key").
      if (Array.isArray(parent)) {
        parent[existingIndex(parent, key)] = value;
      } else {
        if (!Object.hasOwn(parent, key)) {
          throw new StepError(`replace operation does not apply: doc is missing key: ${JSON.stringify(path)}`);
        }
        setMember(parent, key, value);
      }
      return;
    }
    case 'move': {
      const from = stringMember(op, 'from');
      const path = stringMember(op, 'path');
      const [src, srcKey] = findParent(root, parsePointer(from, 'from'), 'move', from);
      getExisting(src, srcKey, 'move');
      const value = removeAt(src, srcKey, 'move');
      // The destination is resolved AFTER the removal (v4 order), so moving a
      // value into its own child fails with "missing path".
      const [dst, dstKey] = findParent(root, parsePointer(path, 'path'), 'move', path);
      addAt(dst, dstKey, value);
      return;
    }
    case 'copy': {
      const from = stringMember(op, 'from');
      const path = stringMember(op, 'path');
      const [src, srcKey] = findParent(root, parsePointer(from, 'from'), 'copy', from);
      const value = jsonClone(getExisting(src, srcKey, 'copy'));
      const [dst, dstKey] = findParent(root, parsePointer(path, 'path'), 'copy', path);
      addAt(dst, dstKey, value);
      return;
    }
    case 'test': {
      const path = stringMember(op, 'path');
      const expected = valueMember(op);
      const [parent, key] = findParent(root, parsePointer(path, 'path'), 'test', path);
      let actual: unknown;
      if (Array.isArray(parent)) {
        actual = parent[existingIndex(parent, key)];
      } else {
        // v4: a missing member compares equal to null.
        actual = Object.hasOwn(parent, key) ? parent[key] : null;
      }
      if (!jsonEqual(actual, expected)) throw new StepError(`testing value ${path} failed: test failed`);
      return;
    }
    default:
      throw new StepError(`Unexpected kind: ${opName}`);
  }
}

/**
 * Apply a JSON Patch with kube-apiserver (evanphx/json-patch v4) semantics.
 * Returns a new document; neither `doc` nor `ops` is modified. Throws a
 * JsonPatchError (an Error whose message names the op index and path) when
 * the patch would not apply; one failing op fails the whole patch.
 */
export function applyPatchStrict(doc: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) {
    throw new JsonPatchError(-1, '?', '?', 'a patch must be a JSON array of operations');
  }
  // evanphx decodes the document as an object or an array (partialDoc / partialArray).
  const root = jsonClone(doc);
  if (!isContainer(root)) {
    throw new JsonPatchError(-1, '?', '?', 'the document must be a JSON object or array');
  }
  ops.forEach((raw: unknown, index: number) => {
    if (!isRecord(raw)) {
      throw new JsonPatchError(index, '?', '?', 'an operation must be a JSON object');
    }
    // v4 Operation.Kind(): a missing or non-string `op` is "unknown".
    const opName = typeof raw.op === 'string' ? raw.op : 'unknown';
    const path = typeof raw.path === 'string' ? raw.path : '?';
    try {
      applyOne(root, opName, raw);
    } catch (err) {
      if (err instanceof StepError) throw new JsonPatchError(index, opName, path, err.message);
      throw err;
    }
  });
  return root;
}
