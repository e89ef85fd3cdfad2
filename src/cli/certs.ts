// `thanos-injector certs --out DIR --dns-name NAME...`: a CA and a serving certificate on disk.
import { writeCertificates } from '../certs/files.ts';
import { parseFlags } from './args.ts';
import { UsageError } from '../errors.ts';

export const help = `Usage: thanos-injector certs --out DIR [--dns-name NAME]...

Generates a CA (ca.crt) and a serving certificate and key signed by it (tls.crt, tls.key) in DIR.
Each --dns-name (a DNS name or an IP address) becomes a subject alternative name; without any,
the names are localhost, 127.0.0.1 and ::1. For the webhook behind a Service, pass
<service>.<namespace>.svc. Existing files in DIR are replaced.

Flags:
      --out DIR          folder to write into (created when missing)
      --dns-name NAME    a DNS name or IP address for the certificate (repeatable)
  -h, --help             show this help
`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, { out: { type: 'string' }, 'dns-name': { type: 'string', multiple: true } }, 'certs');
  if (values.help) {
    process.stdout.write(help);
    return 0;
  }
  if (values.out === undefined) throw new UsageError("certs needs --out DIR\nRun 'thanos-injector certs --help' for usage.");
  const names = values['dns-name'] ?? ['localhost', '127.0.0.1', '::1'];
  for (const name of names) {
    if (!/^[a-zA-Z0-9.:*-]+$/.test(name)) throw new UsageError(`--dns-name: "${name}" is not valid; expected a DNS name or an IP address`);
  }
  const files = await writeCertificates(values.out, names);
  process.stdout.write(`wrote ${files.caFile}, ${files.certFile}, ${files.keyFile} (names: ${names.join(', ')})\n`);
  return 0;
}
