// The release as users get it (`npm run release` writes release/ first: `npm run test:release`):
// the npm tarball installed into an empty folder and run through npx; the one-file CLI run for
// every command, `serve` answering a review over HTTPS and `check` and `register` against a real
// apiserver, also as `kubectl thanos-injector`; the linux/arm64 one under qemu user-mode emulation
// (--version, inject); the chart package and the image archive carrying the same version; the
// SBOMs against package-lock.json and the image's own files; SHA256SUMS verified by sha256sum, and
// every file's cosign signature by cosign verify-blob.
import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { admissionReview, prometheusPod } from '../support/admission.ts';
import { ensureCosign } from '../cluster/build.ts';
import { ensureArm64Emulation } from '../cluster/images.ts';
import { startE2e } from '../support/e2e.ts';
import { httpsCall } from '../support/http.ts';
import { freePort, waitFor } from '../support/net.ts';

const root = new URL('../..', import.meta.url).pathname;
const release = join(root, 'release');
const { version } = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string };
const VERSION_LINE = `thanos-injector ${version}\n`;
const work = await mkdtemp(join(tmpdir(), 'thanos-injector-release-'));
t.teardown(() => rm(work, { recursive: true, force: true }));

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Ran> {
  return promisify(execFile)(command, args, { cwd: options.cwd ?? work, env: options.env ?? process.env, maxBuffer: 1 << 26, timeout: 300_000 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

const fixture = join(root, 'test/fixtures/inject/seed-deployment.yaml');
const golden = await readFile(`${fixture}.injected`, 'utf8');
const files = await readdir(release);
const named = (pattern: RegExp) => {
  const file = files.find((f) => pattern.test(f));
  if (file === undefined) throw new Error(`release/ has no file matching ${pattern} (run npm run release): ${files.join(', ')}`);
  return join(release, file);
};

/** The files SHA256SUMS covers: all but itself, the signatures and the public key. */
const artifacts = files.filter((f) => f !== 'SHA256SUMS' && f !== 'cosign.pub' && !f.endsWith('.sig'));

void t.test('SHA256SUMS lists every artifact and sha256sum verifies it', async (t) => {
  const sums = await readFile(join(release, 'SHA256SUMS'), 'utf8');
  t.same(sums.trim().split('\n').map((line) => line.split(/\s+/)[1]).sort(), artifacts.sort());
  t.ok(artifacts.some((f) => f.endsWith('.sbom.cdx.json')), `the SBOMs are among them: ${artifacts.join(', ')}`);
  const checked = await run('sha256sum', ['--check', '--strict', 'SHA256SUMS'], { cwd: release });
  t.equal(checked.code, 0, checked.stdout + checked.stderr);
});

void t.test('every file is signed with cosign; the public key verifies each, and a changed byte fails', async (t) => {
  const cosign = await ensureCosign();
  const verify = (file: string, signature = `${file}.sig`) =>
    run(cosign, ['verify-blob', '--key', join(release, 'cosign.pub'), '--signature', signature, '--insecure-ignore-tlog=true', file], { cwd: release });
  for (const file of [...artifacts, 'SHA256SUMS']) {
    const verified = await verify(file);
    t.equal(verified.code, 0, `cosign verify-blob ${file}: ${(verified.stdout + verified.stderr).trim().split('\n').at(-1) ?? ''}`);
  }
  t.same(files.filter((f) => f.endsWith('.sig')).sort(), [...artifacts, 'SHA256SUMS'].map((f) => `${f}.sig`).sort(), 'no other signature');
  // SHA256SUMS with one byte changed: what an attacker swapping an artifact would have to change.
  const sums = await readFile(join(release, 'SHA256SUMS'));
  const changed = join(work, 'SHA256SUMS');
  sums[0] = sums[0] === 0x30 ? 0x31 : 0x30;
  await writeFile(changed, sums);
  const refused = await verify(changed, join(release, 'SHA256SUMS.sig'));
  t.not(refused.code, 0, `a changed byte fails verification: ${(refused.stdout + refused.stderr).trim().split('\n').at(-1) ?? ''}`);
  t.match(refused.stderr, /invalid signature|verification failed|error/i);
});

/** The production packages of package-lock.json as name@version (every entry npm ci --omit=dev installs). */
async function lockedProduction(): Promise<Set<string>> {
  const lock = JSON.parse(await readFile(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string; dev?: boolean }> };
  return new Set(Object.entries(lock.packages).filter(([where, entry]) => where !== '' && entry.dev !== true).map(([where, entry]) => `${where.split('node_modules/').at(-1)}@${entry.version}`));
}

interface CycloneDx {
  bomFormat: string;
  specVersion: string;
  metadata: { component: { type: string; name: string; version: string } };
  components: { type: string; name: string; group?: string; version?: string; purl?: string; hashes?: { alg: string; content: string }[] }[];
}
const sbomOf = async (pattern: RegExp) => JSON.parse(await readFile(named(pattern), 'utf8')) as CycloneDx;
const npmIds = (sbom: CycloneDx) => new Set(sbom.components.filter((c) => c.purl?.startsWith('pkg:npm/')).map((c) => `${c.group ? `${c.group}/` : ''}${c.name}@${c.version ?? ''}`));

void t.test('the npm package\'s SBOM lists every production dependency at its locked version, and nothing else', async (t) => {
  const sbom = await sbomOf(new RegExp(`^thanos-sidecar-injector-${version.replaceAll('.', '\\.')}\\.sbom\\.cdx\\.json$`));
  t.match(sbom, { bomFormat: 'CycloneDX', specVersion: '1.5', metadata: { component: { name: 'thanos-sidecar-injector', version } } });
  const locked = await lockedProduction();
  t.same([...npmIds(sbom)].sort(), [...locked].sort(), `${locked.size} packages, as package-lock.json has them`);
  t.ok(locked.has('form-data@4.0.6') || [...locked].some((id) => id.startsWith('@kubernetes/client-node@')), 'including the client\'s own dependencies');
  t.ok(sbom.components.every((c) => c.hashes?.[0]?.alg === 'SHA-512' && /^[0-9a-f]{128}$/.test(c.hashes[0].content)), 'each with the SHA-512 npm verified it by');
});

void t.test('the npm package: only what runs, installed into an empty folder, run with npx', async (t) => {
  const tarball = named(new RegExp(`^thanos-sidecar-injector-${version.replaceAll('.', '\\.')}\\.tgz$`));
  const listed = (await run('tar', ['-tzf', tarball])).stdout.trim().split('\n');
  t.ok(listed.includes('package/dist/main.js') && listed.includes('package/LICENSE') && listed.includes('package/README.md'), 'dist, LICENSE and README');
  t.same(listed.filter((f) => /\.map$|\/src\/|\/test\//.test(f)), [], 'no source maps, sources or tests');
  const folder = join(work, 'npm');
  const installed = await run('npm', ['install', '--prefix', folder, '--no-audit', '--no-fund', tarball]);
  t.equal(installed.code, 0, `npm install of the tarball: ${installed.stderr.slice(-2000)}`);
  const npx = (args: string[]) => run('npx', ['--no-install', 'thanos-sidecar-injector', ...args], { cwd: folder });
  t.equal((await npx(['--version'])).stdout, VERSION_LINE);
  const injected = await npx(['inject', '-f', fixture, '--kube-version', '1.33']);
  t.equal(injected.stdout, golden, 'inject prints the golden output');
  // `check` loads the Kubernetes client and the CEL evaluator: both must be installed with the package.
  const check = await npx(['check', '--kubeconfig', join(work, 'none')]);
  t.match(check.stderr, /kubeconfig/i, `check reaches its kubeconfig: ${check.stderr}`);
  t.notMatch(check.stderr, /Cannot find (module|package)|ERR_MODULE_NOT_FOUND/);
});

const binaryDir = join(work, 'bin');

void t.test('the one-file CLI: inject, certs and serve on their own, as thanos-injector and as a kubectl plugin', async (t) => {
  const archive = named(new RegExp(`^thanos-injector-${version.replaceAll('.', '\\.')}-linux-x64\\.tar\\.gz$`));
  await run('mkdir', ['-p', binaryDir]);
  t.equal((await run('tar', ['-xzf', archive, '-C', binaryDir])).code, 0);
  const binary = join(binaryDir, 'thanos-injector');
  t.equal((await run(binary, ['--version'])).stdout, VERSION_LINE);
  t.equal((await run(binary, ['inject', '-f', fixture, '--kube-version', '1.33'])).stdout, golden, 'inject prints the golden output');
  t.equal((await run(join(binaryDir, 'kubectl-thanos_injector'), ['--version'])).stdout, VERSION_LINE, 'kubectl-thanos_injector is the same program');

  const certs = join(work, 'certs');
  t.equal((await run(binary, ['certs', '--out', certs])).code, 0);
  const verified = await run('openssl', ['verify', '-CAfile', join(certs, 'ca.crt'), join(certs, 'tls.crt')]);
  t.equal(verified.code, 0, `openssl verify: ${verified.stdout}${verified.stderr}`);

  const [port, healthPort] = [await freePort(), await freePort()];
  const serve = spawn(binary, ['serve', '--address', '127.0.0.1', '--port', String(port), '--health-port', String(healthPort), '--cert-dir', certs], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  serve.stdout.on('data', (chunk: Buffer) => (log += chunk.toString()));
  serve.stderr.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => serve.on('exit', resolve));
  t.teardown(() => void serve.kill('SIGKILL'));
  const ca = await readFile(join(certs, 'ca.crt'), 'utf8');
  const body = JSON.stringify(admissionReview(prometheusPod()));
  const answer = await waitFor('the binary\'s webhook to answer', () => httpsCall({ port, ca, method: 'POST', path: '/mutate', headers: { 'content-type': 'application/json' }, body }).catch(() => undefined), 30_000, 200);
  const response = (answer.json as { response?: { allowed?: boolean; patch?: string } }).response;
  if (response?.allowed !== true) t.comment(log);
  t.equal(response?.allowed, true, 'the review is allowed');
  t.match(Buffer.from(response?.patch ?? '', 'base64').toString(), /thanos-sidecar/, 'the answer adds the sidecar');
  serve.kill('SIGTERM');
  t.equal(await exited, 0, 'SIGTERM: a clean exit');
});

void t.test('the one-file CLI for linux/arm64: an arm64 executable that runs, under user-mode emulation, as the x64 one does', async (t) => {
  const archive = named(new RegExp(`^thanos-injector-${version.replaceAll('.', '\\.')}-linux-arm64\\.tar\\.gz$`));
  const dir = join(work, 'arm64');
  await run('mkdir', ['-p', dir]);
  t.equal((await run('tar', ['-xzf', archive, '-C', dir])).code, 0);
  const binary = join(dir, 'thanos-injector');
  const header = (await readFile(binary)).subarray(0, 20);
  t.equal(header.readUInt16LE(18), 0xb7, 'an ELF executable for AArch64 (e_machine 183)');
  const { qemu, sysroot } = ensureArm64Emulation();
  const arm64 = (file: string, args: string[]) => run(qemu, ['-L', sysroot, file, ...args]);
  t.equal((await arm64(binary, ['--version'])).stdout, VERSION_LINE);
  t.equal((await arm64(binary, ['inject', '-f', fixture, '--kube-version', '1.33'])).stdout, golden, 'inject prints the golden output');
  t.equal((await arm64(join(dir, 'kubectl-thanos_injector'), ['--version'])).stdout, VERSION_LINE, 'kubectl-thanos_injector is the same program');
  const direct = await run(binary, ['--version']);
  t.not(direct.code, 0, 'and it is no x64 program: this machine cannot run it without the emulator');
});

void t.test('the one-file CLI against a real apiserver: kubectl thanos-injector check and register', async (t) => {
  const { cluster } = await startE2e(t, 'thanos-injector-release-');
  const kubectlDir = dirname(cluster.bin.kubectl);
  const env = { ...process.env, KUBECONFIG: cluster.kubeconfig, PATH: `${binaryDir}:${kubectlDir}:${process.env.PATH ?? ''}` };
  t.equal((await run('kubectl', ['thanos-injector', '--version'], { env })).stdout, VERSION_LINE, 'kubectl finds the plugin');
  const check = await run('kubectl', ['thanos-injector', 'check'], { env });
  t.equal(check.code, 1, 'check fails: nothing is installed');
  if (!/no configuration named thanos-sidecar-injector/.test(check.stdout)) t.comment(check.stdout + check.stderr);
  t.match(check.stdout, /webhook configuration +fail +no configuration named thanos-sidecar-injector/, 'check asked the apiserver and says what is missing');
  const register = await run('kubectl', ['thanos-injector', 'register', '--query-namespace', 'default'], { env });
  if (register.code !== 0) t.comment(register.stderr);
  t.equal(register.code, 0, 'register ran against the apiserver');
  const configMap = JSON.parse(await cluster.kubectlOk(['-n', 'default', 'get', 'configmap', 'thanos-query-endpoints', '-o', 'json'])) as { data?: Record<string, string> };
  t.ok(configMap.data && 'endpoints.yaml' in configMap.data, 'and wrote the ConfigMap Thanos Query reads');
});

void t.test('the chart package: version and appVersion are the release\'s', async (t) => {
  const chart = named(new RegExp(`^thanos-sidecar-injector-${version.replaceAll('.', '\\.')}\\.chart\\.tgz$`));
  const meta = parse((await run('tar', ['-xzOf', chart, 'thanos-sidecar-injector/Chart.yaml'])).stdout) as { version: string; appVersion: string };
  t.same([meta.version, meta.appVersion], [version, version]);
});

interface ImageConfig { architecture: string; config: { Entrypoint: string[]; Cmd?: string[]; User: string; Env?: string[] } }

void t.test('the image archive: a multi-arch OCI index (linux/amd64, linux/arm64) whose injector is the release\'s version on each, its entrypoint run on each', async (t) => {
  const archive = named(new RegExp(`^thanos-sidecar-injector-${version.replaceAll('.', '\\.')}\\.oci\\.tar$`));
  const dir = join(work, 'oci');
  await run('mkdir', ['-p', dir]);
  t.equal((await run('tar', ['-xf', archive, '-C', dir])).code, 0, 'the OCI archive unpacks');
  const blob = (digest: string) => join(dir, 'blobs', ...digest.split(':'));
  const json = async <T>(digest: string) => JSON.parse(await readFile(blob(digest), 'utf8')) as T;
  const top = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { mediaType: string; digest: string; annotations?: Record<string, string> }[] };
  t.equal(top.manifests[0]?.annotations?.['org.opencontainers.image.ref.name'], `thanos-sidecar-injector:${version}`, 'tagged with the version');
  t.equal(top.manifests[0]?.mediaType, 'application/vnd.oci.image.index.v1+json', 'an image index');
  const index = await json<{ manifests: { digest: string; platform?: { os: string; architecture: string } }[] }>(top.manifests[0]!.digest);
  t.same(index.manifests.map((m) => `${m.platform?.os}/${m.platform?.architecture}`).sort(), ['linux/amd64', 'linux/arm64'], 'one image for each platform');
  const images: Record<string, { config: ImageConfig; layers: string[] }> = {};
  for (const entry of index.manifests) {
    const manifest = await json<{ config: { digest: string }; layers: { digest: string }[] }>(entry.digest);
    images[entry.platform!.architecture] = { config: await json<ImageConfig>(manifest.config.digest), layers: manifest.layers.map((l) => l.digest) };
  }
  const { qemu } = ensureArm64Emulation();
  for (const [arch, image] of Object.entries(images)) {
    t.equal(image.config.architecture, arch, `${arch}: the image's config says ${arch}`);
    t.match(image.config.config.Entrypoint, ['node', /.*/], `${arch}: the Dockerfile's entrypoint`);
    // The image's own files, its layers in order, run as the runtime would: chrooted into them, as
    // its user, with its environment; arm64 through the emulator (static, copied in).
    const rootfs = join(work, `rootfs-${arch}`);
    await run('mkdir', ['-p', rootfs]);
    for (const layer of image.layers) t.equal((await run('tar', ['-xzf', blob(layer), '-C', rootfs])).code, 0, `${arch}: layer ${layer.slice(7, 19)} unpacked`);
    t.ok(existsSync(join(rootfs, 'app/dist/main.js')) && !existsSync(join(rootfs, 'app/node_modules')), `${arch}: /app/dist is the bundle, and there is no node_modules`);
    await run('cp', [fixture, join(rootfs, 'tmp/fixture.yaml')]);
    const emulator = arch === 'arm64' ? ['/.qemu-aarch64-static'] : [];
    if (arch === 'arm64') await run('cp', [qemu, join(rootfs, '.qemu-aarch64-static')]);
    // Exactly the image's environment (env -i: not even the test runner's NODE_OPTIONS).
    const env = [...(image.config.config.Env ?? []), 'HOME=/tmp'];
    const [command, ...flags] = image.config.config.Entrypoint;
    const PATH = env.find((e) => e.startsWith('PATH='))?.slice('PATH='.length) ?? '';
    const binary = PATH.split(':').map((d) => `${d}/${command}`).find((p) => existsSync(join(rootfs, p)));
    const entrypoint = (args: string[]) => run('env', ['-i', ...env, 'chroot', `--userspec=${image.config.config.User}`, rootfs, ...emulator, binary ?? command!, ...flags, ...args]);
    const versionRan = await entrypoint(['--version']);
    if (versionRan.code !== 0) t.comment(versionRan.stderr);
    t.equal(versionRan.stdout, VERSION_LINE, `${arch}: the entrypoint prints the version`);
    t.equal((await entrypoint(['inject', '-f', '/tmp/fixture.yaml', '--kube-version', '1.33'])).stdout, golden, `${arch}: and the golden inject output`);
  }

  // The image's SBOM against what the image holds: every npm package whose code is in its bundle
  // (/app/dist/packages.json, from esbuild's metafile), and its base.
  const packagesIn = async (arch: string) => new Set(JSON.parse(await readFile(join(work, `rootfs-${arch}`, 'app/dist/packages.json'), 'utf8')) as string[]);
  const inImage = await packagesIn('amd64');
  const rootfs = join(work, 'rootfs-amd64');
  t.same([...await packagesIn('arm64')].sort(), [...inImage].sort(), 'the arm64 image holds the same packages');
  t.ok(['fastify', 'yaml', '@kubernetes/client-node'].every((name) => [...inImage].some((id) => id.startsWith(`${name}@`))), `the bundle holds the packages the code imports (${inImage.size})`);
  const sbom = await sbomOf(new RegExp(`^thanos-sidecar-injector-${version.replaceAll('.', '\\.')}\\.oci\\.sbom\\.cdx\\.json$`));
  t.match(sbom.metadata.component, { type: 'container', name: 'thanos-sidecar-injector', version });
  const listed = npmIds(sbom);
  t.same([...inImage].filter((id) => !listed.has(id)), [], `every package in the image's bundle (${inImage.size}) is in its SBOM`);
  const locked = await lockedProduction();
  t.same([...inImage].filter((id) => !locked.has(id)), [], 'each at the version the lock gives, a production dependency');
  t.same([...listed].filter((id) => !inImage.has(id) && !id.startsWith('npm@')), [], 'and the SBOM lists no other npm package (but npm, of the base)');
  const node = (await run(join(rootfs, 'usr/local/bin/node'), ['--version'])).stdout.trim().slice(1);
  t.ok(sbom.components.some((c) => c.name === 'node' && c.version === node), `its Node release, ${node}`);
  t.ok(sbom.components.some((c) => c.purl?.startsWith('pkg:deb/debian/libc6@')), 'the C library the amd64 base copies, by its Debian package');
  t.ok(sbom.components.some((c) => c.purl?.startsWith('pkg:deb/debian/libc6-arm64-cross@')), 'and the arm64 one\'s');
  t.ok(sbom.components.some((c) => /^pkg:deb\/debian\/busybox-static@.*arch=arm64$/.test(c.purl ?? '')), 'the arm64 busybox, by its Debian package');
  // As the README tells users to load it before pushing it to their registry.
  const storage = ['--storage-driver', 'vfs', '--root', join(work, 'buildah'), '--runroot', join(work, 'buildah-run')];
  t.equal((await run('buildah', [...storage, 'pull', '--quiet', `oci-archive:${archive}`])).code, 0, 'buildah pull oci-archive:');
  const loaded = await run('buildah', [...storage, 'images', '--format', '{{.Name}}:{{.Tag}}']);
  t.match(loaded.stdout, `localhost/thanos-sidecar-injector:${version}`, 'named as the README says');
  await run('buildah', [...storage, 'rmi', '--all']);
});
