/**
 * A real Kubernetes node for the runtime tests: containerd (Debian's package) with runc and the CNI
 * bridge plugin, the kubelet, kube-scheduler and kube-proxy (built from the control plane's
 * k8s.io/kubernetes release, see build.ts), joined to a control plane started with
 * startCluster({ node: { ip: NODE_IP } }).
 *
 * It runs only inside the namespaces of netns.ts (refused elsewhere): the bridge, the pod network,
 * kube-proxy's iptables rules, the overlay and tmpfs mounts and every process live and die with
 * them. What outlives them is cleaned here: the kubelet's cgroups, under a parent of the run's own
 * (cleanNodeLeftovers, at stop, after the namespaces end and before every start).
 *
 * Facts behind each setting: shared/reference/node-facts.md.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { exec, RUN_ENV, startProc, stopProcs, tail, waitFor, type Cluster, type ExecResult, type Proc } from './cluster.ts';

export const NODE_NAME = 'tsi-node';
/** The node's address: the pod bridge's own address (the pods' gateway), inside the namespaces. */
export const NODE_IP = '10.88.0.1';
const POD_CIDR = '10.88.0.0/16';
const BRIDGE = 'tsi0';
const CLUSTER_DOMAIN = 'cluster.local';
const CGROUP_ROOT = '/sys/fs/cgroup';

export interface StartNodeOptions {
  /** kubelet, kube-scheduler, kube-proxy, and CoreDNS (the cluster DNS, on the node's address). */
  bin: { kubelet: string; kubeScheduler: string; kubeProxy: string; coredns: string };
  /** docker-archive tars to import into containerd before the kubelet starts (the pause image among them). */
  images: string[];
  /** The sandbox image's reference (as imported). */
  pauseImage: string;
  readyTimeoutMs?: number;
  log?: (msg: string) => void;
}

export interface TestNode {
  name: string;
  ip: string;
  /** containerd's socket (for ctr). */
  containerdSocket: string;
  /** `ctr -n k8s.io --address <socket> ARGS`. */
  ctr(args: string[]): Promise<ExecResult>;
  /**
   * Lets containerd pull from `host` (`127.0.0.1:PORT`, as image references name it) over plain
   * HTTP: writes `<host>/hosts.toml` with `server = "http://<host>"` in the folder of the node's
   * registry `config_path`, which containerd reads at each pull (so it may come after the start).
   * Returns the file's path.
   */
  plainHttpRegistry(host: string): string;
  /** The last lines of a component's log (containerd, kubelet, kube-scheduler, kube-proxy). */
  logTail(component: string, lines?: number): string;
  /** Deletes every pod through the kubelet, then stops kube-proxy, kube-scheduler, kubelet, containerd. */
  stop(): Promise<void>;
}

/**
 * The cgroup a node makes its own under, in every hierarchy (the kubelet's cgroupRoot): the name
 * of its run (RUN_ENV, `tsi-<pid>` of netns.ts' outer process), so that nodes of two runs at once
 * (the lanes of node-suite.ts) never take each other's pods for orphans.
 */
const RUN_NAME = /^tsi-(\d+)$/;

function cgroupParent(): string {
  const parent = process.env[RUN_ENV];
  if (parent === undefined || !RUN_NAME.test(parent)) throw new Error(`${RUN_ENV} is not set: run the node inside test/cluster/netns.ts`);
  return parent;
}

function hierarchies(): string[] {
  try {
    return fs.readdirSync(CGROUP_ROOT).map((h) => path.join(CGROUP_ROOT, h)).filter((h) => fs.statSync(h).isDirectory());
  } catch {
    return [];
  }
}

/** Removes a cgroup and everything below it, deepest first; false when some still hold processes. */
function removeCgroup(top: string): boolean {
  if (!fs.existsSync(top)) return true;
  const dirs: string[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) walk(path.join(dir, entry.name));
    dirs.push(dir);
  };
  try {
    walk(top);
  } catch {
    return true;
  }
  let removed = true;
  for (const dir of dirs) {
    try {
      fs.rmdirSync(dir);
    } catch (error) {
      // ENOENT: already gone; EBUSY: still has processes (a live node, or one ending now)
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') removed = false;
    }
  }
  return removed;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * Removes the cgroups of run `parent` in each hierarchy (rmdir removes only empty ones: a live
 * node's stay); true when they are gone. Outside the namespaces (where the runs' processes are
 * seen), also those of runs whose process is gone.
 */
export function cleanNodeLeftovers(parent: string): boolean {
  const outside = process.env.THANOS_INJECTOR_NETNS !== '1';
  let clean = true;
  for (const hierarchy of hierarchies()) {
    for (const entry of fs.readdirSync(hierarchy)) {
      const pid = Number(RUN_NAME.exec(entry)?.[1]);
      if (entry === parent) clean = removeCgroup(path.join(hierarchy, entry)) && clean;
      else if (outside && pid && !alive(pid)) removeCgroup(path.join(hierarchy, entry));
    }
  }
  return clean;
}

/** The run's parent cgroup in each hierarchy, which the kubelet wants to exist. */
function makeCgroupParent(parent: string): void {
  for (const hierarchy of hierarchies()) fs.mkdirSync(path.join(hierarchy, parent), { recursive: true });
}

/**
 * Unmounts what the kubelet and containerd left mounted under `dir` (volumes, sandbox network
 * namespaces, shm), deepest first, so the folder can be removed. Only in this run's own mount
 * namespace (netns.ts): the machine's mounts are not seen here.
 */
function unmountUnder(dir: string): void {
  const prefix = `${path.resolve(dir)}/`;
  const mounts = fs
    .readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => (line.split(' ')[1] ?? '').replace(/\\040/g, ' '))
    .filter((mountPoint) => mountPoint.startsWith(prefix))
    .sort((a, b) => b.length - a.length);
  for (const mountPoint of mounts) spawnSync('umount', ['--lazy', mountPoint], { stdio: 'ignore' });
}

function sh(script: string): void {
  const result = spawnSync('sh', ['-ec', script], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`node network: \`${script}\` failed: ${result.stderr.trim()}`);
}

function kubeconfig(server: string, user: string, ca: string, cert: string, key: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    `clusters: [{name: test, cluster: {server: "${server}", certificate-authority: "${ca}"}}]`,
    `users: [{name: "${user}", user: {client-certificate: "${cert}", client-key: "${key}"}}]`,
    `contexts: [{name: test, context: {cluster: test, user: "${user}"}}]`,
    'current-context: test',
    '',
  ].join('\n');
}

function containerdConfig(root: string, state: string, socket: string, cniConf: string, pauseImage: string, registryHosts: string): string {
  return `version = 2
root = "${root}"
state = "${state}"
[grpc]
  address = "${socket}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${pauseImage}"
  # The machine lacks CAP_SYS_RESOURCE: without this every sandbox fails to start.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${cniConf}"
  # Per registry host, a folder with a hosts.toml (TestNode.plainHttpRegistry); none by default.
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "${registryHosts}"
`;
}

function cniConfig(): string {
  return JSON.stringify(
    {
      cniVersion: '0.4.0',
      name: 'tsi-pods',
      plugins: [
        {
          type: 'bridge',
          bridge: BRIDGE,
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: { type: 'host-local', ranges: [[{ subnet: POD_CIDR, gateway: NODE_IP }]], routes: [{ dst: '0.0.0.0/0' }] },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    },
    null,
    2,
  );
}

/** CoreDNS for the cluster domain only (nothing is forwarded: there is no route out), reading the API. */
function corefile(kubeconfigPath: string): string {
  return `${CLUSTER_DOMAIN}:53 in-addr.arpa:53 {
    bind ${NODE_IP}
    errors
    ready 127.0.0.1:8181
    kubernetes ${CLUSTER_DOMAIN} in-addr.arpa {
        kubeconfig ${kubeconfigPath}
        pods insecure
        ttl 5
    }
    cache 5
}
`;
}

function kubeletConfig(o: { ca: string; dnsIp: string; resolvConf: string; cgroupParent: string }): string {
  return `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: "${o.ca}" }
authorization: { mode: Webhook }
cgroupDriver: cgroupfs
cgroupRoot: /${o.cgroupParent}
failSwapOn: false
failCgroupV1: false
# The kubelet must not touch the machine's iptables (it would add KUBE-FIREWALL chains).
makeIPTablesUtilChains: false
readOnlyPort: 0
port: 10250
healthzBindAddress: 127.0.0.1
healthzPort: 10248
clusterDomain: ${CLUSTER_DOMAIN}
clusterDNS: ["${o.dnsIp}"]
resolvConf: "${o.resolvConf}"
# Imported images cannot be pulled again: never collect them, evict only when truly full.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: { "memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%", "nodefs.inodesFree": "1%" }
serializeImagePulls: false
syncFrequency: 5s
fileCheckFrequency: 5s
nodeStatusUpdateFrequency: 5s
containerRuntimeEndpoint: ""
`;
}

function kubeProxyConfig(kubeconfigPath: string): string {
  return `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: { kubeconfig: "${kubeconfigPath}" }
mode: iptables
clusterCIDR: ${POD_CIDR}
hostnameOverride: ${NODE_NAME}
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# conntrack limits are machine-wide: leave them alone.
conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s }
`;
}

/** Starts the node and waits until it is Ready and a scheduler runs. */
export async function startNode(cluster: Cluster, o: StartNodeOptions): Promise<TestNode> {
  if (process.env.THANOS_INJECTOR_NETNS !== '1') {
    throw new Error('the test node runs only inside the namespaces of test/cluster/netns.ts (node test/cluster/netns.ts CMD ...)');
  }
  if (cluster.nodeIp !== NODE_IP) throw new Error(`start the control plane with startCluster({ node: { ip: '${NODE_IP}' } })`);
  const log = o.log ?? (() => undefined);
  const timeout = o.readyTimeoutMs ?? 90_000;
  const parent = cgroupParent();
  const dir = path.join(cluster.dir, 'node');
  const logDir = path.join(dir, 'logs');
  for (const sub of ['containerd-root', 'containerd-state', 'cni', 'kubelet', 'logs', 'certs', 'registry-hosts']) fs.mkdirSync(path.join(dir, sub), { recursive: true });
  const registryHosts = path.join(dir, 'registry-hosts');
  const logOf = (component: string) => path.join(logDir, `${component}.log`);
  const procs: Proc[] = [];
  const socket = path.join(dir, 'containerd-state', 'containerd.sock');
  const ctr = (args: string[]) => exec('ctr', ['--address', socket, '--namespace', 'k8s.io', ...args], undefined, { timeoutMs: 300_000 });

  const stop = async () => {
    // Pods first, through the kubelet: it unmounts their volumes and removes their sandboxes.
    const kubelet = procs.find((p) => p.name === 'kubelet');
    if (kubelet && !kubelet.done) {
      await cluster.kubectl(['delete', 'pods', '--all', '--all-namespaces', '--grace-period=1', '--wait=true', '--timeout=60s'], undefined, { timeoutMs: 70_000 });
    }
    for (const name of ['kube-proxy', 'kube-scheduler', 'kubelet', 'coredns']) await stopProcs(procs.filter((p) => p.name === name), log);
    // Whatever is left of the sandboxes, then containerd.
    const containerd = procs.find((p) => p.name === 'containerd');
    if (containerd && !containerd.done) {
      const listed = await ctr(['tasks', 'list', '-q']);
      for (const id of listed.stdout.split('\n').filter(Boolean)) await ctr(['tasks', 'kill', '-s', 'SIGKILL', id]);
    }
    await stopProcs(procs.filter((p) => p.name === 'containerd'), log);
    unmountUnder(dir);
    // The next node in these namespaces (the next test file) starts from a clean network.
    spawnSync('ip', ['link', 'del', BRIDGE], { stdio: 'ignore' });
    cleanNodeLeftovers(parent);
  };

  try {
    // The kubelet's cgroups live outside the namespaces, under the run's own parent: a node left
    // running by this run would hold them (one node at a time in a run).
    if (!cleanNodeLeftovers(parent)) throw new Error(`a node of this run still holds cgroups under ${parent}: stop it first`);
    makeCgroupParent(parent);
    // The pods' bridge, with the node's address on it; forwarding within this namespace only.
    // (A node started before in the same namespaces, by another test file, leaves none: see stop().)
    sh(`ip link add ${BRIDGE} type bridge && ip addr add ${NODE_IP}/16 dev ${BRIDGE} && ip link set ${BRIDGE} up`);
    sh('echo 1 > /proc/sys/net/ipv4/ip_forward && echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || true');

    // containerd
    const t0 = Date.now();
    const cniConf = path.join(dir, 'cni');
    fs.writeFileSync(path.join(cniConf, '10-tsi-pods.conflist'), cniConfig());
    const containerdToml = path.join(dir, 'containerd.toml');
    fs.writeFileSync(containerdToml, containerdConfig(path.join(dir, 'containerd-root'), path.join(dir, 'containerd-state'), socket, cniConf, o.pauseImage, registryHosts));
    const containerd = startProc('containerd', 'containerd', ['--config', containerdToml], logOf('containerd'));
    procs.push(containerd);
    await waitFor('containerd to answer on its socket', timeout, procs, containerd, async () => (await ctr(['version'])).code === 0);
    for (const image of o.images) {
      const imported = await ctr(['images', 'import', image]);
      if (imported.code !== 0) throw new Error(`ctr images import ${image} failed: ${imported.stderr.trim()}`);
    }
    log(`containerd ready, ${o.images.length} image(s) imported in ${Date.now() - t0} ms`);

    // The cluster DNS, on the node's address (the pods' nameserver).
    const corefilePath = path.join(dir, 'Corefile');
    fs.writeFileSync(corefilePath, corefile(cluster.kubeconfig));
    const coredns = startProc('coredns', o.bin.coredns, ['-conf', corefilePath], logOf('coredns'));
    procs.push(coredns);
    await waitFor('CoreDNS ready', timeout, procs, coredns, async () => (await fetch('http://127.0.0.1:8181/ready', { signal: AbortSignal.timeout(2000) })).status === 200);

    // kubelet, as system:node:<name> (the Node authorizer accepts that certificate without bootstrap)
    const t1 = Date.now();
    const kubeletCert = await cluster.issueCert('kubelet', { commonName: `system:node:${NODE_NAME}`, organizations: ['system:nodes'], usage: 'client' });
    const kubeletKubeconfig = path.join(dir, 'kubelet.kubeconfig');
    fs.writeFileSync(kubeletKubeconfig, kubeconfig(cluster.server, `system:node:${NODE_NAME}`, cluster.certs.ca, kubeletCert.cert, kubeletCert.key), { mode: 0o600 });
    const resolvConf = path.join(dir, 'resolv.conf');
    fs.writeFileSync(resolvConf, `nameserver ${NODE_IP}\n`);
    const kubeletYaml = path.join(dir, 'kubelet.yaml');
    fs.writeFileSync(kubeletYaml, kubeletConfig({ ca: cluster.certs.ca, resolvConf, dnsIp: NODE_IP, cgroupParent: parent }).replace('containerRuntimeEndpoint: ""', `containerRuntimeEndpoint: "unix://${socket}"`));
    const kubelet = startProc(
      'kubelet',
      o.bin.kubelet,
      [
        `--config=${kubeletYaml}`,
        `--kubeconfig=${kubeletKubeconfig}`,
        `--root-dir=${path.join(dir, 'kubelet')}`,
        `--cert-dir=${path.join(dir, 'certs')}`,
        `--hostname-override=${NODE_NAME}`,
        `--node-ip=${NODE_IP}`,
        '--v=1',
      ],
      logOf('kubelet'),
    );
    procs.push(kubelet);
    await waitFor(`node ${NODE_NAME} Ready`, timeout, procs, kubelet, async () => {
      const r = await cluster.kubectl(['get', 'node', NODE_NAME, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}']);
      return r.code === 0 && r.stdout.trim() === 'True';
    });
    log(`kubelet: node ${NODE_NAME} Ready in ${Date.now() - t1} ms`);

    // kube-scheduler and kube-proxy
    const schedulerCert = await cluster.issueCert('kube-scheduler', { commonName: 'system:kube-scheduler', usage: 'client' });
    const schedulerKubeconfig = path.join(dir, 'kube-scheduler.kubeconfig');
    fs.writeFileSync(schedulerKubeconfig, kubeconfig(cluster.server, 'system:kube-scheduler', cluster.certs.ca, schedulerCert.cert, schedulerCert.key), { mode: 0o600 });
    const scheduler = startProc('kube-scheduler', o.bin.kubeScheduler, [`--kubeconfig=${schedulerKubeconfig}`, '--leader-elect=false', '--secure-port=0', '--profiling=false'], logOf('kube-scheduler'));
    procs.push(scheduler);
    const proxyCert = await cluster.issueCert('kube-proxy', { commonName: 'system:kube-proxy', usage: 'client' });
    const proxyKubeconfig = path.join(dir, 'kube-proxy.kubeconfig');
    fs.writeFileSync(proxyKubeconfig, kubeconfig(cluster.server, 'system:kube-proxy', cluster.certs.ca, proxyCert.cert, proxyCert.key), { mode: 0o600 });
    const proxyYaml = path.join(dir, 'kube-proxy.yaml');
    fs.writeFileSync(proxyYaml, kubeProxyConfig(proxyKubeconfig));
    const proxy = startProc('kube-proxy', o.bin.kubeProxy, [`--config=${proxyYaml}`], logOf('kube-proxy'));
    procs.push(proxy);
    await waitFor('kube-proxy /healthz', timeout, procs, proxy, async () => (await fetch('http://127.0.0.1:10256/healthz', { signal: AbortSignal.timeout(2000) })).status === 200);
    log('kube-scheduler and kube-proxy started');

    return {
      name: NODE_NAME,
      ip: NODE_IP,
      containerdSocket: socket,
      ctr,
      plainHttpRegistry: (host) => {
        if (!/^[\w.-]+:\d+$/.test(host)) throw new Error(`plainHttpRegistry: want host:port, got ${host}`);
        const file = path.join(registryHosts, host, 'hosts.toml');
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, `# ${host} serves plain HTTP (no TLS).\nserver = "http://${host}"\n`);
        return file;
      },
      logTail: (component, lines = 40) => tail(logOf(component), lines),
      stop,
    };
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
}
