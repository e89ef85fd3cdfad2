#!/usr/bin/env node
// thanos-injector: one binary, one file per command under cli/.
import { CommandError, messageOf } from './errors.ts';

const COMMANDS: Record<string, { summary: string; load: () => Promise<{ run: (argv: string[]) => Promise<number> }> }> = {
  serve: { summary: 'run the admission webhook (HTTPS)', load: () => import('./cli/serve.ts') },
  inject: { summary: 'inject manifests offline and print the result', load: () => import('./cli/inject.ts') },
  uninject: { summary: 'take the injection out of manifests offline and print the result', load: () => import('./cli/uninject.ts') },
  certs: { summary: 'generate a CA and a serving certificate', load: () => import('./cli/certs.ts') },
  register: { summary: 'register injected sidecars with Thanos Query', load: () => import('./cli/register.ts') },
  check: { summary: 'diagnose an install, a namespace or a pod', load: () => import('./cli/check.ts') },
  uninstall: { summary: 'delete the webhook configuration first (what it owns goes with it)', load: () => import('./cli/uninstall.ts') },
  policy: { summary: 'print the injection as a MutatingAdmissionPolicy (Kubernetes >= 1.36.6)', load: () => import('./cli/policy.ts') },
  rollout: { summary: 're-create pods whose sidecar is outdated (HA replicas one at a time)', load: () => import('./cli/rollout.ts') },
};

const usage = `Usage: thanos-injector COMMAND [flags]

Adds a Thanos sidecar to labelled Prometheus pods, as a Kubernetes admission webhook or offline.

Commands:
${Object.entries(COMMANDS).map(([name, { summary }]) => `  ${name.padEnd(10)} ${summary}`).join('\n')}

Run 'thanos-injector COMMAND --help' for a command's flags, 'thanos-injector --version' for the version.
`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === 'version') {
    process.stdout.write(`thanos-injector ${(await import('./version.ts')).VERSION}\n`);
    return 0;
  }
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage);
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    process.stderr.write(`thanos-injector: unknown command "${name}"\n\n${usage}`);
    return 2;
  }
  return (await command.load()).run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof CommandError) {
      process.stderr.write(`thanos-injector: ${error.message}\n`);
      process.exitCode = error.exitCode;
    } else {
      process.stderr.write(`thanos-injector: unexpected error: ${messageOf(error)}\n`);
      process.exitCode = 70;
    }
  },
);
