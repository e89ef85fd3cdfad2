/**
 * Runs a command inside namespaces of its own, for the test node: a network namespace (the node's
 * bridge, pod addresses, kube-proxy's iptables rules, its sysctls such as ip_forward), a mount
 * namespace with private propagation (containerd's overlay mounts, the kubelet's tmpfs volumes)
 * and a PID namespace (when its first process ends, the kernel ends every other one: containerd,
 * shims, kubelet, the pods). Whatever happens to the run, even SIGKILL, the machine's own network,
 * mounts and processes are as before. What lives outside namespaces is cleaned after the command
 * ends, and before the next run: the cgroups of the kubelet and containerd (node.ts, cleanNodeLeftovers).
 *
 *   node test/cluster/netns.ts CMD [ARGS...]     # exit code of CMD
 *
 * Inside, only loopback is up; the command sees THANOS_INJECTOR_NETNS=1.
 */
import { spawn, spawnSync } from 'node:child_process';
import { cleanNodeLeftovers } from './node.ts';

const INSIDE = '--inside-namespaces';

function need(command: string, hint: string): void {
  if (spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status !== 0) {
    throw new Error(`${command} is needed for the test node's namespaces (${hint})`);
  }
}

/** Run `argv` in new net, mount and PID namespaces; resolves with its exit code. */
export function runInNamespaces(argv: string[]): Promise<number> {
  need('unshare', 'util-linux');
  need('ip', 'iproute2');
  return new Promise((resolve, reject) => {
    const child = spawn(
      'unshare',
      ['--net', '--mount', '--propagation', 'private', '--pid', '--fork', '--kill-child=SIGKILL', '--mount-proc', '--', process.execPath, import.meta.filename, INSIDE, ...argv],
      { stdio: 'inherit' },
    );
    const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
    process.on('SIGINT', forward('SIGINT'));
    process.on('SIGTERM', forward('SIGTERM'));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      // The namespaces are gone with their first process; their processes leave the cgroups a
      // moment later. Then what the node made outside the namespaces can go too.
      void removeLeftovers().then(() => resolve(code ?? (signal ? 128 : 1)));
    });
  });
}

async function removeLeftovers(): Promise<void> {
  for (let attempt = 0; attempt < 50 && !cleanNodeLeftovers(); attempt++) await new Promise((r) => setTimeout(r, 100));
}

/**
 * PID 1 of the namespaces: loopback up, then the command. /sys stays the machine's: a sysfs of
 * this network namespace would hide the cgroup hierarchies mounted under /sys/fs/cgroup, which
 * runc needs (the node's own interfaces are read through netlink, not /sys/class/net).
 */
async function inside(argv: string[]): Promise<number> {
  const setup = spawnSync('ip', ['link', 'set', 'lo', 'up'], { stdio: 'inherit' });
  if (setup.status !== 0) throw new Error('could not bring up loopback in the new network namespace');
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
  cleanNodeLeftovers();
  return code;
}

if (import.meta.main) {
  const argv = process.argv.slice(2);
  const run = argv[0] === INSIDE ? inside(argv.slice(1)) : runInNamespaces(argv);
  run.then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(error instanceof Error ? error.message : error);
      process.exit(1);
    },
  );
}
