// Certificate generation runs selfsigned in a short-lived child process, so the server that asked
// (certs auto mode) never holds the generator's modules; what it gets back is a working pair.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateCertificates, issueServingCertificate } from '../../src/certs/generate.ts';

const generateUrl = new URL('../../src/certs/generate.ts', import.meta.url).href;

void t.test('generateCertificates: a CA, and a serving certificate for the names signed by it', async (t) => {
  const set = await generateCertificates(['thanos-injector.monitoring.svc', '127.0.0.1'], 30);
  const ca = new X509Certificate(set.caCert);
  const serving = new X509Certificate(set.cert);
  t.ok(ca.ca, 'the CA is a CA');
  t.ok(serving.verify(ca.publicKey), 'the serving certificate is signed by the CA');
  t.ok(serving.checkPrivateKey(createPrivateKey(set.key)), 'the key is the serving certificate\'s');
  t.ok(ca.checkPrivateKey(createPrivateKey(set.caKey)), 'the CA key is the CA\'s');
  t.equal(serving.checkHost('thanos-injector.monitoring.svc', { subject: 'never' }), 'thanos-injector.monitoring.svc');
  t.equal(serving.checkIP('127.0.0.1'), '127.0.0.1');
  const days = (new Date(serving.validTo).getTime() - Date.now()) / 86_400_000;
  t.ok(days > 29 && days <= 30, `valid for the days asked (${days.toFixed(2)})`);
});

void t.test('the process that asks for a certificate never loads the generator (selfsigned, @peculiar/x509)', (t) => {
  const dir = t.testdir();
  const script = join(dir, 'ask.mjs');
  writeFileSync(script, `
import { registerHooks } from 'node:module';
const resolved = [];
registerHooks({ resolve(specifier, context, next) { const result = next(specifier, context); resolved.push(result.url); return result; } });
const generator = (url) => /node_modules\\/(selfsigned|@peculiar)\\//.test(url);
const { generateCertificates } = await import(${JSON.stringify(generateUrl)});
const set = await generateCertificates(['localhost']);
const whileAsking = resolved.filter(generator);
await import('selfsigned');
process.stdout.write(JSON.stringify({ made: set.cert.includes('BEGIN CERTIFICATE'), whileAsking, control: resolved.filter(generator) }));
`);
  const { made, whileAsking, control } = JSON.parse(execFileSync(process.execPath, [script], { cwd: process.cwd(), encoding: 'utf8' })) as { made: boolean; whileAsking: string[]; control: string[] };
  t.ok(made, 'a certificate came back');
  t.same(whileAsking, [], 'no generator module was loaded in the asking process');
  t.ok(control.length > 0, 'control: importing selfsigned here is seen by the same hook');
  t.end();
});

void t.test('a failure in the generator comes back as an error that names it', async (t) => {
  const set = await generateCertificates(['localhost']);
  await t.rejects(issueServingCertificate({ cert: set.caCert, key: 'not a key' }, ['localhost']), /^the certificate generator \(.*\) failed: \S/);
});
