// `thanos-injector uninject -f FILE|-`: the injection undone offline (like `istioctl x uninject`):
// each Pod or pod template whose status annotation says this injector added a sidecar gets back
// exactly what it had, from what that annotation records (src/inject/uninject.ts); the YAML is
// kept byte for byte around it, as `inject` keeps it. Other objects pass through unchanged.
import { checkPodTemplate } from '../admission/schema.ts';
import { STATUS_ANNOTATION } from '../inject/names.ts';
import type { PodLike } from '../inject/pod.ts';
import { uninjectOperations, type UndoOperation } from '../inject/uninject.ts';
import { resolvePointer } from '../validation.ts';
import { CommandError, UsageError } from '../errors.ts';
import { parseFlags } from './args.ts';
import { describe, printManifests, readManifests, type Manifest } from './manifests.ts';
import { podPointer } from './workloads.ts';
import jsonPatch from 'fast-json-patch';

export const help = `Usage: thanos-injector uninject -f FILE|- [flags]

Takes out of the manifests in FILE (or stdin with -f -) what the injector added to their pods: the
thanos-sidecar container, its volumes, Prometheus' flags, env and mounts as they were, the pod-level
securityContext fields, the label and the ${STATUS_ANNOTATION} annotation, as that annotation
records them. Prints the result; everything else is kept byte for byte. Pods without the annotation
pass through unchanged; a pod injected by release 0.1.0 (which recorded too little) is refused.

  kubectl get deployment prometheus -o yaml | thanos-injector uninject -f -

Flags:
  -f, --filename FILE     manifest file, or - for stdin (required)
  -h, --help              show this help
`;

/** Uninjects a Pod, a workload's pod template or each item of a List, in place; returns the operations against the object. */
function uninjectObject(object: Manifest, failures: string[], at = ''): UndoOperation[] {
  if (object === null || typeof object !== 'object' || typeof object.kind !== 'string') return [];
  if (object.kind === 'List' && Array.isArray(object.items)) {
    return object.items.flatMap((item, i) => uninjectObject(item as Manifest, failures, `${at}/items/${i}`));
  }
  const pointer = podPointer(object.kind);
  if (pointer === undefined) return [];
  const where = describe(object);
  const template = resolvePointer(object, pointer) as PodLike;
  if (template?.metadata?.annotations?.[STATUS_ANNOTATION] === undefined) return [];
  const problems = checkPodTemplate(`${where} ${pointer === '' ? '' : pointer.slice(1).replaceAll('/', '.')}`.trim())(template);
  const result = problems.length > 0 ? { error: problems.join('; ') } : uninjectOperations(template);
  if ('error' in result) {
    failures.push(`${where}: ${result.error}`);
    return [];
  }
  jsonPatch.applyPatch(template, result.operations, false, true);
  process.stderr.write(`${where}: uninjected\n`);
  return result.operations.map((operation) => ({ ...operation, path: `${at}${pointer}${operation.path}` }));
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, { filename: { type: 'string', short: 'f' } }, 'uninject');
  if (values.help) {
    process.stdout.write(help);
    return 0;
  }
  if (values.filename === undefined) throw new UsageError("uninject needs -f FILE (or -f - for stdin)\nRun 'thanos-injector uninject --help' for usage.");
  const { input, parsed } = await readManifests(values.filename);
  const failures: string[] = [];
  const operations = parsed.map(({ object }) => uninjectObject(object as Manifest, failures));
  if (failures.length > 0) throw new CommandError(failures.join('\n'));
  printManifests(input, parsed, operations);
  return 0;
}
