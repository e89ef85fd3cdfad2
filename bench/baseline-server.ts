// The cost floor: a bare fastify 5 HTTPS server with the same certificate and TLS settings as the
// injector, which JSON-parses the same AdmissionReview body and returns a canned response of the
// same size. Started by bench/run.ts: `node bench/baseline-server.ts PORT CERT KEY RESPONSE_FILE`.
import Fastify from 'fastify';
import { readFileSync } from 'node:fs';

const [port, certFile, keyFile, responseFile] = process.argv.slice(2) as [string, string, string, string];
const canned = readFileSync(responseFile, 'utf8');
const app = Fastify({
  logger: false,
  bodyLimit: 4 * 1024 * 1024,
  keepAliveTimeout: 120_000,
  https: { cert: readFileSync(certFile), key: readFileSync(keyFile), minVersion: 'TLSv1.2' },
});
app.post('/mutate', (request, reply) => {
  const body = request.body as { request?: { uid?: string } };
  if (typeof body.request?.uid !== 'string') return reply.code(400).send({ error: 'BadRequest' });
  return reply.type('application/json').send(canned);
});
await app.listen({ host: '127.0.0.1', port: Number(port) });
process.stdout.write('ready\n');
process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
