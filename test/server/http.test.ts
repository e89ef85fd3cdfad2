// The admission endpoint over real HTTPS, as kube-apiserver (and anything else) reaches it: the
// AdmissionReview contract, every bad input answered with a clear 4xx, TLS versions, the health
// app and the log line per admission.
import t, { type Test } from 'tap';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import tls from 'node:tls';
import { startServe } from '../support/serve.ts';
import { startTestWebhook, type TestWebhook } from '../support/webhook.ts';
import {
  admissionReview,
  fixturePod,
  httpGet,
  httpsCall,
  metricValue,
  postReview,
  prometheusPod,
  waitFor,
  type Answer,
  type Json,
} from '../support/server.ts';

interface Response {
  uid: string;
  allowed: boolean;
  patchType?: string;
  patch?: string;
  status?: { code?: number; message?: string; reason?: string };
  warnings?: string[];
}

interface ReviewAnswer {
  apiVersion: string;
  kind: string;
  response: Response;
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/; // unicode.IsControl, what the apiserver drops warnings for
/** JSON.stringify, with the C1 controls it leaves raw escaped too (readable test output). */
const shown = (text: string) => JSON.stringify(text).replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

let webhook: TestWebhook;

t.before(async () => {
  webhook = await startTestWebhook();
});
t.teardown(() => webhook.close());

const post = (body: unknown) => postReview(webhook.server.port, webhook.ca, body);

function responseOf(t: Test, answer: Answer): Response {
  t.equal(answer.status, 200, `HTTP 200 (got ${answer.status}: ${answer.text.slice(0, 300)})`);
  t.match(answer.headers['content-type'], /^application\/json/);
  const review = answer.json as ReviewAnswer;
  t.equal(review.apiVersion, 'admission.k8s.io/v1');
  t.equal(review.kind, 'AdmissionReview');
  return review.response;
}

function decodePatch(t: Test, response: Response): unknown[] {
  t.equal(response.patchType, 'JSONPatch');
  t.type(response.patch, 'string');
  t.match(response.patch, /^[A-Za-z0-9+/]*={0,2}$/, 'patch is standard base64');
  const ops = JSON.parse(Buffer.from(response.patch ?? '', 'base64').toString('utf8')) as unknown;
  t.ok(Array.isArray(ops), 'patch decodes to a JSON array');
  return ops as unknown[];
}

function requestOf(review: Json): Json {
  return review.request as Json;
}

void t.test('POST /mutate?timeout=10s with a Prometheus pod gets 200 and a base64 JSONPatch that echoes the uid', async (t) => {
  const review = admissionReview(fixturePod('seed-deployment.yaml'), { uid: 'f0d2a4c6-1111-4e8a-9b3c-000000000001' });
  const response = responseOf(t, await post(review));
  t.equal(response.uid, 'f0d2a4c6-1111-4e8a-9b3c-000000000001', 'response.uid echoes request.uid');
  t.equal(response.allowed, true);
  const ops = decodePatch(t, response);
  t.ok(ops.length > 0, 'the patch has operations');
  t.ok(
    ops.some((op) => JSON.stringify(op).includes('thanos-sidecar')),
    'the patch adds the thanos-sidecar container',
  );
});

void t.test('bodies that are not JSON are answered 400 or 415 with a JSON {error, message}, never 5xx', async (t) => {
  const port = webhook.server.port;
  const ca = webhook.ca;

  await t.test('a body that is not JSON gets 400 with a message saying the body is not valid JSON', async (t) => {
    const answer = await httpsCall({ port, ca, headers: { 'content-type': 'application/json' }, body: '{"apiVersion": admission' });
    t.equal(answer.status, 400);
    t.match(answer.headers['content-type'], /^application\/json/);
    t.match(answer.json, { error: String, message: /not valid JSON/ });
  });

  await t.test('an empty body gets 400 with a message saying the body is empty', async (t) => {
    const answer = await httpsCall({ port, ca, headers: { 'content-type': 'application/json' }, body: '' });
    t.equal(answer.status, 400);
    t.match(answer.json, { error: String, message: /empty/ });
  });

  await t.test('Content-Type text/plain gets 415', async (t) => {
    const answer = await httpsCall({ port, ca, headers: { 'content-type': 'text/plain' }, body: JSON.stringify(admissionReview(prometheusPod())) });
    t.equal(answer.status, 415);
    t.match(answer.json, { error: String, message: /application\/json/ });
  });

  await t.test('a form-encoded body gets 415', async (t) => {
    const answer = await httpsCall({ port, ca, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'apiVersion=admission.k8s.io%2Fv1' });
    t.equal(answer.status, 415);
    t.match(answer.json, { error: String, message: String });
  });
});

void t.test('a JSON body that is not an AdmissionReview gets 400 with a message naming the field', async (t) => {
  const valid = admissionReview(prometheusPod());
  const withRequest = (change: (request: Json) => void): Json => {
    const copy = structuredClone(valid);
    change(requestOf(copy));
    return copy;
  };
  const cases: { name: string; body: unknown; field: string }[] = [
    { name: 'a wrong apiVersion', body: { ...valid, apiVersion: 'admission.k8s.io/v1beta1' }, field: 'apiVersion' },
    { name: 'a missing request.uid', body: withRequest((r) => delete r.uid), field: 'request' },
    { name: 'request.uid as a number', body: withRequest((r) => (r.uid = 42)), field: 'request.uid' },
    { name: 'operation PATCH', body: withRequest((r) => (r.operation = 'PATCH')), field: 'request.operation' },
    { name: 'request.object as a string', body: withRequest((r) => (r.object = 'a pod')), field: 'request.object' },
    { name: 'no request at all', body: { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, field: 'request' },
    { name: 'a JSON array', body: [valid], field: '' },
  ];
  for (const { name, body, field } of cases) {
    const answer = await post(body);
    t.equal(answer.status, 400, `${name}: 400 (got ${answer.status}: ${answer.text})`);
    t.match(answer.json, { error: 'BadRequest', message: String }, `${name}: JSON error`);
    t.ok((answer.json as { message: string }).message.includes(field), `${name}: the message names ${field || 'the problem'}: ${answer.text}`);
  }
  const missingUid = await post(withRequest((r) => delete r.uid));
  t.match((missingUid.json as { message: string }).message, /request.*uid/, 'a missing uid is named as request ... uid');
});

void t.test('body size: over 4 MiB gets 413, a 3 MiB AdmissionReview is reviewed normally', async (t) => {
  await t.test('a body over 4 MiB gets 413', async (t) => {
    const pod = prometheusPod({ env: [{ name: 'BIG', value: 'x'.repeat(4 * 1024 * 1024 + 1024) }] });
    const answer = await post(admissionReview(pod));
    t.equal(answer.status, 413);
    t.match(answer.json, { error: 'RequestEntityTooLarge', message: /4 MiB/ });
  });

  await t.test('a 16 MiB body, with a Content-Length or chunked, gets a readable 413 every time from a serve process (no reset under the sender)', async (t) => {
    // A separate process: in the test's own event loop the race between sending and closing hides.
    const { port, ca } = await startServe(t);
    const body = JSON.stringify({ ...admissionReview(prometheusPod()), pad: 'x'.repeat(16 * 1024 * 1024) });
    for (const chunked of [false, true]) {
      const outcomes = new Map<string, number>();
      for (let i = 0; i < 10; i++) {
        const outcome = await httpsCall({ port, ca, body, chunked, headers: { 'content-type': 'application/json' }, timeoutMs: 30_000 }).then(
          (answer) => `HTTP ${answer.status} ${(answer.json as { error?: string } | undefined)?.error ?? answer.text.slice(0, 80)}`,
          (error: Error) => error.message,
        );
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      }
      t.same([...outcomes], [['HTTP 413 RequestEntityTooLarge', 10]], `${chunked ? 'chunked' : 'Content-Length'}: 10 of 10 answered 413`);
    }
  });

  await t.test('a valid AdmissionReview of about 3 MiB (large env values) gets 200 with a patch', async (t) => {
    const env = Array.from({ length: 30 }, (_, i) => ({ name: `LARGE_${i}`, value: String.fromCharCode(97 + (i % 26)).repeat(100 * 1024) }));
    const body = JSON.stringify(admissionReview(prometheusPod({ env })));
    t.ok(body.length > 3 * 1000 * 1000 && body.length < 4 * 1024 * 1024, `body is about 3 MiB (${body.length} bytes)`);
    const response = responseOf(t, await post(body));
    t.equal(response.allowed, true);
    t.ok(decodePatch(t, response).length > 0);
  });
});

void t.test('a __proto__ key in the body does not pollute Object.prototype and gets no 5xx', async (t) => {
  const review = JSON.stringify(admissionReview(prometheusPod()));
  const bodies = [
    `{"__proto__":{"polluted":"top"},${review.slice(1)}`,
    review.replace('"metadata":{', '"metadata":{"__proto__":{"polluted":"metadata"},'),
    review.replace('"request":{', '"request":{"constructor":{"prototype":{"polluted":"constructor"}},'),
  ];
  for (const body of bodies) {
    const answer = await post(body);
    t.ok(answer.status < 500, `no 5xx (got ${answer.status}: ${answer.text.slice(0, 200)})`);
    t.ok(answer.status === 200 || (answer.status >= 400 && answer.status < 500), 'a 4xx or a normal answer');
    t.match(answer.headers['content-type'], /^application\/json/);
    t.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype is untouched');
    t.equal(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted'), false);
  }
});

void t.test('what is not a Pod CREATE is allowed without a patch', async (t) => {
  const configMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'prometheus-cm', namespace: 'monitoring' }, data: { a: 'b' } };
  const pod = fixturePod('seed-deployment.yaml');
  const cases: { name: string; review: Json }[] = [
    { name: 'a ConfigMap CREATE', review: admissionReview(configMap, { kind: { group: '', version: 'v1', kind: 'ConfigMap' }, resource: { group: '', version: 'v1', resource: 'configmaps' } }) },
    { name: 'a Pod UPDATE', review: admissionReview(pod, { operation: 'UPDATE', oldObject: pod }) },
    { name: 'a Pod DELETE', review: { ...admissionReview(null, { operation: 'DELETE', oldObject: pod }) } },
  ];
  for (const { name, review } of cases) {
    const uid = requestOf(review).uid;
    const response = responseOf(t, await post(review));
    t.equal(response.uid, uid, `${name}: uid echoed`);
    t.equal(response.allowed, true, `${name}: allowed`);
    t.equal(response.patch, undefined, `${name}: no patch`);
    t.equal(response.patchType, undefined, `${name}: no patchType`);
  }
});

void t.test('an invalid annotation on a Prometheus pod gets allowed false, code 400 and a message naming the annotation', async (t) => {
  const pod = prometheusPod({ annotations: { 'thanos-injector/block-duration': 'banana' } });
  const response = responseOf(t, await post(admissionReview(pod)));
  t.equal(response.allowed, false);
  t.equal(response.status?.code, 400);
  t.match(response.status?.message, /thanos-injector\/block-duration/);
  t.match(response.status?.message, /banana/);
  t.equal(response.patch, undefined);
});

void t.test('warnings: each at most 120 characters and free of control characters', async (t) => {
  const check = (t: Test, warnings: string[] | undefined) => {
    t.ok(warnings !== undefined && warnings.length > 0, `there are warnings: ${JSON.stringify(warnings)}`);
    for (const warning of warnings ?? []) {
      t.ok(warning.length > 0 && warning.length <= 120, `at most 120 characters (${warning.length}): ${shown(warning)}`);
      t.notOk(CONTROL.test(warning), `no control characters: ${shown(warning)}`);
    }
  };

  await t.test('a Prometheus pod without volumes (emptyDir warning, longer than 120 before truncation)', async (t) => {
    const response = responseOf(t, await post(admissionReview(fixturePod('no-volumes.yaml'))));
    t.equal(response.allowed, true);
    check(t, response.warnings);
    t.ok(response.warnings?.some((w) => w.includes('emptyDir')), 'the emptyDir warning is there');
    const joined = (response.warnings ?? []).map((line) => line.replace(/^ {2}/, ' ')).join('');
    t.match(joined, /deleted with the pod: every rollout, eviction or node drain loses .* keep the TSDB on a PersistentVolumeClaim .*ephemeral-tsdb: allow to accept the loss/,
      'a long warning is broken into lines, not cut: the fix is in the last ones');
  });

  await t.test('an unknown annotation thanos-injector/imgae whose value has a newline, and keys with C0 controls', async (t) => {
    const pod = prometheusPod({
      annotations: {
        'thanos-injector/imgae': 'quay.io/thanos/thanos:v0.42.5\nX-Injected: header\r\n',
        'thanos-injector/line\nbreak': 'x',
        'thanos-injector/tab\there\u001b[31m': 'y',
        [`thanos-injector/${'long-'.repeat(40)}key`]: 'z',
      },
    });
    const response = responseOf(t, await post(admissionReview(pod)));
    t.equal(response.allowed, true);
    check(t, response.warnings);
    t.ok(response.warnings?.some((w) => w.includes('thanos-injector/imgae')), 'the unknown annotation is named');
  });

  await t.test('an annotation key with a C1 control character (U+0085, U+009B) gives a warning without it', async (t) => {
    const pod = prometheusPod({ annotations: { 'thanos-injector/next\u0085line': 'x', 'thanos-injector/csi\u009b31m': 'y' } });
    const response = responseOf(t, await post(admissionReview(pod)));
    t.equal(response.allowed, true);
    check(t, response.warnings);
  });
});

void t.test('GET /mutate and unknown routes get a JSON 404, never HTML', async (t) => {
  const port = webhook.server.port;
  const ca = webhook.ca;
  const calls = [
    { method: 'GET', path: '/mutate' },
    { method: 'GET', path: '/' },
    { method: 'GET', path: '/healthz' },
    { method: 'POST', path: '/validate' },
    { method: 'PUT', path: '/mutate' },
    { method: 'GET', path: '/does/not/exist?x=<script>' },
  ];
  for (const { method, path } of calls) {
    const answer = await httpsCall({ port, ca, method, path, headers: { accept: 'text/html' } });
    t.equal(answer.status, 404, `${method} ${path}: 404`);
    t.match(answer.headers['content-type'], /^application\/json/, `${method} ${path}: JSON`);
    t.notMatch(answer.text, /<html|<!doctype|<script/i, `${method} ${path}: no HTML`);
    t.match(answer.json, { error: 'NotFound', message: /POST \/mutate/ });
  }
});

void t.test('TLS: 1.0 and 1.1 are refused, 1.2 and 1.3 work, plain HTTP gets no 200', async (t) => {
  const port = webhook.server.port;
  const ca = webhook.ca;
  // SECLEVEL=0 lets this OpenSSL client offer TLS 1.1 at all, so the refusal comes from the server.
  const handshake = (version: tls.SecureVersion, targetPort = port) =>
    new Promise<string | null>((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port: targetPort, ca, minVersion: version, maxVersion: version, ciphers: 'DEFAULT@SECLEVEL=0' }, () => {
        const protocol = socket.getProtocol();
        socket.end();
        resolve(protocol);
      });
      socket.setTimeout(5000, () => socket.destroy(new Error('handshake timed out')));
      socket.on('error', reject);
    });

  await t.test('control: this client can speak TLS 1.1 to a server that allows it', async (t) => {
    const server = tls.createServer({
      cert: await readFile(join(webhook.certDir, 'tls.crt'), 'utf8'),
      key: await readFile(join(webhook.certDir, 'tls.key'), 'utf8'),
      minVersion: 'TLSv1.1',
      ciphers: 'DEFAULT@SECLEVEL=0',
    }, (socket) => socket.end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
    t.equal(await handshake('TLSv1.1', (server.address() as { port: number }).port), 'TLSv1.1');
  });

  for (const version of ['TLSv1.1', 'TLSv1'] as const) {
    await t.test(`a client forcing ${version} fails the handshake`, async (t) => {
      await t.rejects(handshake(version), { code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' });
    });
  }

  for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
    await t.test(`a client on ${version} completes an admission`, async (t) => {
      t.equal(await handshake(version), version);
      const answer = await httpsCall({
        port,
        ca,
        minVersion: version,
        maxVersion: version,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(admissionReview(prometheusPod())),
        timeoutMs: 5000,
      });
      t.equal(answer.status, 200);
      t.equal(answer.protocol, version);
      t.match(JSON.parse(answer.text), { response: { allowed: true, patchType: 'JSONPatch' } });
    });
  }

  await t.test('plain HTTP to the HTTPS port does not get an HTTP 200', async (t) => {
    const status = await new Promise<number | string>((resolve) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/mutate', method: 'POST', agent: false, headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(5000) }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
      req.end(JSON.stringify(admissionReview(prometheusPod())));
    });
    t.not(status, 200, `no HTTP 200 (got ${status})`);
  });
});

void t.test('the health app: /healthz, /readyz and /metrics on plain HTTP', async (t) => {
  const healthPort = webhook.server.healthPort;
  t.not(healthPort, webhook.server.port, 'a separate port');
  const healthz = await httpGet(healthPort, '/healthz');
  t.equal(healthz.status, 200);
  const readyz = await httpGet(healthPort, '/readyz');
  t.equal(readyz.status, 200);

  const before = metricValue((await httpGet(healthPort, '/metrics')).text, 'thanos_injector_admissions_total', { outcome: 'denied' }) ?? 0;
  const denied = responseOf(t, await post(admissionReview(prometheusPod({ annotations: { 'thanos-injector/log-level': 'loud' } }))));
  t.equal(denied.allowed, false);
  responseOf(t, await post(admissionReview(prometheusPod())));

  const metrics = await httpGet(healthPort, '/metrics');
  t.equal(metrics.status, 200);
  t.match(metrics.headers['content-type'], /^text\/plain/);
  t.match(metrics.text, /^thanos_injector_admissions_total\{[^}]*outcome="denied"[^}]*\} \d+/m, 'the denied admission is counted by outcome');
  t.match(metrics.text, /^thanos_injector_admissions_total\{[^}]*outcome="injected"[^}]*reason="injected"[^}]*\} \d+/m);
  t.equal(metricValue(metrics.text, 'thanos_injector_admissions_total', { outcome: 'denied', reason: 'invalid-annotation' }), before + 1, 'exactly one more denied admission');
  t.match(metrics.text, /^thanos_injector_admission_duration_seconds_bucket\{[^}]*outcome="injected"[^}]*\} \d+/m, 'the duration histogram has buckets by outcome');
  t.match(metrics.text, /^thanos_injector_certificate_expiry_timestamp_seconds \d/m);
});

void t.test('one JSON log line per admission, with no secret from the pod anywhere in the log', async (t) => {
  const { serve, port, ca } = await startServe(t, { args: ['--drain-timeout', '2'] });

  const secretPod = prometheusPod({
    name: 'prometheus-secret',
    env: [{ name: 'REMOTE_WRITE_PASSWORD', value: 'SuperSecret-hunter2' }],
    annotations: { 'example.com/api-token': 'token-abc123' },
  });
  const reviews = [
    admissionReview(secretPod, { uid: 'log-uid-injected', namespace: 'monitoring' }),
    admissionReview({ ...secretPod, metadata: { ...(secretPod.metadata as Json), annotations: { 'example.com/api-token': 'token-abc123', 'thanos-injector/block-duration': 'banana' } } }, { uid: 'log-uid-denied', namespace: 'monitoring' }),
    admissionReview(secretPod, { uid: 'log-uid-skipped', namespace: 'kube-system' }),
  ];
  for (const review of reviews) {
    const answer = await postReview(port, ca, review);
    t.equal(answer.status, 200, answer.text.slice(0, 200));
  }
  // Bad bodies are not admissions: they get no "admission" line.
  t.equal((await postReview(port, ca, '{not json SuperSecret-hunter2')).status, 400);

  const lines = await waitFor('three admission log lines', () => {
    const found = serve.logLines().filter((line) => line.msg === 'admission');
    return Promise.resolve(found.length >= 3 ? found : undefined);
  }, 5000);
  await new Promise((resolve) => setTimeout(resolve, 200)); // anything late would show up too
  const admissions = serve.logLines().filter((line) => line.msg === 'admission');
  t.equal(admissions.length, 3, 'exactly one admission line per admission');
  t.same(admissions.map((line) => line.uid), ['log-uid-injected', 'log-uid-denied', 'log-uid-skipped']);
  for (const line of lines) {
    t.match(line, {
      uid: String,
      namespace: String,
      pod: 'prometheus-secret',
      outcome: String,
      reason: String,
      durationMs: Number,
    }, `fields of ${String(line.uid)}`);
    t.ok((line.durationMs as number) >= 0);
  }
  t.match(admissions[0], { namespace: 'monitoring', outcome: 'injected', reason: 'injected' });
  t.match(admissions[1], { outcome: 'denied', reason: 'invalid-annotation' });
  t.match(admissions[2], { namespace: 'kube-system', outcome: 'skipped', reason: 'namespace-excluded' });

  const log = serve.output;
  t.notOk(log.includes('SuperSecret-hunter2'), 'the env value appears nowhere in the log');
  t.notOk(log.includes('token-abc123'), 'the annotation value appears nowhere in the log');
  for (const line of log.split('\n').filter((l) => l.trim() !== '')) {
    t.doesNotThrow(() => void JSON.parse(line), `every log line is JSON: ${line.slice(0, 120)}`);
  }
});
