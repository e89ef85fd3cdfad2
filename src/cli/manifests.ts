// The manifests the offline commands read (-f FILE or stdin, multi-document YAML) and print back:
// each document edited in place (splice.ts) where operations touch it, the rest byte for byte.
import { readFile } from 'node:fs/promises';
import { text } from 'node:stream/consumers';
import { Document, isMap, isNode, isScalar, parseAllDocuments } from 'yaml';
import { readFailure } from '../files.ts';
import { CommandError } from '../errors.ts';
import type { PatchOperation } from '../inject/patch.ts';
import type { UndoOperation } from '../inject/uninject.ts';
import { SpliceError, spliceDocument } from './splice.ts';

export interface Manifest {
  kind?: unknown;
  metadata?: { name?: unknown; namespace?: unknown };
  spec?: { replicas?: unknown };
  items?: unknown;
}

export function describe(object: Manifest): string {
  const name = typeof object.metadata?.name === 'string' ? object.metadata.name : '(unnamed)';
  return `${typeof object.kind === 'string' ? object.kind : 'object'}/${name}`;
}

/** The comment above a document, wherever the parser attached it (document, root, first key). */
function leadingComment(document: Document): string | null {
  const root = document.contents;
  const firstKey = isMap(root) ? root.items[0]?.key : undefined;
  return document.commentBefore ?? (isNode(root) ? root.commentBefore : undefined) ?? (isScalar(firstKey) ? firstKey.commentBefore : undefined) ?? null;
}

/** The YAML documents of `-f FILE` (or stdin), each with its object (empty documents dropped). */
export async function readManifests(filename: string): Promise<{ source: string; input: string; parsed: { document: Document; object: unknown }[] }> {
  const source = filename === '-' ? 'stdin' : filename;
  let input: string;
  try {
    input = filename === '-' ? await text(process.stdin) : await readFile(filename, 'utf8');
  } catch (error) {
    throw new CommandError(`cannot read ${source}: ${readFailure(error)}`);
  }
  // Merge keys (<<) as kubectl reads them.
  const documents = parseAllDocuments(input, { merge: true });
  if (!Array.isArray(documents)) throw new CommandError(`${source}: empty YAML stream`);
  const parsed: { document: Document; object: unknown }[] = [];
  for (const document of documents) {
    if (document.errors.length > 0) throw new CommandError(`${source}: not valid YAML: ${document.errors[0]?.message.split('\n')[0]}`);
    // A copy through JSON: an alias's value is its own object, as kubectl reads it, not one shared and injected twice.
    const object = JSON.parse(JSON.stringify(document.toJS()) ?? 'null') as unknown;
    if (object !== null && object !== undefined) parsed.push({ document, object });
  }
  return { source, input, parsed };
}

/** A document written anew from its object (its leading comment kept): for shapes not edited in place. */
function rewritten(text: string, document: Document, object: unknown): string {
  const output = new Document(object, { aliasDuplicateObjects: false });
  output.commentBefore = leadingComment(document);
  return `${text.startsWith('---') ? '---\n' : ''}${output.toString({ lineWidth: 0 })}`;
}

/** The input again, byte for byte but for the injected parts (splice.ts). */
export function printManifests(input: string, parsed: readonly { document: Document; object: unknown }[], operations: readonly (readonly (PatchOperation | UndoOperation)[])[]): void {
  let output = '';
  let cursor = 0;
  for (const [i, { document, object }] of parsed.entries()) {
    if (operations[i]?.length) {
      const [from, , to] = document.range as [number, number, number];
      let text: string;
      try {
        text = spliceDocument(input, document, operations[i], object);
      } catch (error) {
        if (!(error instanceof SpliceError)) throw error;
        process.stderr.write(`${describe(object as Manifest)}: note: written anew, its comments and layout not kept (${error.message})\n`);
        text = rewritten(input.slice(from, to), document, object);
      }
      output += input.slice(cursor, from) + text;
      cursor = to;
    }
  }
  process.stdout.write(output + input.slice(cursor));
}

