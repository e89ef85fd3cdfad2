/**
 * Builds (once) and locates the binaries of the end-to-end test control plane:
 * etcd, kube-apiserver, kube-controller-manager, kubectl and helm, plus promtool
 * (checks the chart's alerting rules), all compiled from Go modules (see ./README.md).
 *
 * Sources of truth for the versions are the go.mod files next to this file:
 *   - ./k8s/go.mod  : `require k8s.io/kubernetes vX.Y.Z` (+ the staging `replace`s at v0.Y.Z)
 *   - ./etcd/go.mod : `require go.etcd.io/etcd/server/v3 vA.B.C`
 *   - ./helm/go.mod : `require helm.sh/helm/v3 vA.B.C`
 *   - ./prometheus/go.mod : `require github.com/prometheus/prometheus v0.3XX.Y` (= Prometheus 3.XX.Y)
 *   - ./registry/go.mod : `require github.com/google/go-containerregistry vA.B.C` (the node's OCI registry, ensureRegistry())
 *
 * Binaries are cached per version in
 *   $THANOS_INJECTOR_TOOLS_DIR                     (if set), else
 *   ${XDG_CACHE_HOME:-~/.cache}/thanos-sidecar-injector/tools
 * under k8s-<version>/, etcd-<version>/, helm-<version>/ and prometheus-<version>/
 * (the Go module version, e.g. prometheus-v0.316.0). Each folder holds a
 * build-info.json with a hash of the module's files (go.mod, go.sum, *.go, the
 * build flags); when it no longer matches, that group is rebuilt.
 *
 * Usage as a script:
 *   node test/cluster/build.ts            # build what is missing, print the paths
 *   node test/cluster/build.ts --force    # rebuild everything
 *   node test/cluster/build.ts --json     # print the paths as JSON only
 *   node test/cluster/build.ts --set-kubernetes v1.35.4   # rewrite ./k8s/go.mod for that release, tidy, build
 *
 * Usage as a module:
 *   import { ensureTools } from './build.ts';
 *   const tools = await ensureTools();   // builds when missing
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface ToolPaths {
  /** Folder holding the per-version sub-folders. */
  dir: string;
  etcd: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  kubectl: string;
  helm: string;
  helmDocs: string;
  promtool: string;
  /**
   * Module versions from the go.mod files; `prometheus` is the Go module version
   * (v0.316.0 is Prometheus 3.16.0, which `promtool --version` reports).
   */
  versions: { kubernetes: string; etcd: string; helm: string; prometheus: string };
}

export interface EnsureToolsOptions {
  /** Rebuild even when cached binaries are present and up to date. */
  force?: boolean;
  /** Which Kubernetes release (default: THANOS_INJECTOR_KUBERNETES, else newest). */
  kubernetes?: KubernetesRelease;
  /** Progress messages (default: console.error). */
  log?: (msg: string) => void;
}

const HERE = import.meta.dirname;

interface Group {
  /** Short name, also the cache folder prefix. */
  name: 'k8s' | 'etcd' | 'helm' | 'helm-docs' | 'prometheus' | 'node' | 'prometheus-server' | 'thanos' | 'minio' | 'pause' | 'coredns' | 'registry' | 'cosign';
  /** Go module folder. */
  moduleDir: string;
  /** Module whose `require` version keys the cache. */
  versionModule: string;
  /** Packages to build (one binary each, named after the last path element). */
  packages: string[];
  ldflags: (version: string) => string[];
  /** Build tags (as the project's own release builds use them). */
  tags?: string[];
  /** Environment for `go` (e.g. GOTOOLCHAIN for a module that asks for a newer Go). */
  env?: Record<string, string>;
  /** Built with `go install <package>@<version>` outside any module of ours (moduleDir unused). */
  installVersion?: string;
}

const K8S: Group = {
  name: 'k8s',
  moduleDir: path.join(HERE, 'k8s'),
  versionModule: 'k8s.io/kubernetes',
  packages: [
    'k8s.io/kubernetes/cmd/kube-apiserver',
    'k8s.io/kubernetes/cmd/kube-controller-manager',
    'k8s.io/kubernetes/cmd/kubectl',
  ],
  ldflags: (v) => {
    // Same variables as kubernetes' hack/lib/version.sh sets.
    const m = /^v(\d+)\.(\d+)\./.exec(v);
    if (!m) throw new Error(`unexpected kubernetes version ${v}`);
    const flags: string[] = [];
    for (const pkg of ['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version']) {
      flags.push(
        `-X ${pkg}.gitVersion=${v}`,
        `-X ${pkg}.gitMajor=${m[1]}`,
        `-X ${pkg}.gitMinor=${m[2]}`,
        `-X ${pkg}.gitTreeState=clean`,
      );
    }
    return flags;
  },
};

/** The test node's kubelet, kube-scheduler and kube-proxy: the control plane's release, own module. */
const NODE: Group = {
  ...K8S,
  name: 'node',
  moduleDir: path.join(HERE, 'node'),
  packages: ['k8s.io/kubernetes/cmd/kubelet', 'k8s.io/kubernetes/cmd/kube-scheduler', 'k8s.io/kubernetes/cmd/kube-proxy'],
};

/**
 * The Kubernetes releases the tests run: `newest` (./k8s, ./node: the newest release the Go module
 * proxy serves), the default; `oldest` (./k8s-oldest, ./node-oldest: the oldest release users still
 * run on the big clouds' extended support), chosen with THANOS_INJECTOR_KUBERNETES=oldest.
 */
export type KubernetesRelease = 'newest' | 'oldest';
export const KUBERNETES_RELEASES: readonly KubernetesRelease[] = ['newest', 'oldest'];

export function kubernetesRelease(env: NodeJS.ProcessEnv = process.env): KubernetesRelease {
  const value = env.THANOS_INJECTOR_KUBERNETES ?? 'newest';
  if (!(KUBERNETES_RELEASES as readonly string[]).includes(value)) {
    throw new Error(`THANOS_INJECTOR_KUBERNETES: "${value}" is not valid; expected ${KUBERNETES_RELEASES.join(' or ')}`);
  }
  return value as KubernetesRelease;
}

/** The control plane's and the node's module groups of a release. */
function kubernetesGroups(release: KubernetesRelease): { control: Group; node: Group } {
  const suffix = release === 'oldest' ? '-oldest' : '';
  return { control: { ...K8S, moduleDir: path.join(HERE, `k8s${suffix}`) }, node: { ...NODE, moduleDir: path.join(HERE, `node${suffix}`) } };
}

const ETCD: Group = {
  name: 'etcd',
  moduleDir: path.join(HERE, 'etcd'),
  versionModule: 'go.etcd.io/etcd/server/v3',
  packages: ['.'],
  ldflags: () => [],
};

const HELM: Group = {
  name: 'helm',
  moduleDir: path.join(HERE, 'helm'),
  versionModule: 'helm.sh/helm/v3',
  packages: ['helm.sh/helm/v3/cmd/helm'],
  ldflags: (v) => {
    // As helm's Makefile: version, and the Kubernetes version used for
    // .Capabilities defaults / lint, derived from the client-go it is built with.
    const clientGo = requiredVersion(path.join(HERE, 'helm', 'go.mod'), 'k8s.io/client-go');
    const m = /^v0\.(\d+)\./.exec(clientGo);
    const flags = [`-X helm.sh/helm/v3/internal/version.version=${v}`, '-X helm.sh/helm/v3/internal/version.gitTreeState=clean'];
    if (m) {
      for (const pkg of ['helm.sh/helm/v3/pkg/lint/rules', 'helm.sh/helm/v3/pkg/chartutil']) {
        flags.push(`-X ${pkg}.k8sVersionMajor=1`, `-X ${pkg}.k8sVersionMinor=${m[1]}`);
      }
    }
    return flags;
  },
};

const PROMETHEUS: Group = {
  name: 'prometheus',
  moduleDir: path.join(HERE, 'prometheus'),
  versionModule: 'github.com/prometheus/prometheus',
  packages: ['github.com/prometheus/prometheus/cmd/promtool'],
  // As Prometheus' .promu.yml, without the revision/branch/user/date ones.
  ldflags: (v) => [`-X github.com/prometheus/common/version.Version=${prometheusRelease(v)}`],
};

/** The Prometheus server of the node's 3.x image: promtool's release, in a module of its own. */
const PROMETHEUS_SERVER: Group = {
  ...PROMETHEUS,
  name: 'prometheus-server',
  moduleDir: path.join(HERE, 'prometheus-server'),
  packages: ['github.com/prometheus/prometheus/cmd/prometheus'],
};

/**
 * Thanos (sidecar, query, tools bucket) for the node's image. As Thanos' .promu.yml: the tags
 * netgo and slicelabels (without slicelabels the sidecar panics in the gRPC codec once Query
 * connects). v0.42.5 asks for Go 1.26.10, which GOTOOLCHAIN fetches through the module proxy.
 */
const THANOS: Group = {
  name: 'thanos',
  moduleDir: path.join(HERE, 'thanos'),
  versionModule: 'github.com/thanos-io/thanos',
  packages: ['github.com/thanos-io/thanos/cmd/thanos'],
  ldflags: (v) => [`-X github.com/prometheus/common/version.Version=${v.replace(/^v/, '')}`],
  tags: ['netgo', 'slicelabels'],
  env: { GOTOOLCHAIN: 'go1.26.10' },
};

/**
 * MinIO (the S3 server the seed uses) for the node's image. Its own go.mod, unchanged: a module
 * of ours around it would have `go mod tidy` raise its dependencies, so it is built with
 * `go install module@version`, pinned at what @latest resolved to.
 */
const MINIO = goInstalled('minio', 'github.com/minio/minio', 'v0.0.0-20260212201848-7aac2a2c5b7c');

/** The chart's README is generated from values.yaml's comments by helm-docs (checked current in test/e2e/chart.test.ts). */
const HELM_DOCS = goInstalled('helm-docs', 'github.com/norwoodj/helm-docs/cmd/helm-docs', 'v1.14.2');

/** A binary built with `go install <module>@<version>`, outside any module of ours. */
function goInstalled(name: Group['name'], module: string, version: string): Group {
  return { name, moduleDir: '', versionModule: module, packages: [module], ldflags: () => [], installVersion: version };
}

/** sigstore's cosign, which signs the release's files (scripts/release.ts) and test:release verifies with. */
const COSIGN = goInstalled('cosign', 'github.com/sigstore/cosign/v2/cmd/cosign', 'v2.6.5');

/** The node's cluster DNS (`*.svc.cluster.local`, SRV records for dnssrv+ endpoints): CoreDNS, its own go.mod untouched. */
const COREDNS = goInstalled('coredns', 'github.com/coredns/coredns', 'v1.14.7');

/**
 * The OCI registry of the node's install scenario (test/node/install.test.ts), which pushes the
 * injector's image and chart to it and installs from it: go-containerregistry's `registry` command
 * (in-memory, plain HTTP, on localhost), pinned in ./registry/go.mod.
 */
const REGISTRY: Group = {
  name: 'registry',
  moduleDir: path.join(HERE, 'registry'),
  versionModule: 'github.com/google/go-containerregistry',
  packages: ['github.com/google/go-containerregistry/cmd/registry'],
  ldflags: () => [],
};

/** The node's sandbox program (./pause/main.go), PID 1 of every pod. */
const PAUSE: Group = {
  name: 'pause',
  moduleDir: path.join(HERE, 'pause'),
  versionModule: '',
  packages: ['.'],
  ldflags: () => [],
};

/** Prometheus 3.x is published as Go module v0.3XX.Y for release 3.XX.Y. */
export function prometheusRelease(moduleVersion: string): string {
  const m = /^v0\.3(\d\d)\.(\d+)$/.exec(moduleVersion);
  if (!m) throw new Error(`unexpected github.com/prometheus/prometheus version ${moduleVersion} (want v0.3XX.Y)`);
  return `3.${Number(m[1])}.${m[2]}`;
}

/** Where the binaries are cached (without the per-version sub-folder). */
export function toolsDir(): string {
  if (process.env.THANOS_INJECTOR_TOOLS_DIR) return path.resolve(process.env.THANOS_INJECTOR_TOOLS_DIR);
  const cache = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(cache, 'thanos-sidecar-injector', 'tools');
}

/** The version of `mod` required (or replaced) in a go.mod file. */
function requiredVersion(goModPath: string, mod: string): string {
  const text = fs.readFileSync(goModPath, 'utf8');
  const esc = mod.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const re = new RegExp(`^\\s*(?:require\\s+)?${esc}\\s+(v\\S+)`, 'm');
  const m = re.exec(text);
  if (!m?.[1]) throw new Error(`${goModPath}: no requirement on ${mod}`);
  return m[1];
}

/** k8s.io/kubernetes vX.Y.Z needs every staging module replaced at v0.Y.Z. */
function checkStagingReplaces(goModPath: string, k8sVersion: string): void {
  const want = k8sVersion.replace(/^v1\./, 'v0.');
  const text = fs.readFileSync(goModPath, 'utf8');
  const bad: string[] = [];
  for (const m of text.matchAll(/^\s*(k8s\.io\/\S+)\s+=>\s+(\S+)\s+(v\S+)\s*(\/\/.*)?$/gm)) {
    // An earlier patch release where the proxy does not serve this one (setKubernetesVersion says so).
    if (m[3] !== want && !(m[4] ?? '').includes(`${want} is not served`)) bad.push(`${m[1]} => ${m[2]} ${m[3]}`);
  }
  if (bad.length > 0) {
    throw new Error(
      `${goModPath}: k8s.io/kubernetes is ${k8sVersion} but these replaces are not at ${want}:\n  ${bad.join('\n  ')}\n` +
        'See test/cluster/README.md, "Changing the Kubernetes version".',
    );
  }
}

function binName(pkg: string, group: Group): string {
  return pkg === '.' ? group.name : pkg.slice(pkg.lastIndexOf('/') + 1);
}

/** Hash of everything that changes the binaries of a group. */
function inputHash(group: Group, version: string, ldflags: string): string {
  const h = createHash('sha256');
  h.update(`${version}\n${ldflags}\n${group.packages.join(' ')}\n`);
  if (group.tags) h.update(`tags ${group.tags.join(',')}\n`);
  if (group.env) h.update(`env ${JSON.stringify(group.env)}\n`);
  for (const f of group.installVersion ? [] : fs.readdirSync(group.moduleDir).sort()) {
    if (f === 'go.mod' || f === 'go.sum' || f.endsWith('.go')) {
      h.update(`${f}\n`);
      h.update(fs.readFileSync(path.join(group.moduleDir, f)));
    }
  }
  return h.digest('hex').slice(0, 16);
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', (err) => reject(new Error(`cannot run ${cmd}: ${err.message}`)));
    child.on('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${cmd} ${args.join(' ')} (in ${cwd}) failed: ${signal ?? `exit code ${code}`}`));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A lock folder, so that two test processes do not build the same group at once. */
async function withLock<T>(lockDir: string, log: (m: string) => void, fn: () => Promise<T>): Promise<T> {
  let announced = false;
  for (;;) {
    try {
      fs.mkdirSync(lockDir);
      fs.writeFileSync(path.join(lockDir, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let owner = 0;
      try {
        owner = Number(fs.readFileSync(path.join(lockDir, 'pid'), 'utf8'));
      } catch {
        // being created or removed right now
      }
      if (owner > 0 && !pidAlive(owner)) {
        fs.rmSync(lockDir, { recursive: true, force: true });
        continue;
      }
      if (!announced) {
        log(`waiting for another build (pid ${owner || '?'}) holding ${lockDir}`);
        announced = true;
      }
      await sleep(1000);
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lockDir, { recursive: true, force: true });
  }
}

function goVersion(env: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn('go', ['env', 'GOVERSION'], { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, ...env } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', () => resolve(''));
    child.on('exit', () => resolve(out.trim()));
  });
}

/**
 * The binaries of `group`, built when missing or out of date; with `offline` set (a reason), an
 * Error saying it instead of a build.
 */
async function ensureGroup(group: Group, root: string, force: boolean, log: (m: string) => void, offline?: string): Promise<Record<string, string>> {
  const goMod = path.join(group.moduleDir, 'go.mod');
  const version = group.installVersion ?? (group.versionModule === '' ? 'local' : requiredVersion(goMod, group.versionModule));
  if (group.name === 'k8s' || group.name === 'node') checkStagingReplaces(goMod, version);
  const ldflags = ['-s', '-w', ...group.ldflags(version)].join(' ');
  const hash = inputHash(group, version, ldflags);
  const outDir = path.join(root, `${group.name}-${version}`);
  const paths: Record<string, string> = {};
  for (const pkg of group.packages) paths[binName(pkg, group)] = path.join(outDir, binName(pkg, group));
  const infoPath = path.join(outDir, 'build-info.json');

  const upToDate = (): boolean => {
    if (force) return false;
    try {
      const info = JSON.parse(fs.readFileSync(infoPath, 'utf8')) as { hash?: string };
      return info.hash === hash && Object.values(paths).every((p) => fs.statSync(p).isFile());
    } catch {
      return false;
    }
  };
  if (upToDate()) return paths;
  if (offline) throw new Error(`${Object.keys(paths).join(', ')} (${group.versionModule} ${version}) is not built for its current inputs, and ${offline}`);

  fs.mkdirSync(root, { recursive: true });
  await withLock(`${outDir}.lock`, log, async () => {
    if (upToDate()) return; // another process built it while we waited
    // Output folders of builds whose test process died (we hold the lock, so no live build uses them).
    for (const entry of fs.readdirSync(root)) {
      if (entry.startsWith(`.${group.name}-build-`)) fs.rmSync(path.join(root, entry), { recursive: true, force: true });
    }
    const go = await goVersion(group.env);
    if (!go) throw new Error('`go` is not on PATH: the test control plane is built from Go modules (Go >= 1.26 needed)');
    const names = Object.keys(paths).join(', ');
    log(`building ${names} (${group.versionModule} ${version}) with ${go} into ${outDir} ...`);
    const started = Date.now();
    const tmp = fs.mkdtempSync(path.join(root, `.${group.name}-build-`));
    try {
      const env = { ...process.env, CGO_ENABLED: '0', ...group.env };
      const tags = group.tags ? ['-tags', group.tags.join(',')] : [];
      const parallel = ['-p', String(Math.max(1, Math.min(os.availableParallelism(), 4)))];
      if (group.installVersion) {
        const args = ['install', ...parallel, '-trimpath', ...tags, '-ldflags', ldflags, ...group.packages.map((p) => `${p}@${group.installVersion}`)];
        await run('go', args, os.tmpdir(), { ...env, GOBIN: tmp, GOFLAGS: '-mod=mod' });
      } else {
        const args = ['build', ...parallel, '-trimpath', '-buildvcs=false', ...tags, '-ldflags', ldflags, '-o', tmp + path.sep, ...group.packages];
        await run('go', args, group.moduleDir, env);
      }
      fs.mkdirSync(outDir, { recursive: true });
      fs.rmSync(infoPath, { force: true });
      for (const [name, dest] of Object.entries(paths)) {
        const src = path.join(tmp, name);
        if (!fs.existsSync(src)) throw new Error(`go build did not produce ${name}`);
        fs.renameSync(src, dest);
      }
      const seconds = Math.round((Date.now() - started) / 100) / 10;
      fs.writeFileSync(
        infoPath,
        JSON.stringify({ hash, version, go, ldflags, packages: group.packages, builtAt: new Date().toISOString(), seconds }, null, 2) + '\n',
      );
      log(`built ${names} in ${seconds} s`);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
  return paths;
}

/**
 * Returns the paths of the six binaries, building (sequentially) whatever is
 * missing or out of date. A cold build of all of them takes ~25-40 min on 2 cores
 * (promtool alone 10-20 min).
 */
export async function ensureTools(opts: EnsureToolsOptions = {}): Promise<ToolPaths> {
  const log = opts.log ?? ((m: string) => console.error(`[test/cluster/build] ${m}`));
  const root = toolsDir();
  const [k8s, etcd, helm, prometheus] = [kubernetesGroups(opts.kubernetes ?? kubernetesRelease()).control, ETCD, HELM, PROMETHEUS];
  const need = (paths: Record<string, string>, name: string): string => {
    const p = paths[name];
    if (!p) throw new Error(`internal: no path for ${name}`);
    return p;
  };
  // etcd, helm and promtool first: they are quicker, so a broken setup shows up early.
  const etcdPaths = await ensureGroup(etcd, root, opts.force ?? false, log);
  const helmPaths = await ensureGroup(helm, root, opts.force ?? false, log);
  const helmDocsPaths = await ensureGroup(HELM_DOCS, root, opts.force ?? false, log);
  const prometheusPaths = await ensureGroup(prometheus, root, opts.force ?? false, log);
  const k8sPaths = await ensureGroup(k8s, root, opts.force ?? false, log);
  return {
    dir: root,
    etcd: need(etcdPaths, 'etcd'),
    kubeApiserver: need(k8sPaths, 'kube-apiserver'),
    kubeControllerManager: need(k8sPaths, 'kube-controller-manager'),
    kubectl: need(k8sPaths, 'kubectl'),
    helm: need(helmPaths, 'helm'),
    helmDocs: need(helmDocsPaths, 'helm-docs'),
    promtool: need(prometheusPaths, 'promtool'),
    versions: {
      kubernetes: requiredVersion(path.join(k8s.moduleDir, 'go.mod'), k8s.versionModule),
      etcd: requiredVersion(path.join(etcd.moduleDir, 'go.mod'), etcd.versionModule),
      helm: requiredVersion(path.join(helm.moduleDir, 'go.mod'), helm.versionModule),
      prometheus: requiredVersion(path.join(prometheus.moduleDir, 'go.mod'), prometheus.versionModule),
    },
  };
}

export interface NodeToolPaths {
  pause: string;
  coredns: string;
  kubelet: string;
  kubeScheduler: string;
  kubeProxy: string;
  /** Prometheus 3.x server (promtool's release). */
  prometheus: string;
  thanos: string;
  minio: string;
  versions: { kubernetes: string; prometheus: string; thanos: string; minio: string };
}

/**
 * The binaries of the test node and its images, built when missing or out of date (cold, on 2
 * cores: kubelet and friends ~2 min with the control plane's build cache warm, Prometheus ~6 min,
 * Thanos and MinIO a few minutes each).
 */
export async function ensureNodeTools(opts: EnsureToolsOptions = {}): Promise<NodeToolPaths> {
  const log = opts.log ?? ((m: string) => console.error(`[test/cluster/build] ${m}`));
  const root = toolsDir();
  const force = opts.force ?? false;
  const built = async (group: Group, name: string): Promise<string> => {
    const paths = await ensureGroup(group, root, force, log);
    const p = paths[name];
    if (!p) throw new Error(`internal: no path for ${name}`);
    return p;
  };
  const node = kubernetesGroups(opts.kubernetes ?? kubernetesRelease()).node;
  const pause = await built(PAUSE, 'pause');
  const minio = await built(MINIO, 'minio');
  const coredns = await built(COREDNS, 'coredns');
  const thanos = await built(THANOS, 'thanos');
  const kubelet = await built(node, 'kubelet');
  const kubeScheduler = await built(node, 'kube-scheduler');
  const kubeProxy = await built(node, 'kube-proxy');
  const prometheus = await built(PROMETHEUS_SERVER, 'prometheus');
  return {
    pause,
    coredns,
    kubelet,
    kubeScheduler,
    kubeProxy,
    prometheus,
    thanos,
    minio,
    versions: {
      kubernetes: requiredVersion(path.join(node.moduleDir, 'go.mod'), node.versionModule),
      prometheus: prometheusRelease(requiredVersion(path.join(PROMETHEUS_SERVER.moduleDir, 'go.mod'), PROMETHEUS_SERVER.versionModule)),
      thanos: requiredVersion(path.join(THANOS.moduleDir, 'go.mod'), THANOS.versionModule).replace(/^v/, ''),
      minio: MINIO.installVersion ?? '',
    },
  };
}

export interface RegistryToolPaths {
  registry: string;
  /** The go-containerregistry module version (./registry/go.mod). */
  version: string;
}

/**
 * The OCI registry of the install scenario, built when missing or out of date (~20 s cold). Inside
 * the node's namespaces (no route out, so no Go module proxy) it is not built but an Error says to
 * run prepare-node.ts first, which builds it for the newest Kubernetes release (the release the
 * install scenario runs on: `test:node:oldest` runs core.test.ts only).
 */
export async function ensureRegistry(opts: EnsureToolsOptions = {}): Promise<RegistryToolPaths> {
  const log = opts.log ?? ((m: string) => console.error(`[test/cluster/build] ${m}`));
  const offline = process.env.THANOS_INJECTOR_NETNS === '1'
    ? "the node's namespaces have no route out: run node test/cluster/prepare-node.ts first (npm run test:node does)"
    : undefined;
  const paths = await ensureGroup(REGISTRY, toolsDir(), opts.force ?? false, log, offline);
  if (!paths.registry) throw new Error('internal: no path for registry');
  return { registry: paths.registry, version: requiredVersion(path.join(REGISTRY.moduleDir, 'go.mod'), REGISTRY.versionModule) };
}

/** cosign, built when missing or out of date (a few minutes cold). */
export async function ensureCosign(opts: EnsureToolsOptions = {}): Promise<string> {
  const log = opts.log ?? ((m: string) => console.error(`[test/cluster/build] ${m}`));
  const paths = await ensureGroup(COSIGN, toolsDir(), opts.force ?? false, log);
  if (!paths.cosign) throw new Error('internal: no path for cosign');
  return paths.cosign;
}

/** `version` of a staging module if the Go module proxy serves it, else the nearest earlier patch it serves (the sample-* ones may be served at none: unused). */
async function servedPatch(module: string, version: string, cwd: string): Promise<string> {
  const [major, minor, patch] = version.slice(1).split('.').map(Number) as [number, number, number];
  for (let p = patch; p >= 0 && p >= patch - 5; p--) {
    const candidate = `v${major}.${minor}.${p}`;
    const ok = await new Promise<boolean>((resolve) => {
      const child = spawn('go', ['mod', 'download', '-json', `${module}@${candidate}`], { cwd, stdio: ['ignore', 'pipe', 'ignore'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.on('error', () => resolve(false));
      child.on('exit', (code) => resolve(code === 0 && !out.includes('"Error"')));
    });
    if (ok) return candidate;
  }
  return version;
}

/**
 * Points a release's two modules (./k8s and ./node, or ./k8s-oldest and ./node-oldest) at another
 * k8s.io/kubernetes release: rewrites each `require` and `replace` block (one line per staging
 * module listed in that release's own go.mod, at v0.Y.Z), then runs `go mod tidy`. The next
 * ensureTools() and ensureNodeTools() build the new binaries.
 */
export async function setKubernetesVersion(version: string, release: KubernetesRelease, log: (m: string) => void = console.error): Promise<void> {
  if (!/^v1\.\d+\.\d+$/.test(version)) throw new Error(`want a release like v1.34.4, got ${version}`);
  const { control, node } = kubernetesGroups(release);
  const info = await new Promise<string>((resolve, reject) => {
    const child = spawn('go', ['mod', 'download', '-json', `k8s.io/kubernetes@${version}`], { cwd: control.moduleDir, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`go mod download k8s.io/kubernetes@${version} failed`))));
  });
  const upstream = fs.readFileSync((JSON.parse(info) as { GoMod: string }).GoMod, 'utf8');
  const block = /^replace \(\n([\s\S]*?)^\)/m.exec(upstream);
  if (!block?.[1]) throw new Error(`k8s.io/kubernetes@${version} go.mod has no replace block`);
  const staging = [...block[1].matchAll(/^\s*(k8s\.io\/\S+)\s+=>\s+\.\/staging\//gm)].map((m) => m[1] ?? '');
  const v0 = version.replace(/^v1\./, 'v0.');
  const lines = await Promise.all(staging.map(async (m) => {
    const served = await servedPatch(m, v0, control.moduleDir);
    return served === v0 ? `\t${m} => ${m} ${v0}\n` : `\t${m} => ${m} ${served} // ${v0} is not served by the Go module proxy\n`;
  }));
  const replaces = `replace (\n${lines.join('')})`;
  // Same GODEBUG defaults as upstream's own builds.
  const godebug = /^godebug .*$/m.exec(upstream);
  for (const moduleDir of [control.moduleDir, node.moduleDir]) {
    const goModPath = path.join(moduleDir, 'go.mod');
    let text = fs.readFileSync(goModPath, 'utf8');
    text = text.replace(/^(\s*(?:require\s+)?k8s\.io\/kubernetes\s+)v\S+/m, `$1${version}`);
    if (!/^replace \(\n[\s\S]*?^\)/m.test(text)) throw new Error(`${goModPath}: no replace block to rewrite`);
    text = text.replace(/^replace \(\n[\s\S]*?^\)/m, replaces);
    if (godebug) text = /^godebug .*$/m.test(text) ? text.replace(/^godebug .*$/m, godebug[0]) : text;
    fs.writeFileSync(goModPath, text);
    log(`${goModPath}: k8s.io/kubernetes ${version}, ${staging.length} staging modules at ${v0}; running go mod tidy`);
    await run('go', ['mod', 'tidy'], moduleDir, process.env);
  }
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === '--set-kubernetes') {
    if (!argv[1]) throw new Error('usage: [THANOS_INJECTOR_KUBERNETES=oldest] node test/cluster/build.ts --set-kubernetes v1.X.Y');
    await setKubernetesVersion(argv[1], kubernetesRelease());
    argv = argv.slice(2);
  }
  const known = new Set(['--force', '--json', '--help', '-h']);
  for (const a of argv) {
    if (!known.has(a)) throw new Error(`unknown argument ${a} (usage: node test/cluster/build.ts [--set-kubernetes v1.X.Y] [--force] [--json])`);
  }
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log('usage: node test/cluster/build.ts [--set-kubernetes v1.X.Y] [--force] [--json]\n\nBuilds etcd, kube-apiserver, kube-controller-manager, kubectl, helm and promtool into ' + toolsDir());
    return;
  }
  const started = Date.now();
  const tools = await ensureTools({ force: argv.includes('--force') });
  if (argv.includes('--json')) {
    console.log(JSON.stringify(tools, null, 2));
    return;
  }
  console.log(
    `Kubernetes ${tools.versions.kubernetes}, etcd ${tools.versions.etcd}, helm ${tools.versions.helm}, ` +
      `Prometheus ${prometheusRelease(tools.versions.prometheus)} (module ${tools.versions.prometheus}) (${Math.round((Date.now() - started) / 1000)} s)`,
  );
  for (const key of ['etcd', 'kubeApiserver', 'kubeControllerManager', 'kubectl', 'helm', 'helmDocs', 'promtool'] as const) {
    console.log(`  ${key.padEnd(22)} ${tools[key]}`);
  }
}

if (import.meta.main) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
