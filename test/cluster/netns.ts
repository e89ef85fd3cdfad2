/**
 * Runs a command inside namespaces of its own, for the test node: a network namespace (the node's
 * bridge, pod addresses, kube-proxy's iptables rules, its sysctls such as ip_forward), a mount
 * namespace with private propagation (containerd's overlay mounts, the kubelet's tmpfs volumes)
 * and a PID namespace (when its first process ends, the kernel ends every other one: containerd,
 * shims, kubelet, the pods), with /run and /var/lib of its own (see inside()). Whatever happens to
 * the run, even SIGKILL, the machine's own network, mounts, files and processes are as before. What lives outside namespaces is cleaned after the command
 * ends, and before the next run: the kubelet's cgroups, under a parent named after this run's
 * process (node.ts, cleanNodeLeftovers), so that two runs may go at once (node-suite.ts).
 *
 *   node test/cluster/netns.ts CMD [ARGS...]     # exit code of CMD
 *
 * Inside, only loopback is up; the command sees THANOS_INJECTOR_NETNS=1.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { defaultStateRoot, RUN_ENV } from './cluster.ts';
import { cleanNodeLeftovers } from './node.ts';

const INSIDE = '--inside-namespaces';

function need(command: string, hint: string): void {
  if (spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status !== 0) {
    throw new Error(`${command} is needed for the test node's namespaces (${hint})`);
  }
}

/** Scratch and cluster state folders of runs whose namespaces are gone (their name carries the outer process' pid). */
function removeStaleScratch(): void {
  const stale = (pattern: RegExp, dir: string) => {
    for (const entry of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
      const pid = Number(pattern.exec(entry)?.[1]);
      if (!pid) continue;
      try {
        process.kill(pid, 0);
      } catch {
        fs.rmSync(path.join(dir, entry), { recursive: true, force: true });
      }
    }
  };
  stale(/^thanos-injector-netns-(\d+)-/, os.tmpdir());
  stale(/^tsi-(\d+)$/, defaultStateRoot);
}

/** Run `argv` in new net, mount and PID namespaces; resolves with its exit code. */
export function runInNamespaces(argv: string[]): Promise<number> {
  need('unshare', 'util-linux');
  need('ip', 'iproute2');
  removeStaleScratch();
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), `thanos-injector-netns-${process.pid}-`));
  return new Promise((resolve, reject) => {
    const child = spawn(
      'unshare',
      ['--net', '--mount', '--propagation', 'private', '--pid', '--fork', '--kill-child=SIGKILL', '--mount-proc', '--', process.execPath, import.meta.filename, INSIDE, scratch, ...argv],
      { stdio: 'inherit', env: { ...process.env, [RUN_ENV]: run } },
    );
    const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
    process.on('SIGINT', forward('SIGINT'));
    process.on('SIGTERM', forward('SIGTERM'));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      // The namespaces are gone with their first process; their processes leave the cgroups a
      // moment later. Then what the node made outside the namespaces can go too.
      void removeLeftovers().then(() => {
        fs.rmSync(scratch, { recursive: true, force: true });
        resolve(code ?? (signal ? 128 : 1));
      });
    });
  });
}

/** This run's name (cluster.ts RUN_ENV): after this process, which outlives everything in the namespaces. */
const run = `tsi-${process.pid}`;

/** The run's cgroups (node.ts) and its clusters' state folder. */
async function removeLeftovers(): Promise<void> {
  for (let attempt = 0; attempt < 50 && !cleanNodeLeftovers(run); attempt++) await new Promise((r) => setTimeout(r, 100));
  fs.rmSync(path.join(defaultStateRoot, run), { recursive: true, force: true });
}

/**
 * PID 1 of the namespaces: loopback up; a /run of its own (containerd's shims keep their sockets
 * and FIFOs under /run/containerd, iptables its lock); /var/lib as an overlay whose writes land in
 * `scratch` (the CNI plugins keep IP leases and results under /var/lib/cni, whatever the config
 * says), so the machine's /run and /var/lib are untouched while apt's lists stay readable; then
 * the command. /sys stays the machine's: a sysfs of this network namespace would hide the cgroup
 * hierarchies mounted under /sys/fs/cgroup, which runc needs.
 */
async function inside(scratch: string, argv: string[]): Promise<number> {
  const script = [
    'ip link set lo up',
    'mount -t tmpfs -o mode=755 tmpfs /run',
    `mkdir -p "${scratch}/upper" "${scratch}/work"`,
    `mount -t overlay overlay -o lowerdir=/var/lib,upperdir="${scratch}/upper",workdir="${scratch}/work" /var/lib`,
  ].join(' && ');
  const setup = spawnSync('sh', ['-ec', script], { stdio: 'inherit' });
  if (setup.status !== 0) throw new Error(`could not set up the namespaces (loopback, /run, /var/lib): ${script}`);
  const [command, ...args] = argv;
  if (command === undefined) throw new Error('usage: node test/cluster/netns.ts CMD [ARGS...]');
  const code = await new Promise<number>((resolve) => {
    const child = spawn(command, args, { stdio: 'inherit', env: { ...process.env, THANOS_INJECTOR_NETNS: '1' } });
    // As PID 1, this process gets only the signals it handles: pass them on.
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
    child.on('error', (error) => {
      console.error(`cannot run ${command}: ${error.message}`);
      resolve(127);
    });
    child.on('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 128 : 1)));
  });
  cleanNodeLeftovers(process.env[RUN_ENV] ?? '');
  return code;
}

if (import.meta.main) {
  const argv = process.argv.slice(2);
  const run = argv[0] === INSIDE ? inside(argv[1] ?? '', argv.slice(2)) : runInNamespaces(argv);
  run.then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(error instanceof Error ? error.message : error);
      process.exit(1);
    },
  );
}
