// Plain-HTTP endpoints for the kubelet and Prometheus: /healthz, /readyz, /metrics.
// Kept off the admission port so that port only ever speaks TLS.
import Fastify, { type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';

export interface HealthState {
  /** False before the webhook listens and from the start of a shutdown. */
  ready: boolean;
}

export function buildHealthApp(state: HealthState, registry: Registry): FastifyInstance {
  const app = Fastify({ logger: false, return503OnClosing: false });
  app.get('/healthz', (_request, reply) => reply.type('text/plain').send('ok\n'));
  app.get('/readyz', (_request, reply) =>
    state.ready ? reply.type('text/plain').send('ok\n') : reply.code(503).type('text/plain').send('not ready\n'),
  );
  app.get('/metrics', async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()));
  return app;
}
