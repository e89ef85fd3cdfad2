/**
 * A long-lived test control plane for working by hand (see ./README.md):
 *
 *   node test/cluster/cli.ts up       build the binaries if missing, start etcd + kube-apiserver +
 *                                     kube-controller-manager in the background (state in
 *                                     <repo>/.cluster/current/), print `export KUBECONFIG=...` on stdout
 *                                     (so `eval "$(node test/cluster/cli.ts up)"` works; the rest goes to
 *                                     stderr). If it is already up, just print that line again.
 *   node test/cluster/cli.ts down     stop it and remove <repo>/.cluster/current/ (no-op when down)
 *   node test/cluster/cli.ts status   say whether it is up (exit code 0 if up, 3 if not)
 *   node test/cluster/cli.ts env      same as status: prints the export line when up
 *
 * How: `up` starts a detached keeper (this file with the hidden argument `__keep`), which calls
 * startCluster() and stays the parent of the three processes (so they are reaped, and they get
 * SIGTERM if the keeper dies), reports readiness back over IPC, and on SIGTERM/SIGINT/SIGHUP
 * stops the cluster and exits. It also stops everything if one of the processes dies.
 * `down` SIGTERMs the keeper and waits; if the keeper is gone it kills the recorded processes.
 * Keeper output: <repo>/.cluster/current.log. Matching kubectl and helm links:
 * <repo>/.cluster/current/bin/.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ensureTools } from './build.ts';
import { clusterAlive, defaultStateRoot, repoRoot, startCluster, stopClusterDir, type Cluster, type ClusterState } from './cluster.ts';

const currentDir = path.join(defaultStateRoot, 'current');
const keeperLog = path.join(defaultStateRoot, 'current.log');
const KEEP_ARG = '__keep';

function err(msg: string): void {
  console.error(`[cluster] ${msg}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function exportLine(kubeconfig: string): string {
  return `export KUBECONFIG=${kubeconfig}`;
}

function readState(): ClusterState | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(currentDir, 'state.json'), 'utf8')) as ClusterState;
  } catch {
    return undefined;
  }
}

/** Whether pid is a live (non-zombie) keeper of this script. */
function isKeeper(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2))) return false;
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.includes(KEEP_ARG) && argv.some((a) => a.endsWith('cli.ts'));
  } catch {
    return false;
  }
}

function isUp(): ClusterState | undefined {
  const st = readState();
  return st && isKeeper(st.ownerPid) && clusterAlive(currentDir) ? st : undefined;
}

// ------------------------------------------------------------ keeper (runs detached)

async function keep(): Promise<void> {
  const send = (msg: unknown): void => {
    if (process.send && process.connected) process.send(msg);
  };
  let cluster: Cluster;
  try {
    cluster = await startCluster({ dir: currentDir, log: (m) => console.error(`${new Date().toISOString()} ${m}`) });
  } catch (e) {
    send({ error: e instanceof Error ? e.message : String(e) });
    process.exitCode = 1;
    process.disconnect?.();
    return;
  }
  const binDir = path.join(currentDir, 'bin');
  fs.mkdirSync(binDir);
  fs.symlinkSync(cluster.bin.kubectl, path.join(binDir, 'kubectl'));
  fs.symlinkSync(cluster.bin.helm, path.join(binDir, 'helm'));

  let stopping = false;
  const shutdown = async (why: string, crashed?: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    console.error(`${new Date().toISOString()} ${why}: stopping`);
    if (crashed) {
      // Keep the reason in .cluster/current.log (removed by the next `down` or `up`).
      try {
        const log = fs.readFileSync(path.join(currentDir, 'logs', `${crashed}.log`), 'utf8');
        console.error(`last lines of ${crashed}.log:\n${log.split('\n').slice(-40).join('\n')}`);
      } catch {
        /* no log */
      }
    }
    await cluster.stop();
    if (!crashed) fs.rmSync(keeperLog, { force: true });
    process.exit(crashed ? 1 : 0);
  };
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => void shutdown(sig));
  void cluster.exited.then((name) => shutdown(`${name} exited unexpectedly`, name));

  send({
    ok: true,
    server: cluster.server,
    kubeconfig: cluster.kubeconfig,
    version: cluster.serverVersion,
    pids: cluster.pids,
    keeper: process.pid,
  });
  process.disconnect?.();
}

// ------------------------------------------------------------ commands

async function up(): Promise<number> {
  const st = isUp();
  if (st) {
    err(`already up: ${st.server} (state in ${currentDir})`);
    console.log(exportLine(st.kubeconfig));
    return 0;
  }
  if (fs.existsSync(currentDir)) {
    err(`removing the leftovers of a cluster that is no longer running in ${currentDir}`);
    await down();
  }
  const started = Date.now();
  await ensureTools(); // in the foreground, so that a (long) first build is visible
  fs.mkdirSync(defaultStateRoot, { recursive: true });
  const fd = fs.openSync(keeperLog, 'w');
  const child = spawn(process.execPath, [import.meta.filename, KEEP_ARG], {
    cwd: repoRoot,
    detached: true,
    stdio: ['ignore', fd, fd, 'ipc'],
  });
  fs.closeSync(fd);
  const msg = await new Promise<Record<string, unknown>>((resolve) => {
    child.once('message', (m) => resolve(m as Record<string, unknown>));
    child.once('exit', (code, sig) => resolve({ error: `keeper exited (${sig ?? code}) before the cluster was ready; see ${keeperLog}` }));
  });
  if (!msg.ok) {
    err(String(msg.error));
    try {
      err(`keeper log ${keeperLog}:\n${fs.readFileSync(keeperLog, 'utf8').split('\n').slice(-20).join('\n')}`);
    } catch {
      /* none */
    }
    if (child.exitCode === null) child.kill('SIGTERM');
    return 1;
  }
  child.disconnect();
  child.unref();
  const pids = msg.pids as Cluster['pids'];
  err(`up in ${((Date.now() - started) / 1000).toFixed(1)} s: Kubernetes ${String(msg.version)} at ${String(msg.server)}`);
  err(`pids: keeper ${String(msg.keeper)}, etcd ${pids.etcd}, kube-apiserver ${pids.kubeApiserver}, kube-controller-manager ${pids.kubeControllerManager}`);
  err(`logs: ${path.join(currentDir, 'logs')}/; matching kubectl and helm: ${path.join(currentDir, 'bin')}/`);
  err('stop it with: node test/cluster/cli.ts down');
  console.log(exportLine(String(msg.kubeconfig)));
  return 0;
}

async function down(): Promise<number> {
  if (!fs.existsSync(currentDir)) {
    err('not running (no .cluster/current)');
    fs.rmSync(keeperLog, { force: true });
    return 0;
  }
  const st = readState();
  if (st && isKeeper(st.ownerPid)) {
    process.kill(st.ownerPid, 'SIGTERM');
    const deadline = Date.now() + 45_000;
    while (isKeeper(st.ownerPid) && Date.now() < deadline) await sleep(100);
    if (isKeeper(st.ownerPid)) {
      err(`keeper ${st.ownerPid} did not exit within 45 s: killing it`);
      process.kill(st.ownerPid, 'SIGKILL');
    }
  }
  // Whatever the keeper left (or everything, if the keeper was gone).
  await stopClusterDir(currentDir, err);
  fs.rmSync(keeperLog, { force: true });
  err(st ? `stopped ${st.server} and removed ${currentDir}` : `removed ${currentDir}`);
  return 0;
}

function status(): number {
  const st = isUp();
  if (st) {
    err(`up: ${st.server} since ${st.startedAt}; keeper ${st.ownerPid}, ${st.processes.map((p) => `${p.name} ${p.pid}`).join(', ')}`);
    console.log(exportLine(st.kubeconfig));
    return 0;
  }
  err(fs.existsSync(currentDir) ? 'down (leftovers in .cluster/current: `down` removes them)' : 'down');
  if (fs.existsSync(keeperLog)) err(`see ${keeperLog} for why it stopped`);
  return 3;
}

async function main(argv: string[]): Promise<number | undefined> {
  switch (argv[0]) {
    case 'up':
      return up();
    case 'down':
      return down();
    case 'status':
    case 'env':
      return status();
    case KEEP_ARG:
      await keep();
      return undefined; // keep running
    default:
      console.error('usage: node test/cluster/cli.ts up|down|status|env');
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== undefined) process.exit(code);
  },
  (e: unknown) => {
    err(e instanceof Error ? (e.stack ?? e.message) : String(e));
    process.exit(1);
  },
);
