/**
 * Container images for the test node, built here without a registry: real builds with buildah
 * (Debian's package; vfs storage and chroot isolation, which work inside this machine's
 * container) from the Containerfiles below, exported as docker-archive tars that the node's
 * containerd imports. Each carries the tag users write (quay.io/prometheus/prometheus:v3.16.0,
 * quay.io/thanos/thanos:v0.42.5), so pods use them as they would anywhere, with
 * imagePullPolicy IfNotPresent.
 *
 * The binaries come from build.ts (Go modules) and Debian's `prometheus` package (the 2.x line);
 * each image holds busybox (Debian's busybox-static) like the official images, for `kubectl exec`.
 *
 * The injector's own image is built from the repository's Dockerfile, unchanged, as a user builds
 * it. Its base (node:24-alpine) cannot be pulled here, so a local base stands in for it and the
 * Dockerfile's NODE_IMAGE build argument points at it: the Node 24 binary running this code with
 * its glibc libraries, npm from the npm registry, busybox for the shell, and the machine's CA
 * bundle (npm's `cafile`: the registry is reached through this machine's TLS proxy).
 *
 * A tar is rebuilt only when its Containerfile, build arguments, base or a file copied into it
 * change; tars and buildah's storage are cached beside the tools (build.ts toolsDir()).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { toolsDir, type NodeToolPaths } from './build.ts';
import { exec } from './cluster.ts';

const root = path.resolve(import.meta.dirname, '../..');

export interface ImageSpec {
  /** The reference pods use. */
  ref: string;
  /** The Containerfile. */
  containerfile: string;
  /** Files of the build context: name in the context -> path on this machine. */
  files: Record<string, string>;
  /** `--build-arg`s. */
  buildArgs?: Record<string, string>;
  /** Images built before (their tars) that the Containerfile starts FROM. */
  bases?: Record<string, string>;
}

export interface NodeImages {
  pause: string;
  prometheus3: string;
  prometheus2: string;
  thanos: string;
  /** The injector, from the repository's Dockerfile (the tag the chart's appVersion gives). */
  injector: string;
  /** ref -> docker-archive tar, for each image the node's pods use. */
  tars: Record<string, string>;
}

const BUSYBOX = '/bin/busybox';
const PAUSE_REF = 'localhost/thanos-injector-test/pause:1';

/** Debian packages the node and its images need, installed with apt-get when a command is missing. */
const PACKAGES: Record<string, string> = {
  containerd: 'containerd',
  runc: 'runc',
  '/usr/lib/cni/bridge': 'containernetworking-plugins',
  buildah: 'buildah',
  [BUSYBOX]: 'busybox-static',
  iptables: 'iptables',
  unshare: 'util-linux',
};

function present(what: string): boolean {
  return what.startsWith('/') ? fs.existsSync(what) : spawnSync('sh', ['-c', `command -v ${what}`], { stdio: 'ignore' }).status === 0;
}

/** Installs the Debian packages of the node (containerd, runc, CNI plugins, buildah, busybox, iptables) that are missing. */
export function ensureNodePackages(log: (m: string) => void = console.error): void {
  ensureDebianPackages(PACKAGES, 'the test node', log);
}

/** Installs, with apt-get, the packages of `packages` (command or path -> package) whose command or path is missing. */
export function ensureDebianPackages(packages: Record<string, string>, purpose: string, log: (m: string) => void = console.error): void {
  const missing = [...new Set(Object.entries(packages).filter(([what]) => !present(what)).map(([, pkg]) => pkg))];
  if (missing.length === 0) return;
  log(`installing Debian packages for ${purpose}: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update', '-qq'], ['install', '-y', '-qq', '--no-install-recommends', ...missing]]) {
    const result = spawnSync('apt-get', args, { stdio: 'inherit', env });
    if (result.status !== 0) throw new Error(`apt-get ${args.join(' ')} failed (exit ${result.status}): ${purpose} needs ${missing.join(', ')}`);
  }
}

/**
 * User-mode emulation of linux/arm64 (no binfmt_misc registration: the binary is run as
 * `qemu-aarch64-static -L <sysroot> <binary>`), with the arm64 C and C++ libraries Node needs.
 */
export const ARM64_EMULATION = { qemu: '/usr/bin/qemu-aarch64-static', sysroot: '/usr/aarch64-linux-gnu' };

export function ensureArm64Emulation(log: (m: string) => void = console.error): typeof ARM64_EMULATION {
  ensureDebianPackages({
    [ARM64_EMULATION.qemu]: 'qemu-user-static',
    [`${ARM64_EMULATION.sysroot}/lib/libc.so.6`]: 'libc6-arm64-cross',
    [`${ARM64_EMULATION.sysroot}/lib/libstdc++.so.6`]: 'libstdc++6-arm64-cross',
  }, 'running linux/arm64 binaries under emulation', log);
  return ARM64_EMULATION;
}

/** The Prometheus 2.x binary from Debian's package (unpacked, never installed as a service), cached. */
function debianPrometheus(cache: string): { binary: string; version: string } {
  const info = spawnSync('apt-cache', ['show', '--no-all-versions', 'prometheus'], { encoding: 'utf8' });
  const version = /^Version: (\d+\.\d+\.\d+)/m.exec(info.stdout)?.[1];
  if (!version) throw new Error(`apt-cache show prometheus: no version (run apt-get update?): ${info.stderr.trim()}`);
  const dir = path.join(cache, `prometheus-debian-${version}`);
  const binary = path.join(dir, 'usr/bin/prometheus');
  if (!fs.existsSync(binary)) {
    const tmp = fs.mkdtempSync(path.join(cache, '.prometheus-debian-'));
    try {
      const download = spawnSync('apt-get', ['download', 'prometheus'], { cwd: tmp, encoding: 'utf8' });
      const deb = fs.readdirSync(tmp).find((f) => f.endsWith('.deb'));
      if (!deb) throw new Error(`apt-get download prometheus failed: ${download.stderr.trim()}`);
      const unpack = spawnSync('dpkg-deb', ['-x', path.join(tmp, deb), path.join(tmp, 'x')], { encoding: 'utf8' });
      if (unpack.status !== 0) throw new Error(`dpkg-deb -x ${deb} failed: ${unpack.stderr.trim()}`);
      fs.rmSync(dir, { recursive: true, force: true });
      fs.renameSync(path.join(tmp, 'x'), dir);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
  return { binary, version };
}

/** The shared libraries a dynamically linked binary loads (ldd), to copy beside it. */
function sharedLibraries(binary: string): string[] {
  const ldd = spawnSync('ldd', [binary], { encoding: 'utf8' });
  if (ldd.status !== 0) return [];
  return [...ldd.stdout.matchAll(/(\/\S+\.so[.\d]*)\s/g)].map((m) => m[1] as string);
}

const busyboxLines = [`COPY busybox /bin/busybox`, `RUN ["/bin/busybox", "--install", "-s", "/bin"]`, 'RUN mkdir -p /tmp /etc && chmod 1777 /tmp && echo "nobody:x:65534:65534:nobody:/home:/bin/false" > /etc/passwd && echo "nobody:x:65534:" > /etc/group'];

/** The images of the node tests: pause, Prometheus 3.x and 2.x, Thanos. */
export function nodeImageSpecs(tools: NodeToolPaths): ImageSpec[] {
  const cache = toolsDir();
  fs.mkdirSync(cache, { recursive: true });
  const debian = debianPrometheus(cache);
  const libs = sharedLibraries(debian.binary);
  const libFiles = Object.fromEntries(libs.map((lib, i) => [`lib${i}`, lib]));
  // As the official Prometheus images: the binary in /bin, a default config, data in /prometheus
  // owned by nobody, that user, and the CMD of the release line (2.x adds the console flags).
  const prometheus = (version: string, copyBinary: string[], cmd: string[]) => [
    'FROM scratch',
    ...busyboxLines,
    ...copyBinary,
    'COPY prometheus.yml /etc/prometheus/prometheus.yml',
    'RUN mkdir -p /prometheus /usr/share/prometheus/console_libraries /usr/share/prometheus/consoles && chown -R 65534:65534 /etc/prometheus /prometheus',
    'USER 65534',
    'EXPOSE 9090',
    'VOLUME ["/prometheus"]',
    'WORKDIR /prometheus',
    'ENTRYPOINT ["/bin/prometheus"]',
    `CMD ${JSON.stringify(cmd)}`,
    `LABEL org.opencontainers.image.version="${version}"`,
  ].join('\n');
  const defaultConfig = writeTemp('prometheus.yml', 'global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ["localhost:9090"]\n');
  const baseCmd = ['--config.file=/etc/prometheus/prometheus.yml', '--storage.tsdb.path=/prometheus'];
  return [
    { ref: PAUSE_REF, containerfile: 'FROM scratch\nCOPY pause /pause\nENTRYPOINT ["/pause"]\n', files: { pause: tools.pause } },
    {
      ref: `quay.io/prometheus/prometheus:v${tools.versions.prometheus}`,
      containerfile: prometheus(tools.versions.prometheus, ['COPY prometheus /bin/prometheus'], baseCmd),
      files: { busybox: BUSYBOX, prometheus: tools.prometheus, 'prometheus.yml': defaultConfig },
    },
    {
      ref: `quay.io/prometheus/prometheus:v${debian.version}`,
      containerfile: prometheus(
        debian.version,
        ['COPY prometheus /bin/prometheus', ...libs.map((lib, i) => `COPY lib${i} ${lib}`)],
        [...baseCmd, '--web.console.libraries=/usr/share/prometheus/console_libraries', '--web.console.templates=/usr/share/prometheus/consoles'],
      ),
      files: { busybox: BUSYBOX, prometheus: debian.binary, 'prometheus.yml': defaultConfig, ...libFiles },
    },
    {
      // As the official image since v0.32: /bin/thanos, uid 1001.
      ref: `quay.io/thanos/thanos:v${tools.versions.thanos}`,
      containerfile: ['FROM scratch', ...busyboxLines, 'COPY thanos /bin/thanos', 'USER 1001', 'ENTRYPOINT ["/bin/thanos"]'].join('\n'),
      files: { busybox: BUSYBOX, thanos: tools.thanos },
    },
  ];
}

/** npm in the local Node base image (node:24-alpine carries npm too); from the npm registry. */
const NPM_VERSION = '11.19.1';
const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/**
 * What the injector image's base holds beside its own files, for the release's SBOM: the Node
 * release, npm's, and the files copied from this machine (busybox, Node's shared libraries, the CA
 * bundle), by their path here.
 */
export function nodeBaseContents(): { node: string; npm: string; files: string[] } {
  return { node: process.versions.node, npm: NPM_VERSION, files: [BUSYBOX, ...sharedLibraries(process.execPath), ...(fs.existsSync(CA_BUNDLE) ? [CA_BUNDLE] : [])] };
}

/** npm's package tarball, fetched once with `npm pack` into the tools cache. */
function npmTarball(cache: string): string {
  const dir = path.join(cache, `npm-${NPM_VERSION}`);
  const tgz = path.join(dir, `npm-${NPM_VERSION}.tgz`);
  if (fs.existsSync(tgz)) return tgz;
  fs.mkdirSync(dir, { recursive: true });
  const packed = spawnSync('npm', ['pack', `npm@${NPM_VERSION}`, '--pack-destination', dir, '--silent'], { encoding: 'utf8' });
  if (packed.status !== 0 || !fs.existsSync(tgz)) throw new Error(`npm pack npm@${NPM_VERSION} failed: ${packed.stderr.trim()}`);
  return tgz;
}

/**
 * The stand-in for node:24-alpine: the Node 24 binary running this code (the release .nvmrc pins)
 * and its glibc libraries, npm, a shell, /tmp, the users `node` and `nobody`.
 */
function nodeBaseImageSpec(cache: string): ImageSpec {
  const [major] = process.versions.node.split('.');
  if (major !== '24') throw new Error(`the injector image's base is built from the Node running the tests: Node 24 is needed (.nvmrc), this is ${process.version}`);
  const libs = sharedLibraries(process.execPath);
  const ca = fs.existsSync(CA_BUNDLE);
  const containerfile = [
    'FROM scratch',
    'COPY busybox /bin/busybox',
    'RUN ["/bin/busybox", "mkdir", "-p", "/usr/bin", "/sbin", "/usr/sbin", "/usr/local/bin", "/usr/local/etc", "/usr/local/lib/node_modules"]',
    'RUN ["/bin/busybox", "--install", "-s"]',
    ...libs.map((lib, i) => `COPY lib${i} ${lib}`),
    'COPY node /usr/local/bin/node',
    ...(ca ? [`COPY ca-certificates.crt ${CA_BUNDLE}`, `RUN echo "cafile=${CA_BUNDLE}" > /usr/local/etc/npmrc`] : []),
    `ADD npm.tgz /usr/local/lib/node_modules/`,
    'RUN mv /usr/local/lib/node_modules/package /usr/local/lib/node_modules/npm'
      + ' && ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx'
      + ' && mkdir -p /tmp /root /home/node && chmod 1777 /tmp && chown 1000:1000 /home/node'
      + ` && printf 'root:x:0:0:root:/root:/bin/sh\\nnode:x:1000:1000:node:/home/node:/bin/sh\\nnobody:x:65534:65534:nobody:/:/bin/false\\n' > /etc/passwd`
      + ` && printf 'root:x:0:\\nnode:x:1000:\\nnobody:x:65534:\\n' > /etc/group`,
    `ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin NODE_VERSION=${process.versions.node}`,
    'CMD ["node"]',
  ].join('\n');
  return {
    ref: `localhost/thanos-injector-test/node:${process.versions.node}`,
    containerfile,
    files: {
      busybox: BUSYBOX,
      node: process.execPath,
      'npm.tgz': npmTarball(cache),
      ...(ca ? { 'ca-certificates.crt': CA_BUNDLE } : {}),
      ...Object.fromEntries(libs.map((lib, i) => [`lib${i}`, lib])),
    },
  };
}

/**
 * The files of the Dockerfile's build context: what `.dockerignore` lets in (it ignores `*` and
 * lists what the build copies with `!`), folders walked.
 */
function dockerContext(root: string): Record<string, string> {
  const lines = fs.readFileSync(path.join(root, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  if (lines[0] !== '*' || lines.slice(1).some((l) => !l.startsWith('!'))) throw new Error('.dockerignore: expected "*" followed by "!path" lines only (the build context is an allow list)');
  const files: Record<string, string> = { '.dockerignore': path.join(root, '.dockerignore') };
  const add = (rel: string) => {
    const full = path.join(root, rel);
    if (fs.statSync(full).isDirectory()) for (const entry of fs.readdirSync(full)) add(path.join(rel, entry));
    else files[rel] = full;
  };
  for (const line of lines.slice(1)) add(line.slice(1).replace(/\/$/, ''));
  return files;
}

/** The injector's image, from the repository's Dockerfile on the local Node base; tagged as the chart's default image. */
function injectorImageSpec(root: string, base: ImageSpec, baseTar: string): ImageSpec {
  const appVersion = /^appVersion:\s*"?([^"\s]+)"?/m.exec(fs.readFileSync(path.join(root, 'charts/thanos-sidecar-injector/Chart.yaml'), 'utf8'))?.[1];
  if (!appVersion) throw new Error('charts/thanos-sidecar-injector/Chart.yaml: no appVersion');
  return {
    ref: `${INJECTOR_REPOSITORY}:${appVersion}`,
    containerfile: fs.readFileSync(path.join(root, 'Dockerfile'), 'utf8'),
    files: dockerContext(root),
    buildArgs: { NODE_IMAGE: base.ref },
    bases: { [base.ref]: baseTar },
  };
}

/** Where the test node finds the injector's image (the chart's `image.repository` in the node tests). */
export const INJECTOR_REPOSITORY = 'localhost/thanos-sidecar-injector';

let tempDir: string | undefined;
function writeTemp(name: string, content: string): string {
  if (tempDir === undefined) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'thanos-injector-images-'));
    process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
    tempDir = dir;
  }
  const file = path.join(tempDir, name);
  fs.writeFileSync(file, content);
  return file;
}

function hashOf(spec: ImageSpec): string {
  const hash = createHash('sha256').update(`${spec.ref}\n${spec.containerfile}\n${JSON.stringify(spec.buildArgs ?? {})}\n`);
  // A base's tar name carries its own hash.
  for (const tar of Object.values(spec.bases ?? {}).sort()) hash.update(`${path.basename(tar)}\n`);
  for (const [name, file] of Object.entries(spec.files).sort()) hash.update(`${name}\n`).update(fs.readFileSync(file));
  return hash.digest('hex').slice(0, 16);
}

/** Builds (or finds cached) the docker-archive tar of one image. */
export async function buildImage(spec: ImageSpec, log: (m: string) => void = console.error): Promise<string> {
  const cache = path.join(toolsDir(), 'images');
  fs.mkdirSync(cache, { recursive: true });
  const tar = path.join(cache, `${spec.ref.replace(/[^a-zA-Z0-9.-]+/g, '_')}-${hashOf(spec)}.tar`);
  if (fs.existsSync(tar)) return tar;
  if (process.env.THANOS_INJECTOR_NETNS === '1') {
    throw new Error(`image ${spec.ref} is not built for its current inputs, and the node's namespaces have no route out: run node test/cluster/prepare-node.ts first (npm run test:node does)`);
  }
  const started = Date.now();
  const context = fs.mkdtempSync(path.join(cache, '.context-'));
  const storage = ['--storage-driver', 'vfs', '--root', path.join(cache, 'buildah'), '--runroot', path.join(context, '.run')];
  try {
    for (const [name, file] of Object.entries(spec.files)) {
      fs.mkdirSync(path.dirname(path.join(context, name)), { recursive: true });
      fs.copyFileSync(file, path.join(context, name));
    }
    fs.writeFileSync(path.join(context, 'Containerfile'), spec.containerfile);
    for (const [ref, baseTar] of Object.entries(spec.bases ?? {})) {
      const loaded = await exec('buildah', [...storage, 'pull', '--quiet', `docker-archive:${baseTar}`], undefined, { timeoutMs: 600_000 });
      if (loaded.code !== 0) throw new Error(`buildah pull docker-archive:${baseTar} (${ref}) failed:\n${loaded.stderr.slice(-3000)}`);
    }
    const buildArgs = Object.entries(spec.buildArgs ?? {}).flatMap(([name, value]) => ['--build-arg', `${name}=${value}`]);
    const built = await exec('buildah', [...storage, 'bud', '--isolation', 'chroot', '--layers=false', ...buildArgs, '-f', path.join(context, 'Containerfile'), '-t', spec.ref, context], undefined, { timeoutMs: 900_000 });
    if (built.code !== 0) throw new Error(`buildah bud ${spec.ref} failed:\n${built.stderr.slice(-3000)}`);
    const partial = `${tar}.partial`;
    const pushed = await exec('buildah', [...storage, 'push', spec.ref, `docker-archive:${partial}:${spec.ref}`], undefined, { timeoutMs: 600_000 });
    if (pushed.code !== 0) throw new Error(`buildah push ${spec.ref} failed:\n${pushed.stderr.slice(-3000)}`);
    // The tar is what is kept; buildah's storage keeps no image (vfs copies every layer in full).
    await exec('buildah', [...storage, 'rmi', spec.ref, ...Object.keys(spec.bases ?? {})]);
    await exec('buildah', [...storage, 'rmi', '--prune']);
    fs.renameSync(partial, tar);
    // Older tars of the same reference.
    const prefix = path.basename(tar).replace(/-[0-9a-f]{16}\.tar$/, '-');
    for (const old of fs.readdirSync(cache)) if (old.startsWith(prefix) && old.endsWith('.tar') && old !== path.basename(tar)) fs.rmSync(path.join(cache, old), { force: true });
    log(`built image ${spec.ref} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return tar;
  } finally {
    fs.rmSync(context, { recursive: true, force: true });
  }
}

/**
 * Copies the image of a docker-archive tar to `destination`, a buildah transport
 * (`docker://HOST/NAME:TAG`, `oci-archive:FILE:NAME:TAG`), through a buildah storage of its own
 * under `work` (vfs), removed after. `pushArgs`: more flags for `buildah push`.
 */
export async function copyImage(tar: string, destination: string, work: string, pushArgs: string[] = []): Promise<void> {
  const dir = fs.mkdtempSync(path.join(work, 'buildah-'));
  const storage = ['--storage-driver', 'vfs', '--root', path.join(dir, 'root'), '--runroot', path.join(dir, 'run')];
  try {
    const pulled = await exec('buildah', [...storage, 'pull', '--quiet', `docker-archive:${tar}`], undefined, { timeoutMs: 600_000 });
    if (pulled.code !== 0) throw new Error(`buildah pull docker-archive:${tar} failed: ${pulled.stderr.slice(-2000)}`);
    const id = pulled.stdout.trim().split('\n').pop() ?? '';
    if (!/^[0-9a-f]{64}$/.test(id)) throw new Error(`buildah pull docker-archive:${tar}: no image ID in ${JSON.stringify(pulled.stdout)}`);
    const pushed = await exec('buildah', [...storage, 'push', '--quiet', ...pushArgs, id, destination], undefined, { timeoutMs: 600_000 });
    if (pushed.code !== 0) throw new Error(`buildah push ${destination} failed: ${pushed.stderr.slice(-2000)}`);
  } finally {
    await exec('buildah', [...storage, 'rmi', '--all', '--force']);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Every image of the node tests, built when missing. */
export async function ensureNodeImages(tools: NodeToolPaths, log: (m: string) => void = console.error): Promise<NodeImages> {
  const specs = nodeImageSpecs(tools);
  const tars: Record<string, string> = {};
  for (const spec of specs) tars[spec.ref] = await buildImage(spec, log);
  const [pause, prometheus3, prometheus2, thanos] = specs.map((s) => s.ref) as [string, string, string, string];
  const injector = await ensureInjectorImage(log);
  tars[injector.ref] = injector.tar;
  return { pause, prometheus3, prometheus2, thanos, injector: injector.ref, tars };
}

/** The injector's image from the repository's Dockerfile (its docker-archive tar), built when missing; also the release's image (scripts/release.ts). */
export async function ensureInjectorImage(log: (m: string) => void = console.error): Promise<{ ref: string; tar: string }> {
  const base = nodeBaseImageSpec(toolsDir());
  const injector = injectorImageSpec(root, base, await buildImage(base, log));
  return { ref: injector.ref, tar: await buildImage(injector, log) };
}
