/**
 * A real, throwaway Kubernetes control plane for end-to-end tests: etcd +
 * kube-apiserver + kube-controller-manager on 127.0.0.1 (random free ports), no
 * scheduler and no kubelet, so Pods are created (and go through admission,
 * including mutating webhooks) but stay Pending. Binaries come from
 * ./build.ts (built from Go modules, cached per version). See ./README.md.
 *
 * API
 *
 *   startCluster(opts?: StartClusterOptions): Promise<Cluster>
 *     opts.dir             state dir (default <repo>/.cluster/<random>); must not exist or be empty
 *     opts.tools           binaries (default: await ensureTools(), which builds them when missing)
 *     opts.readyTimeoutMs  how long to wait for etcd, /readyz and the default ServiceAccount (default 90 000)
 *     opts.apiserverArgs / opts.controllerManagerArgs   extra flags (appended, so they win)
 *     opts.log             progress messages (default: none)
 *
 *   interface Cluster {
 *     dir: string                   state dir (certs/, logs/, etcd-data/, kubeconfig, state.json)
 *     kubeconfig: string            admin kubeconfig (user "admin", group system:masters; certs embedded)
 *     server: string                "https://127.0.0.1:<port>"
 *     ports: { etcdClient, etcdPeer, apiserver }
 *     certs: { ca, caKey, ... }     PEM file paths; `ca` is the cluster CA (also signs serving certs, below)
 *     bin: ToolPaths                { etcd, kubeApiserver, kubeControllerManager, kubectl, helm, versions, dir }
 *     pids: { etcd, kubeApiserver, kubeControllerManager }
 *     env: { KUBECONFIG }           merge into a child's env to point kubectl/helm/client libraries at it
 *     serverVersion: string         gitVersion from /version, e.g. "v1.34.4"
 *     kubectl(args, input?, opts?): Promise<ExecResult>   runs the matching kubectl with --kubeconfig
 *     helm(args, input?, opts?): Promise<ExecResult>      runs helm with KUBECONFIG set
 *     kubectlOk / helmOk(args, input?, opts?): Promise<string>   the same, for commands that must
 *                                   succeed: their stdout, or an Error "kubectl ARGS failed (CODE): STDERR"
 *     getJson<T>(args): Promise<T | undefined>   `kubectl ARGS -o json` parsed; undefined when
 *                                   kubectl says NotFound (any other failure throws)
 *     issueCert(name, { dnsNames?, ips?, commonName?, organizations?, usage? }): Promise<{ cert, key, ca }>
 *                                   a cert signed by the cluster CA (e.g. a webhook serving cert; put
 *                                   fs.readFileSync(ca) base64 into caBundle)
 *     exited: Promise<string>       resolves with the name of the first control-plane process that
 *                                   exits (a crash, or stop())
 *     stop(): Promise<void>         SIGTERM all (SIGKILL after 20 s), wait, remove dir; idempotent
 *   }
 *   ExecResult = { code: number, stdout: string, stderr: string }   (code -1: killed on timeout)
 *   ExecOptions = { timeoutMs?: number (default 120 000), env?: Record<string, string> }
 *
 *   exec(cmd, args, input?, opts?): Promise<ExecResult>  run any command (no proxy variables, no KUBECONFIG
 *                                          inherited); e.g. exec(c.bin.kubectl, [...], undefined, { env: c.env })
 *
 *   stopClusterDir(dir): Promise<boolean>  stops the processes recorded in <dir>/state.json (even if
 *                                          started by another process) and removes dir; false if no state
 *   clusterAlive(dir): boolean             whether all processes recorded in <dir>/state.json still run
 *   repoRoot, defaultStateRoot             <repo> and <repo>/.cluster
 *
 * Orphans: the children are started through `setpriv --pdeathsig SIGTERM` when available
 * (so they die with this Node process even when it is SIGKILLed), and a process 'exit'
 * handler SIGKILLs them and removes the state dir if stop() was not called. State dirs
 * left behind by dead Node processes are removed by the next startCluster().
 * (`cli.ts up` keeps a cluster running past its own exit with a detached keeper process.)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as net from 'node:net';
import * as path from 'node:path';
import { ensureTools, type ToolPaths } from './build.ts';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Kill the command after this long (default 120 000 ms); code is then -1. */
  timeoutMs?: number;
  /** Extra environment variables. */
  env?: Record<string, string>;
}

export interface StartClusterOptions {
  dir?: string;
  tools?: ToolPaths;
  readyTimeoutMs?: number;
  apiserverArgs?: string[];
  controllerManagerArgs?: string[];
  log?: (msg: string) => void;
  /**
   * A node will join (test/cluster/node.ts, inside the namespaces of netns.ts): the apiserver
   * listens on every address of the namespace, publishes `ip` as the `kubernetes` Service's
   * endpoint (pods reach it through kube-proxy), dials webhook Services at their pod IPs and
   * reaches the kubelet (logs, exec) with a client certificate.
   */
  node?: { ip: string };
}

export interface CertFiles {
  cert: string;
  key: string;
  ca: string;
}

export interface IssueCertOptions {
  commonName?: string;
  organizations?: string[];
  dnsNames?: string[];
  ips?: string[];
  /** Extended key usage (default 'server'). */
  usage?: 'server' | 'client' | 'both';
}

export interface Cluster {
  dir: string;
  kubeconfig: string;
  server: string;
  ports: { etcdClient: number; etcdPeer: number; apiserver: number };
  certs: {
    ca: string;
    caKey: string;
    apiserver: string;
    apiserverKey: string;
    admin: string;
    adminKey: string;
    serviceAccountKey: string;
    serviceAccountPub: string;
  };
  bin: ToolPaths;
  pids: { etcd: number; kubeApiserver: number; kubeControllerManager: number };
  /** The node's IP when started with `node` (else undefined). */
  nodeIp?: string;
  env: { KUBECONFIG: string };
  serverVersion: string;
  kubectl(args: string[], input?: string, opts?: ExecOptions): Promise<ExecResult>;
  helm(args: string[], input?: string, opts?: ExecOptions): Promise<ExecResult>;
  /** kubectl that must succeed: its stdout; otherwise an Error naming the command, with its stderr. */
  kubectlOk(args: string[], input?: string, opts?: ExecOptions): Promise<string>;
  /** helm that must succeed: its stdout; otherwise an Error naming the command, with its stderr. */
  helmOk(args: string[], input?: string, opts?: ExecOptions): Promise<string>;
  /** `kubectl ARGS -o json`, parsed; undefined when the object is not found (other failures throw). */
  getJson<T>(args: string[]): Promise<T | undefined>;
  issueCert(name: string, opts?: IssueCertOptions): Promise<CertFiles>;
  exited: Promise<string>;
  stop(): Promise<void>;
}

/** What <dir>/state.json records, for `cli.ts down` and stale-dir cleanup. */
export interface ClusterState {
  /** The Node process that started (and reaps) the control-plane processes. */
  ownerPid: number;
  startedAt: string;
  server: string;
  kubeconfig: string;
  ports: Cluster['ports'];
  processes: { name: string; pid: number; bin: string }[];
}

export const repoRoot = path.resolve(import.meta.dirname, '..', '..');
export const defaultStateRoot = path.join(repoRoot, '.cluster');
/**
 * The name of the namespaced run a process is part of (`tsi-<pid>` of netns.ts' outer process):
 * its clusters keep their state in a folder of that name (a run's processes are not seen from
 * another's PID namespace, so it must not judge their state stale), its nodes their cgroups.
 */
export const RUN_ENV = 'THANOS_INJECTOR_RUN';

const SERVICE_CIDR = '10.96.0.0/16';
const SERVICE_IP = '10.96.0.1';
const STOP_TIMEOUT_MS = 20_000;

// ---------------------------------------------------------------- helpers

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Alive and not a zombie. */
function pidAlive(pid: number): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Whether pid runs `bin` (guards against pid reuse when killing recorded pids). */
function pidRuns(pid: number, bin: string): boolean {
  if (!pidAlive(pid)) return false;
  try {
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.includes(bin) || fs.readlinkSync(`/proc/${pid}/exe`) === bin;
  } catch {
    return false;
  }
}

export function tail(file: string, lines = 40): string {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.split('\n').slice(-lines - 1).join('\n');
  } catch {
    return '(no log)';
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/** Environment for the control-plane processes and CLIs: no proxies, no inherited KUBECONFIG. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) {
    if (/^(https?_proxy|all_proxy|no_proxy|kubeconfig)$/i.test(k)) delete env[k];
  }
  env.NO_PROXY = '127.0.0.1,localhost';
  return { ...env, ...extra };
}

export function exec(cmd: string, args: string[], input?: string, opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: childEnv(opts.env), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 120_000);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${cmd}: ${err.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (timedOut) stderr += `\n(killed after ${opts.timeoutMs ?? 120_000} ms)`;
      resolve({ code: timedOut ? -1 : (code ?? -1), stdout, stderr });
    });
    child.stdin.on('error', () => {
      /* the command may exit before reading its input */
    });
    child.stdin.end(input ?? '');
  });
}

/** The stdout of a command that must succeed; otherwise an Error naming it (`what`), with its stderr. */
function stdoutOf(what: string, result: ExecResult): string {
  if (result.code !== 0) throw new Error(`${what} failed (${result.code}): ${result.stderr}`);
  return result.stdout;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  const r = await new Promise<ExecResult>((resolve, reject) => {
    const child = spawn('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', (err) => reject(new Error(`cannot run openssl (needed for the test cluster's certificates): ${err.message}`)));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: out, stderr: '' }));
  });
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')} failed:\n${r.stdout}`);
}

// ---------------------------------------------------------------- certificates

function serial(): string {
  const b = randomBytes(16);
  b.writeUInt8((b.readUInt8(0) & 0x7f) || 1, 0);
  return '0x' + b.toString('hex');
}

async function genKey(dir: string, name: string): Promise<string> {
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`], dir);
  fs.chmodSync(path.join(dir, `${name}.key`), 0o600);
  return path.join(dir, `${name}.key`);
}

function subject(cn: string, orgs: string[] = []): string {
  const esc = (s: string): string => s.replace(/[/\\=]/g, (c) => `\\${c}`);
  return orgs.map((o) => `/O=${esc(o)}`).join('') + `/CN=${esc(cn)}`;
}

async function createCA(dir: string): Promise<{ ca: string; caKey: string }> {
  const caKey = await genKey(dir, 'ca');
  await openssl(
    [
      'req', '-x509', '-new', '-key', 'ca.key', '-sha256', '-days', '3650', '-set_serial', serial(),
      '-subj', subject('thanos-sidecar-injector-test-ca'),
      '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
      '-addext', 'subjectKeyIdentifier=hash',
      '-out', 'ca.crt',
    ],
    dir,
  );
  return { ca: path.join(dir, 'ca.crt'), caKey };
}

async function signCert(dir: string, name: string, o: IssueCertOptions): Promise<CertFiles> {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`bad certificate name ${JSON.stringify(name)}`);
  await genKey(dir, name);
  await openssl(['req', '-new', '-key', `${name}.key`, '-subj', subject(o.commonName ?? name, o.organizations), '-out', `${name}.csr`], dir);
  const san = [...(o.dnsNames ?? []).map((d) => `DNS:${d}`), ...(o.ips ?? []).map((ip) => `IP:${ip}`)];
  const eku = { server: 'serverAuth', client: 'clientAuth', both: 'serverAuth,clientAuth' }[o.usage ?? 'server'];
  const ext = [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    `extendedKeyUsage=${eku}`,
    'subjectKeyIdentifier=hash',
    'authorityKeyIdentifier=keyid',
    ...(san.length > 0 ? [`subjectAltName=${san.join(',')}`] : []),
  ];
  fs.writeFileSync(path.join(dir, `${name}.ext`), ext.join('\n') + '\n');
  await openssl(
    ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', serial(), '-days', '3650', '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.crt`],
    dir,
  );
  fs.rmSync(path.join(dir, `${name}.csr`));
  fs.rmSync(path.join(dir, `${name}.ext`));
  return { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`), ca: path.join(dir, 'ca.crt') };
}

function kubeconfigYaml(server: string, user: string, caFile: string, certFile: string, keyFile: string): string {
  const b64 = (f: string): string => fs.readFileSync(f).toString('base64');
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: e2e',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${b64(caFile)}`,
    'users:',
    `- name: ${user}`,
    '  user:',
    `    client-certificate-data: ${b64(certFile)}`,
    `    client-key-data: ${b64(keyFile)}`,
    'contexts:',
    `- name: ${user}@e2e`,
    '  context:',
    '    cluster: e2e',
    `    user: ${user}`,
    '    namespace: default',
    `current-context: ${user}@e2e`,
    '',
  ].join('\n');
}

// ---------------------------------------------------------------- processes

export interface Proc {
  name: string;
  bin: string;
  pid: number;
  log: string;
  /** Set when this Node process started it (and so reaps it). */
  child?: ChildProcess;
  /** Resolves when the child has exited and been reaped (never, for a process of another parent). */
  exited: Promise<void>;
  /** The child has exited and been reaped. */
  done: boolean;
}

let setprivChecked: boolean | undefined;
function haveSetpriv(): boolean {
  if (setprivChecked === undefined) {
    const r = spawnSync('setpriv', ['--help'], { stdio: 'pipe', encoding: 'utf8' });
    setprivChecked = r.status === 0 && r.stdout.includes('--pdeathsig');
  }
  return setprivChecked;
}

export function startProc(name: string, bin: string, args: string[], logFile: string): Proc {
  const fd = fs.openSync(logFile, 'a');
  let cmd = bin;
  let argv = args;
  if (haveSetpriv()) {
    // Parent-death signal: the child gets SIGTERM when this Node process dies, even by SIGKILL.
    // setpriv execs the binary, so the pid is the component's own.
    cmd = 'setpriv';
    argv = ['--pdeathsig', 'SIGTERM', '--', bin, ...args];
  }
  fs.writeSync(fd, `# ${new Date().toISOString()} ${[bin, ...args].join(' ')}\n`);
  const child = spawn(cmd, argv, { stdio: ['ignore', fd, fd], env: childEnv() });
  fs.closeSync(fd);
  if (child.pid === undefined) throw new Error(`failed to start ${name} (${bin})`);
  const proc: Proc = {
    name,
    bin,
    pid: child.pid,
    log: logFile,
    child,
    done: false,
    exited: new Promise<void>((resolve) => {
      child.on('exit', () => {
        proc.done = true;
        resolve();
      });
      child.on('error', () => {
        proc.done = true;
        resolve();
      });
    }),
  };
  return proc;
}

export async function stopProcs(procs: Proc[], log: (m: string) => void): Promise<void> {
  const stopOne = async (p: Proc): Promise<void> => {
    // Our own children count as running until reaped (so no zombie is left for `pgrep` to see);
    // other processes until they are gone or zombies.
    const running = (): boolean => (p.child ? !p.done : pidAlive(p.pid));
    const waitUntil = async (deadline: number): Promise<void> => {
      while (running() && Date.now() < deadline) await Promise.race([p.exited, sleep(100)]);
    };
    if (!running()) return;
    try {
      process.kill(p.pid, 'SIGTERM');
    } catch {
      /* already exited */
    }
    await waitUntil(Date.now() + STOP_TIMEOUT_MS);
    if (running()) {
      log(`${p.name} (pid ${p.pid}) did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM: SIGKILL`);
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      await waitUntil(Date.now() + 5000);
    }
  };
  // Clients first (controller-manager), then the apiserver, then etcd.
  const order = ['kube-controller-manager', 'kube-apiserver', 'etcd'];
  const sorted = [...procs].sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
  for (const p of sorted) await stopOne(p);
}

// Clusters of this process that stop() has not been called on yet.
const live = new Set<{ procs: Proc[]; dir: string }>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of live) {
      for (const p of c.procs) {
        if (!p.done) {
          try {
            process.kill(p.pid, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
      }
      try {
        fs.rmSync(c.dir, { recursive: true, force: true });
      } catch {
        /* best effort */
      }
    }
  });
}

// ---------------------------------------------------------------- HTTP probes

interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
}

function httpsGet(url: string, tls: TlsFiles, timeoutMs = 5000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      url,
      { ca: fs.readFileSync(tls.ca), cert: fs.readFileSync(tls.cert), key: fs.readFileSync(tls.key), timeout: timeoutMs, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

async function plainGet(url: string, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, body: await res.text() };
}

class StartupError extends Error {
  portInUse: boolean;
  constructor(msg: string, portInUse: boolean) {
    super(msg);
    this.portInUse = portInUse;
  }
}

/** Polls `check` until it returns true; fails early when one of `procs` exits. */
export async function waitFor(what: string, timeoutMs: number, procs: Proc[], watch: Proc, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dead = procs.find((p) => p.done || !pidAlive(p.pid));
    if (dead) {
      const t = tail(dead.log);
      throw new StartupError(
        `${dead.name} exited while waiting for ${what}; last lines of ${dead.log}:\n${t}`,
        /address already in use|bind: /i.test(t),
      );
    }
    let lastErr: string;
    try {
      if (await check()) return;
      lastErr = '';
    } catch (err) {
      lastErr = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) {
      throw new StartupError(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? ` (last error: ${lastErr})` : ''}; last lines of ${watch.log}:\n${tail(watch.log)}`,
        /address already in use/i.test(tail(watch.log, 200)),
      );
    }
    await sleep(250);
  }
}

// ---------------------------------------------------------------- state dirs

function writeState(dir: string, state: ClusterState): void {
  fs.writeFileSync(path.join(dir, 'state.json'), JSON.stringify(state, null, 2) + '\n');
}

function readState(dir: string): ClusterState | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')) as ClusterState;
  } catch {
    return undefined;
  }
}

/** Whether every process recorded in <dir>/state.json is still running. */
export function clusterAlive(dir: string): boolean {
  const st = readState(dir);
  return !!st && st.processes.length > 0 && st.processes.every((p) => pidRuns(p.pid, p.bin));
}

/**
 * Stops the processes recorded in <dir>/state.json (SIGTERM, SIGKILL after 20 s; each pid is
 * checked to still run the recorded binary) and removes dir. Returns false if there was no state.
 */
export async function stopClusterDir(dir: string, log: (m: string) => void = () => undefined): Promise<boolean> {
  const st = readState(dir);
  if (!st) {
    fs.rmSync(dir, { recursive: true, force: true });
    return false;
  }
  const procs: Proc[] = st.processes
    .filter((p) => pidRuns(p.pid, p.bin))
    .map((p) => ({ name: p.name, bin: p.bin, pid: p.pid, log: '', exited: new Promise<void>(() => undefined), done: false }));
  await stopProcs(procs, log);
  fs.rmSync(dir, { recursive: true, force: true });
  return true;
}

/** Removes state dirs under root left behind by Node processes that died without stop(). */
function cleanStale(root: string): void {
  let entries: string[];
  try {
    entries = fs.readdirSync(root);
  } catch {
    return;
  }
  for (const e of entries) {
    const dir = path.join(root, e);
    const st = readState(dir);
    if (!st || pidAlive(st.ownerPid)) continue;
    if (st.processes.some((p) => pidRuns(p.pid, p.bin))) continue; // still running somehow: leave it
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- startCluster

export async function startCluster(opts: StartClusterOptions = {}): Promise<Cluster> {
  const log = opts.log ?? (() => undefined);
  const timeout = opts.readyTimeoutMs ?? 90_000;
  const tools = opts.tools ?? (await ensureTools({ log }));

  let dir: string;
  if (opts.dir) {
    dir = path.resolve(opts.dir);
    fs.mkdirSync(dir, { recursive: true });
    if (fs.readdirSync(dir).length > 0) throw new Error(`state dir ${dir} is not empty`);
  } else {
    const root = path.join(defaultStateRoot, process.env[RUN_ENV] ?? '');
    fs.mkdirSync(root, { recursive: true });
    cleanStale(root);
    dir = fs.mkdtempSync(path.join(root, 'c-'));
  }
  const certDir = path.join(dir, 'certs');
  const logDir = path.join(dir, 'logs');
  fs.mkdirSync(certDir, { mode: 0o700 });
  fs.mkdirSync(logDir);

  const procs: Proc[] = [];
  const entry = { procs, dir };
  installExitHook();
  live.add(entry);
  const fail = async (err: unknown): Promise<never> => {
    await stopProcs(procs, log);
    live.delete(entry);
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  };

  try {
    // Certificates.
    const t0 = Date.now();
    const { ca, caKey } = await createCA(certDir);
    const [apiserverCert, admin, kcm, saKey] = await Promise.all([
      signCert(certDir, 'apiserver', {
        commonName: 'kube-apiserver',
        dnsNames: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local'],
        ips: ['127.0.0.1', SERVICE_IP, ...(opts.node ? [opts.node.ip] : [])],
        usage: 'server',
      }),
      signCert(certDir, 'admin', { commonName: 'admin', organizations: ['system:masters'], usage: 'client' }),
      signCert(certDir, 'kube-controller-manager', { commonName: 'system:kube-controller-manager', usage: 'client' }),
      genKey(certDir, 'sa'),
    ]);
    const kubeletClient = opts.node ? await signCert(certDir, 'apiserver-kubelet-client', { commonName: 'kube-apiserver-kubelet-client', organizations: ['system:masters'], usage: 'client' }) : undefined;
    const nodeArgs = opts.node && kubeletClient
      ? [
          '--bind-address=0.0.0.0',
          `--advertise-address=${opts.node.ip}`,
          '--endpoint-reconciler-type=lease',
          '--enable-aggregator-routing=true',
          // No DNS for the node's name: reach the kubelet (logs, exec, proxy) at its address.
          '--kubelet-preferred-address-types=InternalIP',
          `--kubelet-client-certificate=${kubeletClient.cert}`,
          `--kubelet-client-key=${kubeletClient.key}`,
        ]
      : [];
    const saPub = path.join(certDir, 'sa.pub');
    await openssl(['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], certDir);
    log(`certificates ready in ${Date.now() - t0} ms`);
    const adminTls: TlsFiles = { ca, cert: admin.cert, key: admin.key };

    let attempt = 0;
    for (;;) {
      attempt++;
      const [etcdClient = 0, etcdPeer = 0, apiserverPort = 0] = await freePorts(3);
      const ports = { etcdClient, etcdPeer, apiserver: apiserverPort };
      const server = `https://127.0.0.1:${apiserverPort}`;
      const kubeconfig = path.join(dir, 'kubeconfig');
      const kcmKubeconfig = path.join(dir, 'kube-controller-manager.kubeconfig');
      fs.writeFileSync(kubeconfig, kubeconfigYaml(server, 'admin', ca, admin.cert, admin.key), { mode: 0o600 });
      fs.writeFileSync(kcmKubeconfig, kubeconfigYaml(server, 'system:kube-controller-manager', ca, kcm.cert, kcm.key), { mode: 0o600 });
      const state = (): ClusterState => ({
        ownerPid: process.pid,
        startedAt: new Date().toISOString(),
        server,
        kubeconfig,
        ports,
        processes: procs.map((p) => ({ name: p.name, pid: p.pid, bin: p.bin })),
      });

      try {
        // etcd
        const etcdData = path.join(dir, 'etcd-data');
        fs.rmSync(etcdData, { recursive: true, force: true });
        const t1 = Date.now();
        const etcd = startProc(
          'etcd',
          tools.etcd,
          [
            `--data-dir=${etcdData}`,
            `--listen-client-url=http://127.0.0.1:${etcdClient}`,
            `--listen-peer-url=http://127.0.0.1:${etcdPeer}`,
            '--unsafe-no-fsync',
          ],
          path.join(logDir, 'etcd.log'),
        );
        procs.push(etcd);
        writeState(dir, state());
        await waitFor('etcd /health', timeout, procs, etcd, async () => {
          const r = await plainGet(`http://127.0.0.1:${etcdClient}/health`);
          return r.status === 200 && r.body.includes('"health":"true"');
        });
        log(`etcd ready on 127.0.0.1:${etcdClient} in ${Date.now() - t1} ms`);

        // kube-apiserver
        const t2 = Date.now();
        const apiserver = startProc(
          'kube-apiserver',
          tools.kubeApiserver,
          [
            `--etcd-servers=http://127.0.0.1:${etcdClient}`,
            '--bind-address=127.0.0.1',
            '--advertise-address=127.0.0.1',
            `--secure-port=${apiserverPort}`,
            `--tls-cert-file=${apiserverCert.cert}`,
            `--tls-private-key-file=${apiserverCert.key}`,
            `--client-ca-file=${ca}`,
            '--service-account-issuer=https://kubernetes.default.svc',
            `--service-account-key-file=${saPub}`,
            `--service-account-signing-key-file=${saKey}`,
            `--service-cluster-ip-range=${SERVICE_CIDR}`,
            '--authorization-mode=Node,RBAC',
            '--allow-privileged=true',
            '--profiling=false',
            // The apiserver cannot publish 127.0.0.1 as the endpoint of the `kubernetes` Service
            // (loopback addresses are invalid endpoints), so don't try.
            '--endpoint-reconciler-type=none',
            ...nodeArgs,
            ...(opts.apiserverArgs ?? []),
          ],
          path.join(logDir, 'kube-apiserver.log'),
        );
        procs.push(apiserver);
        writeState(dir, state());
        await waitFor('kube-apiserver /readyz', timeout, procs, apiserver, async () => {
          const r = await httpsGet(`${server}/readyz`, adminTls);
          return r.status === 200;
        });
        log(`kube-apiserver ready on ${server} in ${Date.now() - t2} ms`);

        // kube-controller-manager
        const t3 = Date.now();
        const controllerManager = startProc(
          'kube-controller-manager',
          tools.kubeControllerManager,
          [
            `--kubeconfig=${kcmKubeconfig}`,
            '--secure-port=0',
            '--leader-elect=false',
            '--controllers=*',
            '--use-service-account-credentials=true',
            `--service-account-private-key-file=${saKey}`,
            `--root-ca-file=${ca}`,
            `--cluster-signing-cert-file=${ca}`,
            `--cluster-signing-key-file=${caKey}`,
            '--profiling=false',
            ...(opts.controllerManagerArgs ?? []),
          ],
          path.join(logDir, 'kube-controller-manager.log'),
        );
        procs.push(controllerManager);
        writeState(dir, state());
        await waitFor('the default ServiceAccount in namespace default', timeout, procs, controllerManager, async () => {
          const r = await httpsGet(`${server}/api/v1/namespaces/default/serviceaccounts/default`, adminTls);
          return r.status === 200;
        });
        log(`kube-controller-manager ready in ${Date.now() - t3} ms`);

        const version = await httpsGet(`${server}/version`, adminTls);
        const serverVersion = (JSON.parse(version.body) as { gitVersion: string }).gitVersion;

        let stopped: Promise<void> | undefined;
        // Discovery cached with the cluster: two runs at once may have an apiserver on the same port.
        const kubectl: Cluster['kubectl'] = (args, input, o) => exec(tools.kubectl, [`--kubeconfig=${kubeconfig}`, `--cache-dir=${path.join(dir, 'kube-cache')}`, ...args], input, o);
        const helm: Cluster['helm'] = (args, input, o) => exec(tools.helm, args, input, { ...o, env: { KUBECONFIG: kubeconfig, ...o?.env } });
        const cluster: Cluster = {
          dir,
          kubeconfig,
          server,
          ports,
          certs: {
            ca,
            caKey,
            apiserver: apiserverCert.cert,
            apiserverKey: apiserverCert.key,
            admin: admin.cert,
            adminKey: admin.key,
            serviceAccountKey: saKey,
            serviceAccountPub: saPub,
          },
          bin: tools,
          pids: { etcd: etcd.pid, kubeApiserver: apiserver.pid, kubeControllerManager: controllerManager.pid },
          ...(opts.node ? { nodeIp: opts.node.ip } : {}),
          env: { KUBECONFIG: kubeconfig },
          serverVersion,
          kubectl,
          helm,
          kubectlOk: async (args, input, o) => stdoutOf(`kubectl ${args.join(' ')}`, await kubectl(args, input, o)),
          helmOk: async (args, input, o) => stdoutOf(`helm ${args.join(' ')}`, await helm(args, input, o)),
          getJson: async <T>(args: string[]): Promise<T | undefined> => {
            const result = await kubectl([...args, '-o', 'json']);
            if (result.code !== 0 && /NotFound|not found/.test(result.stderr)) return undefined;
            return JSON.parse(stdoutOf(`kubectl ${args.join(' ')}`, result)) as T;
          },
          issueCert: (name, o) => signCert(certDir, name, o ?? {}),
          exited: Promise.race(procs.map((p) => p.exited.then(() => p.name))),
          stop: () => {
            stopped ??= (async () => {
              await stopProcs(procs, log);
              live.delete(entry);
              fs.rmSync(dir, { recursive: true, force: true });
            })();
            return stopped;
          },
        };
        return cluster;
      } catch (err) {
        if (err instanceof StartupError && err.portInUse && attempt < 3) {
          log(`port collision (${err.message.split('\n')[0]}); retrying with new ports`);
          await stopProcs(procs, log);
          procs.length = 0;
          continue;
        }
        throw err;
      }
    }
  } catch (err) {
    return fail(err);
  }
}
