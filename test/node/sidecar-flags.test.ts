// Every sidecar flag the injector can write is one the real Thanos sidecar accepts: the sidecar
// arguments of every golden fixture (test/fixtures/inject/*.injected) run with the real binary
// (the version the config defaults to), one run per distinct set of flag names. Paths and addresses
// are pointed at this machine (a temporary TSDB folder, a filesystem bucket, loopback ports); the
// sidecar must start ("starting sidecar") and still run 3 s later. Prometheus is absent: the sidecar
// only waits for it.
import t from 'tap';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ensureNodeTools } from '../cluster/build.ts';
import { exec } from '../cluster/cluster.ts';
import { root } from '../support/node.ts';

t.setTimeout(300_000);

const { thanos } = await ensureNodeTools({ log: (message: string) => t.comment(message) });
const work = await mkdtemp(join(tmpdir(), 'thanos-injector-node-sidecar-flags-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
const objstore = join(work, 'objstore.yml');
await writeFile(objstore, `type: FILESYSTEM\nconfig:\n  directory: ${join(work, 'bucket')}\n`);
const tracing = join(work, 'tracing.yml');
await writeFile(tracing, 'type: OTLP\nconfig:\n  client_type: grpc\n  endpoint: 127.0.0.1:4317\n  insecure: true\n');
const httpClient = join(work, 'http-client.yml');
await writeFile(httpClient, 'tls_config:\n  insecure_skip_verify: true\n');
// For gRPC server TLS: a self-signed certificate that is its own client CA.
const tls = { 'tls.crt': join(work, 'tls.crt'), 'tls.key': join(work, 'tls.key'), 'ca.crt': join(work, 'tls.crt') };
const openssl = await exec('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=thanos-sidecar', '-keyout', tls['tls.key'], '-out', tls['tls.crt']]);
if (openssl.code !== 0) throw new Error(`openssl failed: ${openssl.stderr}`);

interface Container { name: string; args?: string[] }
interface PodSpec { containers?: Container[]; initContainers?: Container[] }
/** The sidecar's args of each document of a fixture (pods, and the pod templates of workloads). */
function sidecarArgs(node: unknown, found: string[][]): string[][] {
  if (Array.isArray(node)) for (const item of node) sidecarArgs(item, found);
  else if (node !== null && typeof node === 'object') {
    const spec = node as PodSpec;
    const sidecar = [...(spec.initContainers ?? []), ...(spec.containers ?? [])].find((c) => c?.name === 'thanos-sidecar');
    if (sidecar?.args) found.push(sidecar.args);
    for (const value of Object.values(node)) sidecarArgs(value, found);
  }
  return found;
}

const fixtures = join(root, 'test/fixtures/inject');
const byFlags = new Map<string, { fixture: string; args: string[] }>();
for (const file of readdirSync(fixtures).filter((f) => f.endsWith('.injected')).sort()) {
  for (const doc of parseAllDocuments(readFileSync(join(fixtures, file), 'utf8'))) {
    for (const args of sidecarArgs(doc.toJS(), [])) {
      const names = args.map((a) => a.split('=')[0]).sort().join(' ');
      if (!byFlags.has(names)) byFlags.set(names, { fixture: file, args });
    }
  }
}

/** The fixture's args with this machine's paths and free loopback ports. */
function localArgs(args: string[], tsdb: string): string[] {
  return args.map((arg) => {
    const [name] = arg.split('=');
    if (name === '--tsdb.path') return `--tsdb.path=${tsdb}`;
    if (name === '--objstore.config-file') return `--objstore.config-file=${objstore}`;
    if (name === '--prometheus.http-client-file') return `--prometheus.http-client-file=${httpClient}`;
    if (name === '--tracing.config-file') return `--tracing.config-file=${tracing}`;
    if (name?.startsWith('--grpc-server-tls-') && name !== '--grpc-server-tls-min-version') {
      return `${name}=${tls[basename(arg.slice(arg.indexOf('=') + 1)) as keyof typeof tls]}`;
    }
    if (name === '--grpc-address' || name === '--http-address') return `${name}=127.0.0.1:0`;
    return arg;
  });
}

for (const { fixture, args } of byFlags.values()) {
  void t.test(`${fixture}: the real sidecar starts with ${args.length - 1} flags`, async (t) => {
    const tsdb = await mkdtemp(join(work, 'tsdb-'));
    const child = spawn(thanos, localArgs(args, tsdb), { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (chunk: Buffer) => (log += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (log += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const early = await Promise.race([exited, new Promise<'running'>((resolve) => setTimeout(() => resolve('running'), 3000))]);
    child.kill('SIGKILL'); // only the start matters; a graceful stop would wait out the gRPC grace period
    await exited;
    t.equal(early, 'running', `still running after 3 s (${args.slice(1).join(' ')})${early === 'running' ? '' : `:\n${log.slice(-1500)}`}`);
    t.match(log, /starting sidecar/, 'it started');
  });
}
