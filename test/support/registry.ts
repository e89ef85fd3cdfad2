// The OCI registry of the node's install scenario (not a test file): go-containerregistry's
// `registry` command (built by test/cluster/build.ts ensureRegistry(), pinned in
// test/cluster/registry/go.mod) on 127.0.0.1 at a port it picks, plain HTTP, content in memory;
// it logs every request ("GET /v2/<name>/blobs/<digest>"), which the tests read to see who
// pulled what. Started for one test file and stopped at its end. Images are pushed to it with
// buildah, charts with `helm push`, as users push theirs.
import { spawn } from 'node:child_process';
import type { Test } from 'tap';
import { waitFor } from './net.ts';

/** The media types of an image manifest, for the registry's content negotiation. */
const MANIFEST_TYPES = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

export interface Manifest {
  /** The manifest's digest (`Docker-Content-Digest`), what a pull by tag resolves to. */
  digest: string;
  mediaType: string;
  /** An image's (absent from an index). */
  config: { digest: string; mediaType: string };
  layers: { digest: string; mediaType: string; size: number }[];
  /** An index's images, one per platform. */
  manifests?: { digest: string; mediaType: string; platform?: { os: string; architecture: string } }[];
}

export class OciRegistry {
  /** `127.0.0.1:PORT`, as image and chart references name the registry. */
  host = '';
  private output = '';
  private readonly child;

  private constructor(binary: string) {
    // `-port 0`: the kernel picks a free port, which the registry logs ("serving on port N").
    this.child = spawn(binary, ['-port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk: Buffer) => (this.output = (this.output + chunk.toString()).slice(-2_000_000));
    this.child.stdout.on('data', keep);
    this.child.stderr.on('data', keep);
  }

  /** Starts the registry, waits until /v2/ answers on 127.0.0.1, and stops it at the end of `t`. */
  static async start(t: Test, binary: string): Promise<OciRegistry> {
    const registry = new OciRegistry(binary);
    t.teardown(() => registry.stop());
    const exited = new Promise<never>((_, reject) => registry.child.once('exit', (code, signal) => reject(new Error(`the registry exited (${signal ?? code}): ${registry.output.slice(-1000)}`))));
    exited.catch(() => undefined);
    const port = await Promise.race([exited, waitFor('the registry\'s port', () => Promise.resolve(/serving on port (\d+)/.exec(registry.output)?.[1]), 30_000, 50)]);
    registry.host = `127.0.0.1:${port}`;
    await Promise.race([exited, waitFor(`the registry answering on http://${registry.host}/v2/`, async () => {
      const response = await fetch(`http://${registry.host}/v2/`, { signal: AbortSignal.timeout(2000) });
      return response.status === 200 ? true : undefined;
    }, 30_000, 100)]);
    return registry;
  }

  /** The registry's log: one line per request, `METHOD /path`. */
  log(): string {
    return this.output;
  }

  /** The requests logged since `from` (a length of log()), as `METHOD /path` strings. */
  requestsSince(from: number): string[] {
    return [...this.output.slice(from).matchAll(/^\S+ \S+ ((?:GET|HEAD|PUT|POST|PATCH|DELETE) \S+)/gm)].map((m) => m[1] as string);
  }

  /** The repositories the registry holds (`/v2/_catalog`). */
  async catalog(): Promise<string[]> {
    const response = await fetch(`http://${this.host}/v2/_catalog`, { signal: AbortSignal.timeout(10_000) });
    if (!response.ok) throw new Error(`GET /v2/_catalog: HTTP ${response.status}`);
    return ((await response.json()) as { repositories: string[] | null }).repositories ?? [];
  }

  /** The manifest `repository:reference` resolves to, with its digest. */
  async manifest(repository: string, reference: string): Promise<Manifest> {
    const response = await fetch(`http://${this.host}/v2/${repository}/manifests/${reference}`, { headers: { accept: MANIFEST_TYPES }, signal: AbortSignal.timeout(10_000) });
    if (!response.ok) throw new Error(`GET /v2/${repository}/manifests/${reference}: HTTP ${response.status} ${await response.text()}`);
    const digest = response.headers.get('docker-content-digest');
    if (!digest) throw new Error(`GET /v2/${repository}/manifests/${reference}: no Docker-Content-Digest`);
    return { ...((await response.json()) as Omit<Manifest, 'digest'>), digest };
  }

  /** Puts the manifest `repository:from` resolves to under the tag `to` too, byte for byte (as a user with push rights could). */
  async tagManifest(repository: string, from: string, to: string): Promise<void> {
    const got = await fetch(`http://${this.host}/v2/${repository}/manifests/${from}`, { headers: { accept: MANIFEST_TYPES }, signal: AbortSignal.timeout(10_000) });
    if (!got.ok) throw new Error(`GET /v2/${repository}/manifests/${from}: HTTP ${got.status} ${await got.text()}`);
    const body = Buffer.from(await got.arrayBuffer());
    const put = await fetch(`http://${this.host}/v2/${repository}/manifests/${to}`, { method: 'PUT', body, headers: { 'content-type': got.headers.get('content-type') ?? '' }, signal: AbortSignal.timeout(10_000) });
    if (!put.ok) throw new Error(`PUT /v2/${repository}/manifests/${to}: HTTP ${put.status} ${await put.text()}`);
  }

  stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    return exited;
  }
}
