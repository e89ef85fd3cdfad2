// `npm run release`: every artifact of a release, in release/, with SHA256SUMS. One version for all
// of them, package.json's:
//   thanos-sidecar-injector-V.tgz                 the npm package (`npm pack`: dist, README, LICENSE)
//   thanos-injector-V-linux-x64.tar.gz            the one-file CLI (a Node single executable
//   thanos-injector-V-linux-arm64.tar.gz          application), beside it as kubectl-thanos_injector
//                                                 so that `kubectl thanos-injector ...` runs it; the
//                                                 arm64 one made under qemu user-mode emulation
//   thanos-sidecar-injector-V.chart.tgz           the chart (`helm package`, version and appVersion V)
//   thanos-sidecar-injector-V.oci.tar             the image (the Dockerfile) as an OCI archive
//   thanos-sidecar-injector-V.sbom.cdx.json       the npm package's SBOM (CycloneDX: its production
//                                                 dependencies at their locked versions)
//   thanos-sidecar-injector-V.oci.sbom.cdx.json   the image's SBOM (those its bundle holds, and its Node base)
//   SHA256SUMS                                    of all of the above
//   <each file above>.sig, cosign.pub             cosign signatures of every file (SHA256SUMS too)
//                                                 and the public key that verifies them
// Flags: --skip-image leaves the image out (it needs buildah and the image build of test/cluster);
// --signing-key FILE signs with that cosign private key (its password in COSIGN_PASSWORD, as cosign
// reads it); without it a key pair is generated for this release alone (its public half is
// release/cosign.pub; the private half is deleted). No signature goes to a transparency log:
// verify with `cosign verify-blob --insecure-ignore-tlog=true` (README, "Get it").
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { bundle } from './bundle.ts';
import { bom, imageComponents, lockComponents, npmPurl } from './sbom.ts';

const root = path.resolve(import.meta.dirname, '..');
const out = path.join(root, 'release');
const { version } = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
/** The fuse Node's single executable applications look for (Node's documentation). */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

function run(command: string, args: string[], options: SpawnSyncOptions = {}): string {
  const result = spawnSync(command, args, { cwd: root, encoding: 'utf8', maxBuffer: 1 << 26, ...options });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${result.error?.message ?? `exit ${result.status}`}):\n${String(result.stderr).slice(-3000)}`);
  return String(result.stdout);
}

async function step<T>(what: string, make: () => T | Promise<T>): Promise<T> {
  const started = Date.now();
  const made = await make();
  console.error(`release: ${what} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  return made;
}

/** The npm package, built by its prepack script. */
function npmPackage(): string {
  const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', out])) as { filename: string }[];
  return packed[0]!.filename;
}

/** One CommonJS file holding the CLI and its dependencies, the version written in (a single executable application runs one script, with no package.json beside it). */
async function cliScript(dir: string): Promise<string> {
  const file = path.join(dir, 'thanos-injector.cjs');
  await bundle({ outfile: file });
  return file;
}

/**
 * A Node binary of `arch` with the bundle injected (the release .nvmrc pins): the blob, with its
 * V8 code cache, made by that binary itself (linux-arm64: under user-mode emulation).
 */
async function singleExecutable(dir: string, script: string, arch: 'x64' | 'arm64'): Promise<string> {
  const images = await import('../test/cluster/images.ts');
  const emulator = arch === 'arm64' ? images.ensureArm64Emulation() : undefined;
  const node = arch === 'arm64' ? images.arm64Node() : process.execPath;
  const blob = path.join(dir, 'sea.blob');
  const config = path.join(dir, 'sea-config.json');
  fs.writeFileSync(config, JSON.stringify({ main: script, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true }));
  const seaConfig = ['--experimental-sea-config', config];
  if (emulator === undefined) run(node, seaConfig);
  else run(emulator.qemu, ['-L', emulator.sysroot, node, ...seaConfig]);
  const binary = path.join(dir, 'thanos-injector');
  fs.copyFileSync(node, binary);
  fs.chmodSync(binary, 0o755);
  run(path.join(root, 'node_modules/.bin/postject'), [binary, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE]);
  fs.symlinkSync('thanos-injector', path.join(dir, 'kubectl-thanos_injector'));
  for (const file of ['LICENSE', 'README.md']) fs.copyFileSync(path.join(root, file), path.join(dir, file));
  const archive = `thanos-injector-${version}-linux-${arch}.tar.gz`;
  run('tar', ['-czf', path.join(out, archive), '-C', dir, 'thanos-injector', 'kubectl-thanos_injector', 'LICENSE', 'README.md']);
  return archive;
}

/** helm on the PATH, else the one the tests build (test/cluster/build.ts). */
async function helm(): Promise<string> {
  if (spawnSync('helm', ['version', '--short'], { stdio: 'ignore' }).status === 0) return 'helm';
  const { ensureTools } = await import('../test/cluster/build.ts');
  return (await ensureTools()).helm;
}

async function chart(dir: string): Promise<string> {
  // helm's cache and config folders in the work folder, not the home directory.
  const env = { ...process.env, HELM_CACHE_HOME: path.join(dir, 'helm'), HELM_CONFIG_HOME: path.join(dir, 'helm'), HELM_DATA_HOME: path.join(dir, 'helm') };
  run(await helm(), ['package', path.join(root, 'charts/thanos-sidecar-injector'), '--version', version, '--app-version', version, '--destination', dir], { env });
  const archive = `thanos-sidecar-injector-${version}.chart.tgz`;
  fs.renameSync(path.join(dir, `thanos-sidecar-injector-${version}.tgz`), path.join(out, archive));
  return archive;
}

/** The image the node tests build from the Dockerfile (test/cluster/images.ts), as an OCI archive holding a multi-arch index (linux/amd64, linux/arm64). */
async function image(dir: string): Promise<string> {
  const { copyImage, ensureInjectorImage, IMAGE_ARCHES } = await import('../test/cluster/images.ts');
  const archive = `thanos-sidecar-injector-${version}.oci.tar`;
  const { tars } = await ensureInjectorImage();
  await copyImage(IMAGE_ARCHES.map((arch) => tars[arch]), `oci-archive:${path.join(out, archive)}:thanos-sidecar-injector:${version}`, dir);
  return archive;
}

function writeSbom(name: string, made: object): string {
  fs.writeFileSync(path.join(out, name), `${JSON.stringify(made, null, 2)}\n`);
  return name;
}

/** The npm package's SBOM: its production dependencies, from package-lock.json. */
function packageSbom(): string {
  const subject = { type: 'application' as const, 'bom-ref': npmPurl('thanos-sidecar-injector', version), name: 'thanos-sidecar-injector', version, purl: npmPurl('thanos-sidecar-injector', version), licenses: [{ license: { id: 'Apache-2.0' } }] };
  return writeSbom(`thanos-sidecar-injector-${version}.sbom.cdx.json`, bom(subject, lockComponents(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8'))));
}

/**
 * The image's SBOM: the npm packages whose code its bundle holds (the image's own
 * /app/dist/packages.json, written by scripts/bundle.ts), and its base on each platform.
 */
async function imageSbom(): Promise<string> {
  const { ensureInjectorImage, imageFile, nodeBaseContents, IMAGE_ARCHES } = await import('../test/cluster/images.ts');
  const { tars } = await ensureInjectorImage();
  const listed = imageFile(tars.amd64, 'app/dist/packages.json');
  if (listed === undefined) throw new Error('the image has no /app/dist/packages.json (scripts/bundle.ts writes it)');
  const inBundle = new Set(JSON.parse(listed) as string[]);
  const subject = { type: 'container' as const, 'bom-ref': `image:thanos-sidecar-injector:${version}`, name: 'thanos-sidecar-injector', version, licenses: [{ license: { id: 'Apache-2.0' } }] };
  const npm = lockComponents(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8')).filter((c) => inBundle.has(`${c.group ? `${c.group}/` : ''}${c.name}@${c.version}`));
  return writeSbom(`thanos-sidecar-injector-${version}.oci.sbom.cdx.json`, bom(subject, imageComponents(npm, IMAGE_ARCHES.map(nodeBaseContents))));
}

/**
 * Signs each file in release/ with cosign (`<file>.sig`) and writes the public key as cosign.pub:
 * with the key given, else with a key pair made here for this release alone.
 */
async function sign(files: string[], dir: string, key: string | undefined): Promise<string[]> {
  const { ensureCosign } = await import('../test/cluster/build.ts');
  const cosign = await ensureCosign();
  const env = { ...process.env, COSIGN_PASSWORD: key === undefined ? '' : (process.env.COSIGN_PASSWORD ?? '') };
  let privateKey = key;
  if (privateKey === undefined) {
    run(cosign, ['generate-key-pair', '--output-key-prefix', 'release'], { cwd: dir, env });
    privateKey = path.join(dir, 'release.key');
  }
  fs.writeFileSync(path.join(out, 'cosign.pub'), run(cosign, ['public-key', '--key', privateKey], { env }));
  for (const file of files) {
    run(cosign, ['sign-blob', '--yes', '--key', privateKey, '--tlog-upload=false', '--output-signature', path.join(out, `${file}.sig`), path.join(out, file)], { env });
  }
  return [...files.map((file) => `${file}.sig`), 'cosign.pub'];
}

const sha256 = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

async function main(): Promise<void> {
  let values: { 'skip-image'?: boolean; 'signing-key'?: string };
  try {
    ({ values } = parseArgs({ options: { 'skip-image': { type: 'boolean' }, 'signing-key': { type: 'string' } } }));
  } catch (error) {
    console.error(`release: ${(error as Error).message}; expected --skip-image and --signing-key FILE (a cosign private key), or none`);
    process.exitCode = 2;
    return;
  }
  const key = values['signing-key'];
  if (key !== undefined && !fs.existsSync(key)) {
    console.error(`release: --signing-key ${key}: no such file (a cosign private key, from cosign generate-key-pair)`);
    process.exitCode = 2;
    return;
  }
  const withImage = values['skip-image'] !== true;
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'thanos-injector-release-'));
  try {
    const artifacts = [await step('npm package', npmPackage)];
    const script = await cliScript(work);
    for (const arch of ['x64', 'arm64'] as const) {
      const sea = path.join(work, `sea-${arch}`);
      fs.mkdirSync(sea);
      artifacts.push(await step(`single executable, linux-${arch}`, () => singleExecutable(sea, script, arch)));
    }
    artifacts.push(await step('chart', () => chart(work)));
    if (withImage) artifacts.push(await step('image', () => image(work)));
    artifacts.push(await step('SBOM of the npm package', packageSbom));
    if (withImage) artifacts.push(await step('SBOM of the image', imageSbom));
    fs.writeFileSync(path.join(out, 'SHA256SUMS'), artifacts.map((name) => `${sha256(path.join(out, name))}  ${name}\n`).join(''));
    const signatures = await step('cosign signatures', () => sign([...artifacts, 'SHA256SUMS'], work, key));
    for (const name of [...artifacts, 'SHA256SUMS', ...signatures]) console.log(`${path.relative(root, path.join(out, name))}\t${(fs.statSync(path.join(out, name)).size / 1e6).toFixed(1)} MB`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

try {
  await main();
} catch (error) {
  // A step that failed says which and why (a cosign key whose COSIGN_PASSWORD is wrong, a build that broke): one message, no stack.
  console.error(`release: ${(error as Error).message}`);
  process.exitCode = 1;
}
