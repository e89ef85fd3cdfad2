// What the server tests share (test/server): a review POSTed as the apiserver does, and pods from
// the fixtures; re-exported from this folder: raw HTTPS/HTTP calls, AdmissionReview envelopes, the
// Prometheus pod, metric values and free ports (the spawned `serve` process is in serve.ts).
// Not a test file itself (tap runs *.test.ts only).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { Json } from './admission.ts';
import { httpsCall, type Answer } from './http.ts';
export { freePort, waitFor } from './net.ts';
export { admissionReview, prometheusPod, type Json, type ReviewOptions } from './admission.ts';
export { httpGet, httpsCall, partialRequest, servedFingerprint, type Answer } from './http.ts';
export { metricValue } from './metrics.ts';

export const root = new URL('../..', import.meta.url).pathname;
const fixtures = join(root, 'test/fixtures/inject');

/** POST a JSON value (or a raw string) to /mutate as the apiserver would. */
export function postReview(port: number, ca: string, body: unknown, path = '/mutate?timeout=10s'): Promise<Answer> {
  return httpsCall({
    port,
    ca,
    path,
    headers: { 'content-type': 'application/json', accept: 'application/json, */*' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** The first Pod (or pod template, as a Pod) in a fixture file. */
export function fixturePod(name: string): Json {
  const docs = parseAllDocuments(readFileSync(join(fixtures, name), 'utf8')).map((d) => d.toJS() as Json);
  for (const doc of docs) {
    const metadata = (doc.metadata ?? {}) as Json;
    if (doc.kind === 'Pod') return doc;
    const spec = doc.spec as Json | undefined;
    const template = spec?.template as Json | undefined;
    if (template !== undefined) {
      const meta = { ...((template.metadata ?? {}) as Json), name: `${String(metadata.name)}-abc12`, namespace: metadata.namespace };
      return { apiVersion: 'v1', kind: 'Pod', ...template, metadata: meta };
    }
  }
  throw new Error(`no pod in ${name}`);
}
