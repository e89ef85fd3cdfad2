// The HTTPS admission endpoint (fastify): `POST /mutate`. Validates the AdmissionReview once,
// hands it to admission/review and maps every bad input to a clear 4xx. Knows nothing of Thanos.
import Fastify, { LogController, type FastifyError, type FastifyHttpsOptions, type FastifyInstance, type FastifyPluginCallback, type FastifyServerOptions } from 'fastify';
import type { Server } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { AdmissionAnswerSchema, AdmissionReviewSchema, type AdmissionReview } from '../admission/schema.ts';
import { review, type ReviewContext, type ReviewResult } from '../admission/review.ts';
import { compileCheck } from '../validation.ts';
import type { Metrics } from './metrics.ts';
import type { KeyPair } from './tls.ts';

export const BODY_LIMIT = 4 * 1024 * 1024;
/** The most of a refused (too large) body that is read and dropped before the 413 goes out. */
const DISCARD_LIMIT = 64 * 1024 * 1024;

export interface WebhookOptions extends ReviewContext {
  tls: KeyPair;
  metrics: Metrics;
  logger: FastifyServerOptions['logger'];
  /** PEM bundle: when set, clients must present a certificate it signed (the apiserver's). */
  clientCa?: string;
  /**
   * True once a shutdown has started. The apiserver keeps sending reviews over the connections it
   * already holds to this pod, whatever the endpoints say; each answer then closes its connection
   * (Connection: close), so none is left for the listener's close to cut under a review in flight.
   */
  draining?: () => boolean;
}

function clientError(error: FastifyError): { status: number; message: string } {
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, message: 'expected Content-Type application/json with an AdmissionReview body' };
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, message: `request body is over the ${BODY_LIMIT / 1024 / 1024} MiB limit` };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { status: 400, message: 'request body is empty; expected an AdmissionReview' };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { status: 400, message: 'request body is not valid JSON (or holds a __proto__ or constructor.prototype key); expected an AdmissionReview' };
    default:
      break;
  }
  if (error.code === 'FST_ERR_VALIDATION') return { status: 400, message: `invalid AdmissionReview: ${error.message}` };
  if (error instanceof SyntaxError) {
    // secure-json-parse refuses prototype keys: say so rather than "not JSON".
    const reason = /prototype/i.test(error.message) ? 'contains a forbidden __proto__ or constructor.prototype key' : 'is not valid JSON';
    return { status: 400, message: `request body ${reason}; expected an AdmissionReview` };
  }
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
    return { status: error.statusCode, message: error.message };
  }
  return { status: 500, message: 'internal error' };
}

/**
 * Reads and drops the rest of a refused body (up to DISCARD_LIMIT) before the 413 is sent.
 * fastify closes the connection after that answer; closing a socket with unread data makes the
 * kernel send a reset, which can destroy the 413 before a client still sending has read it (the
 * client then sees EPIPE or ECONNRESET instead of the answer). Bounded in time by requestTimeout.
 */
function discardBody(request: IncomingMessage): Promise<void> {
  if (request.complete || request.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    let received = 0;
    const done = () => {
      request.off('data', onData).off('end', done).off('close', done).off('error', done);
      resolve();
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received <= DISCARD_LIMIT) return;
      request.pause();
      done();
    };
    request.on('data', onData).on('end', done).on('close', done).on('error', done);
    request.resume();
  });
}

/** The server's settings: body limit, timeouts for slow clients, TLS (and client certificates). */
function serverOptions(options: WebhookOptions): FastifyHttpsOptions<Server> {
  return {
    logger: options.logger,
    // One log line per admission, written by the route itself.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    // Longer than the apiserver's idle timeout for webhook connections (90 s), so it reuses them.
    keepAliveTimeout: 120_000,
    requestTimeout: 30_000,
    // A review that reaches an open connection during the drain is served, not answered 503 (the
    // apiserver would count that as a failed call); the listener itself is closed already.
    return503OnClosing: false,
    https: {
      cert: options.tls.cert,
      key: options.tls.key,
      minVersion: 'TLSv1.2',
      // Slow or stalled clients are cut off on time: a TLS handshake within 10 s, and the
      // header/request timeouts below checked twice a second (Node checks every 30 s by default).
      handshakeTimeout: 10_000,
      connectionsCheckingInterval: 500,
      ...(options.clientCa !== undefined ? { ca: options.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
    },
  };
}

/** Every bad input answered with a clear 4xx: schemas checked by TypeBox sentences, errors mapped, unknown routes named. */
function answerClientErrors(app: FastifyInstance): void {
  app.setValidatorCompiler(({ schema }) => {
    const check = compileCheck(schema, 'body');
    return (data: unknown) => {
      const problems = check(data);
      return problems.length === 0 ? { value: data } : { error: new Error(problems.join('; ')) };
    };
  });
  app.setErrorHandler(async (error: FastifyError, request, reply) => {
    const { status, message } = clientError(error);
    if (status >= 500) request.log.error({ err: error }, 'unexpected error');
    else request.log.info({ status, message }, 'rejected request');
    if (status === 413) await discardBody(request.raw);
    const name = { 404: 'NotFound', 413: 'RequestEntityTooLarge', 415: 'UnsupportedMediaType', 500: 'InternalError' }[status] ?? 'BadRequest';
    return reply.code(status).send({ error: name, message });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: 'NotFound', message: `no route ${request.method} ${request.url.split('?')[0]}; the webhook serves POST /mutate` }),
  );
}

/** The log line of one admission: who, what, the outcome and how long it took. */
function admissionLog(body: AdmissionReview, result: ReviewResult, seconds: number): Record<string, unknown> {
  const { request: admission } = body;
  const object = admission.object as { metadata?: { name?: string; generateName?: string } } | null | undefined;
  return {
    uid: admission.uid,
    namespace: admission.namespace,
    pod: object?.metadata?.name || object?.metadata?.generateName || admission.name,
    operation: admission.operation,
    dryRun: admission.dryRun,
    outcome: result.outcome,
    reason: result.reason,
    message: result.message,
    durationMs: Math.round(seconds * 1e6) / 1e3,
  };
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the route: the review's result and how long it took, for the onResponse hook. */
    admission: { result: ReviewResult; seconds: number } | null;
  }
}

/**
 * `POST /mutate`: the body checked against the AdmissionReview schema, reviewed and answered from
 * the answer's schema; once the answer is sent, a hook counts it and writes its log line (outside
 * the time the apiserver waits).
 */
const mutateRoute: FastifyPluginCallback<WebhookOptions> = (app, options, done) => {
  app.decorateRequest('admission', null);
  app.addHook('onResponse', (request, _reply, next) => {
    const admission = request.admission;
    if (admission !== null) {
      const { result, seconds } = admission;
      options.metrics.admissions.inc({ outcome: result.outcome, reason: result.reason });
      options.metrics.duration.observe({ outcome: result.outcome }, seconds);
      const log = admissionLog(request.body as AdmissionReview, result, seconds);
      if (result.outcome === 'error') request.log.error(log, 'admission');
      else request.log.info(log, 'admission');
    }
    next();
  });
  app.post<{ Body: AdmissionReview }>('/mutate', { schema: { body: AdmissionReviewSchema, response: { 200: AdmissionAnswerSchema } } }, (request, reply) => {
    const started = process.hrtime.bigint();
    const result = review(request.body, options);
    request.admission = { result, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
    if (options.draining?.()) reply.header('connection', 'close');
    return reply.send(result.answer);
  });
  done();
};

export function buildWebhookApp(options: WebhookOptions): FastifyInstance {
  const app = Fastify(serverOptions(options));
  app.server.headersTimeout = 10_000;
  // Only JSON is an AdmissionReview; anything else is answered 415.
  app.removeContentTypeParser('text/plain');
  answerClientErrors(app);
  void app.register(mutateRoute, options);
  return app;
}
