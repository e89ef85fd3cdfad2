// `inject -f` writes the injection into the user's own YAML text: each patch operation becomes an
// insertion or a replacement at the place the parser found (node ranges), so comments, key order,
// quoting, flow style, blank values and indentation of everything else stay byte for byte. New
// parts follow the document's style: its indentation step, whether its block sequences are
// indented under their key, JSON where the collection is JSON (flow), the quoting of a replaced
// argument. Every result is read back and compared with the injected object; a path through an
// alias, or any result that reads back otherwise, raises SpliceError and the caller writes that
// document anew.
import { isDeepStrictEqual } from 'node:util';
import { Document, isAlias, isCollection, isMap, isPair, isScalar, isSeq, parseAllDocuments, stringify, Scalar, type Node, type Pair, type YAMLMap, type YAMLSeq } from 'yaml';
import type { PatchOperation } from '../inject/patch.ts';
import type { UndoOperation } from '../inject/uninject.ts';
import { decodeSegment, resolvePointer } from '../validation.ts';

export class SpliceError extends Error {}

interface Edit {
  start: number;
  end: number;
  text: string;
}

interface Style {
  source: string;
  /** Spaces per nesting level. */
  step: number;
  /** Whether a block sequence under a key is indented past the key (`key:\n  - a`) or not (`key:\n- a`). */
  indentSeq: boolean;
  eol: string;
}

type Collection = YAMLMap<unknown, unknown> | YAMLSeq<unknown>;

function column(source: string, offset: number): number {
  return offset - (source.lastIndexOf('\n', offset - 1) + 1);
}

/** The YAML node at a JSON Pointer (undefined where the path ends or leaves the document's collections). */
function nodeAt(document: Document, pointer: string): Node | null | undefined {
  let node: unknown = document.contents;
  for (const token of pointer.split('/').slice(1).map(decodeSegment)) {
    if (isAlias(node)) throw new SpliceError('the path goes through an alias');
    if (isMap(node)) node = pairOf(node, token)?.value;
    else if (isSeq(node)) node = node.items[Number(token)];
    else return undefined;
  }
  if (isAlias(node)) throw new SpliceError('the path goes through an alias');
  return node as Node | null | undefined;
}

function pairOf(map: YAMLMap<unknown, unknown>, key: string): Pair<unknown, unknown> | undefined {
  return map.items.find((pair) => isScalar(pair.key) && String(pair.key.value) === key);
}

const rangeOf = (node: unknown): [number, number, number] => {
  const range = (node as Node).range;
  if (!range) throw new SpliceError('a node without a source range');
  return range;
};

/** The offset after the line that `offset` is on (its end of line included), and whether a line break must come first (end of text). */
function afterLine(source: string, offset: number): { at: number; breakFirst: boolean } {
  if (offset > 0 && source[offset - 1] === '\n') return { at: offset, breakFirst: false };
  const newline = source.indexOf('\n', offset);
  return newline === -1 ? { at: source.length, breakFirst: true } : { at: newline + 1, breakFirst: false };
}

function indent(text: string, spaces: number): string {
  const pad = ' '.repeat(spaces);
  return text.split('\n').map((line) => (line === '' ? line : pad + line)).join('\n');
}

/** A scalar on one line, as YAML writes it plainly (a multi-line string double-quoted). */
function inlineScalar(value: unknown): string {
  if (typeof value === 'string' && value.includes('\n')) return JSON.stringify(value);
  return stringify(value, null, { lineWidth: 0 }).trimEnd();
}

/** A collection in block style, in the document's indentation. */
function block(value: unknown, style: Style): string {
  return new Document(value, { aliasDuplicateObjects: false }).toString({ lineWidth: 0, indent: style.step, indentSeq: style.indentSeq });
}

/** A value written in block style after `key:` at `keyColumn`: ` scalar`, or the collection on the next lines. */
function blockValue(value: unknown, keyColumn: number, style: Style): string {
  if (value === null || typeof value !== 'object' || Object.keys(value).length === 0) return ` ${inlineScalar(value)}`;
  const nested = keyColumn + (Array.isArray(value) && !style.indentSeq ? 0 : style.step);
  return `\n${indent(block(value, style), nested).trimEnd()}`;
}

/** A sequence item in block style at the dash's column. */
function blockItem(value: unknown, dashColumn: number, style: Style): string {
  if (value === null || typeof value !== 'object') return `${' '.repeat(dashColumn)}- ${inlineScalar(value)}`;
  const lines = block(value, style).trimEnd().split('\n');
  return indent(lines.map((line, i) => (i === 0 ? `- ${line}` : line === '' ? line : `  ${line}`)).join('\n'), dashColumn);
}

/** A string in the quoting of `like` (the scalar it replaces, or the item before it in a flow list); JSON where plain cannot hold it. */
function likeScalar(like: unknown, value: unknown, flow: boolean): string {
  if (typeof value !== 'string' || !isScalar(like)) return flow ? JSON.stringify(value) : inlineScalar(value);
  if (like.type === Scalar.QUOTE_SINGLE && !value.includes('\n')) return `'${value.replaceAll("'", "''")}'`;
  if (like.type === Scalar.PLAIN) {
    const plain = inlineScalar(value);
    if (!/^["']/.test(plain) && !(flow && /[,[\]{}]|: | #/.test(plain))) return plain;
  }
  return JSON.stringify(value);
}

const isFlowCollection = (node: unknown): node is Collection => isCollection(node) && node.flow === true;
const isEmptyFlow = (node: unknown): node is Collection => isFlowCollection(node) && node.items.length === 0;

/** A key in the map's own quoting: JSON keys stay JSON. */
function keyText(map: Collection, key: string): string {
  const first = map.items[0];
  return isPair(first) && isScalar(first.key) && first.key.type === Scalar.QUOTE_DOUBLE ? JSON.stringify(key) : inlineScalar(key);
}

/** The edit that sets a pair's value (absent, null, or an empty flow collection) to `value`: JSON in a flow map, block style in a block map. */
function setValue(map: Collection, pair: Pair<unknown, unknown>, value: unknown, style: Style): Edit {
  const old = pair.value;
  if (isCollection(old) && !isEmptyFlow(old)) throw new SpliceError('an existing collection would be replaced');
  const colon = style.source.indexOf(':', rangeOf(pair.key)[1]);
  const end = old ? rangeOf(old)[1] : colon + 1;
  if (map.flow) return { start: colon + 1, end, text: ` ${JSON.stringify(value)}` };
  return { start: colon + 1, end, text: blockValue(value, column(style.source, rangeOf(pair.key)[0]), style) };
}

type Operation = PatchOperation | UndoOperation;

const lineStart = (source: string, offset: number) => source.lastIndexOf('\n', offset - 1) + 1;

/** The span of a map pair or sequence item: from its key (or item) to the end of its value. */
function spanOf(entry: unknown): [number, number] {
  if (isPair(entry)) return [rangeOf(entry.key)[0], rangeOf(entry.value ?? entry.key)[1]];
  const [start, end] = rangeOf(entry);
  return [start, end];
}

/**
 * The edit that takes item `index` out of `parent`: its lines in block style, the item and the
 * comma before it (after it, for the first) in flow style. A collection left empty is written as
 * `{}` or `[]` (its key kept), as the injection found it.
 */
function removeEdit(document: Document, parentPath: string, parent: Collection, index: number, emptied: boolean, style: Style): Edit {
  const { source } = style;
  if (emptied) {
    const owner = nodeAt(document, parentPath.slice(0, parentPath.lastIndexOf('/')));
    const pair = isMap(owner) ? owner.items.find((p) => p.value === parent) : undefined;
    const empty = isMap(parent) ? '{}' : '[]';
    if (owner === undefined || !isMap(owner) || pair === undefined) throw new SpliceError(`${parentPath} would be left empty outside a map`);
    if (parent.flow) {
      const [start, end] = rangeOf(parent);
      return { start, end, text: empty };
    }
    const colon = source.indexOf(':', rangeOf(pair.key)[1]);
    const end = afterLine(source, rangeOf(parent)[1]);
    return { start: colon + 1, end: end.at, text: ` ${empty}${end.breakFirst ? '' : '\n'}` };
  }
  const items = parent.items as unknown[];
  const [start, end] = spanOf(items[index]);
  if (parent.flow) {
    if (index > 0) return { start: spanOf(items[index - 1])[1], end, text: '' };
    return { start, end: spanOf(items[1])[0], text: '' };
  }
  return { start: lineStart(source, start), end: afterLine(source, end).at, text: '' };
}

/** The edits of one operation, whose parent (map or sequence) is in the source. */
function editsOf(document: Document, operation: Operation, injected: unknown, style: Style, replaced: Set<Node>, removals: Map<string, number>): Edit[] {
  const slash = operation.path.lastIndexOf('/');
  const parentPath = operation.path.slice(0, slash);
  const last = decodeSegment(operation.path.slice(slash + 1));
  const parent = nodeAt(document, parentPath);
  if (!isCollection(parent)) throw new SpliceError(`no map or sequence at ${parentPath || '/'}`);
  const { source } = style;

  if (operation.op === 'remove') {
    const index = isMap(parent) ? parent.items.findIndex((p) => isScalar(p.key) && String(p.key.value) === last) : Number(last);
    if (index < 0 || index >= parent.items.length) throw new SpliceError(`nothing to remove at ${operation.path}`);
    const emptied = removals.get(parentPath) === parent.items.length;
    if (emptied && replaced.has(parent)) return [];
    if (emptied) replaced.add(parent);
    return [removeEdit(document, parentPath, parent, index, emptied, style)];
  }

  // An empty `{}` or `[]` is written whole with what it holds now (in block style under a block key).
  if (parent.items.length === 0) {
    if (replaced.has(parent)) return [];
    replaced.add(parent);
    const final = resolvePointer(injected, parentPath);
    const owner = parentPath === '' ? undefined : nodeAt(document, parentPath.slice(0, parentPath.lastIndexOf('/')));
    if (isMap(owner) && !owner.flow) {
      const pair = owner.items.find((p) => p.value === parent);
      if (pair) return [setValue(owner, pair, final, style)];
    }
    const [start, end] = rangeOf(parent);
    return [{ start, end, text: JSON.stringify(final) }];
  }

  if (isMap(parent)) {
    const pair = pairOf(parent, last);
    if (pair) return [setValue(parent, pair, operation.value, style)];
    const lastPair = parent.items[parent.items.length - 1] as Pair<unknown, unknown>;
    const end = rangeOf(lastPair.value ?? lastPair.key)[1];
    if (parent.flow) return [{ start: end, end, text: `, ${keyText(parent, last)}: ${JSON.stringify(operation.value)}` }];
    const keyColumn = column(source, rangeOf(parent.items[0]?.key)[0]);
    const { at, breakFirst } = afterLine(source, end);
    const line = `${' '.repeat(keyColumn)}${keyText(parent, last)}:${blockValue(operation.value, keyColumn, style)}`;
    return [{ start: at, end: at, text: breakFirst ? `\n${line}` : `${line}\n` }];
  }

  const seq = parent;
  if (last !== '-') {
    const item = seq.items[Number(last)];
    if (operation.op !== 'replace' || !isScalar(item)) throw new SpliceError(`${operation.op} ${operation.path} is not a scalar replacement`);
    const [start, end] = rangeOf(item);
    return [{ start, end, text: likeScalar(item, operation.value, seq.flow === true) }];
  }
  const end = rangeOf(seq.items[seq.items.length - 1])[1];
  if (seq.flow) return [{ start: end, end, text: `, ${likeScalar(seq.items[seq.items.length - 1], operation.value, true)}` }];
  const { at, breakFirst } = afterLine(source, end);
  const item = blockItem(operation.value, column(source, rangeOf(seq)[0]), style);
  return [{ start: at, end: at, text: breakFirst ? `\n${item}` : `${item}\n` }];
}

/** The document's indentation step and sequence style, from its first nested block collections (2 and indented when it has none). */
function styleOf(source: string, document: Document): Style {
  let step: number | undefined;
  let indentSeq: boolean | undefined;
  const visit = (node: unknown) => {
    if (!isMap(node) || node.flow) return;
    for (const pair of node.items) {
      if (!isScalar(pair.key)) continue;
      const keyColumn = column(source, rangeOf(pair.key)[0]);
      if (isMap(pair.value) && !pair.value.flow && pair.value.items[0]) step ??= column(source, rangeOf(pair.value.items[0].key)[0]) - keyColumn;
      if (isSeq(pair.value) && !pair.value.flow) indentSeq ??= column(source, rangeOf(pair.value)[0]) > keyColumn;
      visit(pair.value);
      if (isSeq(pair.value)) for (const item of pair.value.items) visit(item);
    }
  };
  visit(document.contents);
  return { source, step: step !== undefined && step > 0 ? step : 2, indentSeq: indentSeq ?? true, eol: source.includes('\r\n') ? '\r\n' : '\n' };
}

/**
 * The document's text with `operations` (JSON Patch, against its object) written in place; checked
 * by parsing it back into `injected`. Throws SpliceError when the document's shape is not edited in place.
 */
export function spliceDocument(source: string, document: Document, operations: readonly Operation[], injected: unknown): string {
  const style = styleOf(source, document);
  const replaced = new Set<Node>();
  // How many items each collection loses: one that loses them all is written empty.
  const removals = new Map<string, number>();
  for (const { op, path } of operations) {
    if (op !== 'remove') continue;
    const parent = path.slice(0, path.lastIndexOf('/'));
    removals.set(parent, (removals.get(parent) ?? 0) + 1);
  }
  const edits = operations.flatMap((operation, order) =>
    editsOf(document, operation, injected, style, replaced, removals).map((edit) => ({ ...edit, order, depth: operation.path.split('/').length })));
  // Applied from the end, so offsets stay true. Insertions at one place (where several collections
  // end together) go innermost first, then in the operations' order: a container's new key before
  // the next container, both before the pod spec's next key.
  edits.sort((a, b) => b.start - a.start || a.depth - b.depth || b.order - a.order);
  const [from, , to] = rangeOf(document);
  let text = source.slice(from, to);
  const bareEnd = !text.endsWith('\n');
  for (const edit of edits) text = text.slice(0, edit.start - from) + edit.text.replaceAll('\n', style.eol) + text.slice(edit.end - from);
  // A text without a final newline keeps none, when its last lines are taken out.
  if (bareEnd && text.endsWith(style.eol)) text = text.slice(0, -style.eol.length);
  const back = parseAllDocuments(text, { merge: true });
  const objects = (Array.isArray(back) ? back : []).map((d) => (d.errors.length > 0 ? undefined : d.toJS() as unknown)).filter((o) => o !== null);
  if (objects.length !== 1 || !isDeepStrictEqual(objects[0], injected)) throw new SpliceError('the edited text does not read back as the injected object');
  return text;
}
