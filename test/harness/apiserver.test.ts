import t from 'tap';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generate } from 'selfsigned';
import { admit, admitWithReinvocation } from './apiserver.ts';
import type { AdmitOptions } from './apiserver.ts';
import { isRecord } from './json.ts';
import type { JsonRecord } from './json.ts';

/** The part of a tap Test the server helper needs. */
interface Test {
  teardown(fn: () => unknown): void;
}

interface Received {
  method: string | undefined;
  url: string | undefined;
  headers: IncomingMessage['headers'];
  review: JsonRecord;
}

/** What the fake webhook answers: a JSON value (200) or a full HTTP answer. */
type Answer = unknown; // a JSON value (200), or { httpStatus, contentType?, raw } for a full HTTP answer

/** Answer marker: keep the request open and never answer. */
const HANG = Symbol('hang');

const SERVICE_NAME = 'thanos-injector.monitoring.svc';

async function cert(altNames: ({ type: 7; ip: string } | { type: 2; value: string })[], cn = '127.0.0.1') {
  return generate([{ name: 'commonName', value: cn }], {
    algorithm: 'sha256',
    keyType: 'ec',
    extensions: [{ name: 'subjectAltName', altNames }],
  });
}

const ipCert = cert([{ type: 7, ip: '127.0.0.1' }]);

/**
 * Start an HTTPS webhook on 127.0.0.1:0 whose answer is computed by `handler`
 * from the received AdmissionReview. Closed at the end of the test.
 */
async function startWebhook(
  t: Test,
  handler: (review: JsonRecord) => Answer,
  pems?: { private: string; cert: string },
): Promise<{ url: string; ca: string; received: Received[] }> {
  const { private: key, cert: crt } = pems ?? (await ipCert);
  const received: Received[] = [];
  const server = https.createServer({ key, cert: crt }, (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as JsonRecord;
      received.push({ method: req.method, url: req.url, headers: req.headers, review });
      const answer = handler(review);
      if (answer === HANG) return; // never answer (timeout tests)
      if (isRecord(answer) && typeof answer.httpStatus === 'number' && typeof answer.raw === 'string') {
        res.writeHead(answer.httpStatus, { 'content-type': typeof answer.contentType === 'string' ? answer.contentType : 'application/json' });
        res.end(answer.raw);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  const { port } = server.address() as AddressInfo;
  return { url: `https://127.0.0.1:${port}/mutate`, ca: crt, received };
}

const requestOf = (review: JsonRecord): JsonRecord => (isRecord(review.request) ? review.request : {});

/** A v1 AdmissionReview answer echoing the request uid. */
function answer(review: JsonRecord, response: JsonRecord = {}): JsonRecord {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid: requestOf(review).uid, allowed: true, ...response },
  };
}

const b64 = (ops: unknown): string => Buffer.from(JSON.stringify(ops)).toString('base64');

/** A Prometheus pod as a StatefulSet controller creates it (blank metadata.namespace). */
function prometheusPod(): JsonRecord {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'prometheus-k8s-0', labels: { app: 'prometheus' } },
    spec: {
      containers: [
        {
          name: 'prometheus',
          image: 'quay.io/prometheus/prometheus:v3.1.0',
          args: ['--storage.tsdb.path=/prometheus'],
          volumeMounts: [{ name: 'data', mountPath: '/prometheus' }],
        },
      ],
      volumes: [{ name: 'data', emptyDir: {} }],
    },
  };
}

/**
 * A correct, idempotent injector: adds the annotations map (absent), a native
 * sidecar init container (initContainers absent) and a mount, unless the
 * sidecar is already there.
 */
function goodInjector(review: JsonRecord): JsonRecord {
  const pod = requestOf(review).object;
  const spec = isRecord(pod) && isRecord(pod.spec) ? pod.spec : {};
  const already = Array.isArray(spec.initContainers) && spec.initContainers.some((c) => isRecord(c) && c.name === 'thanos-sidecar');
  if (already) return answer(review);
  const ops = [
    { op: 'add', path: '/metadata/annotations', value: { 'thanos-injector/status': 'injected' } },
    {
      op: 'add',
      path: '/spec/initContainers',
      value: [
        {
          name: 'thanos-sidecar',
          image: 'quay.io/thanos/thanos:v0.37.2',
          restartPolicy: 'Always',
          args: ['sidecar', '--tsdb.path=/prometheus'],
          ports: [{ name: 'grpc', containerPort: 10901 }],
          readinessProbe: { httpGet: { port: 10902, path: '/-/ready' } },
          resources: { limits: { memory: '256Mi' } },
          volumeMounts: [{ name: 'data', mountPath: '/prometheus' }],
        },
      ],
    },
    { op: 'add', path: '/metadata/annotations/thanos-injector~1version', value: '0.1.0' },
  ];
  return answer(review, {
    patchType: 'JSONPatch',
    patch: b64(ops),
    warnings: ['injected thanos-sidecar', 'bad\nwarning'],
    auditAnnotations: { injected: 'true' },
  });
}

const opts = (server: { url: string; ca: string }, extra: Partial<AdmitOptions> = {}): AdmitOptions => ({
  url: server.url,
  ca: server.ca,
  namespace: 'monitoring',
  ...extra,
});

void t.test('(a) a good patch is applied, defaulted and validated', async (t) => {
  const server = await startWebhook(t, goodInjector);
  const input = prometheusPod();
  const inputCopy = JSON.stringify(input);
  const result = await admit(input, opts(server, { name: '' }));
  t.equal(JSON.stringify(input), inputCopy, 'input not modified');

  t.equal(result.allowed, true);
  t.equal(result.httpStatus, 200);
  t.equal(result.webhookError, undefined);
  t.equal(result.ops.length, 3);
  t.equal(result.changed, true);
  t.same(result.warnings, ['injected thanos-sidecar']);
  t.same(result.droppedWarnings, ['bad\nwarning'], 'a warning with a control character is dropped');
  t.same(result.auditAnnotations, { injected: 'true' });
  t.match(result.object, {
    metadata: { annotations: { 'thanos-injector/status': 'injected', 'thanos-injector/version': '0.1.0' } },
    spec: {
      restartPolicy: 'Always',
      initContainers: [
        {
          name: 'thanos-sidecar',
          imagePullPolicy: 'IfNotPresent',
          terminationMessagePolicy: 'File',
          ports: [{ protocol: 'TCP' }],
          readinessProbe: { periodSeconds: 10, httpGet: { scheme: 'HTTP' } },
          resources: { requests: { memory: '256Mi' } },
        },
      ],
    },
  });

  // What the webhook received: the apiserver's request, over HTTPS/1.1.
  t.equal(server.received.length, 1);
  const got = server.received[0];
  if (!got) return;
  t.equal(got.method, 'POST');
  t.equal(got.url, '/mutate?timeout=10s');
  t.match(got.headers['content-type'], /^application\/json/);
  t.match(got.headers.accept, /application\/json/);
  t.match(got.review, { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' });
  const req = requestOf(got.review);
  t.match(req.uid, /^[0-9a-f-]{36}$/);
  t.same(req.kind, { group: '', version: 'v1', kind: 'Pod' });
  t.same(req.requestKind, { group: '', version: 'v1', kind: 'Pod' });
  t.same(req.resource, { group: '', version: 'v1', resource: 'pods' });
  t.same(req.requestResource, { group: '', version: 'v1', resource: 'pods' });
  t.equal(req.name, '');
  t.equal(req.namespace, 'monitoring');
  t.equal(req.operation, 'CREATE');
  t.equal(req.dryRun, false);
  t.equal(req.oldObject, null);
  t.same(req.options, { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' });
  t.match(req.userInfo, { username: 'system:serviceaccount:kube-system:replicaset-controller' });
  t.notOk('subResource' in req);
  t.match(req.object, { spec: { dnsPolicy: 'ClusterFirst', containers: [{ imagePullPolicy: 'IfNotPresent' }] } }, 'the webhook sees a defaulted pod');
});

void t.test('(a) reinvocation: the second call gets the mutated pod, a fresh uid, and changes nothing', async (t) => {
  const server = await startWebhook(t, goodInjector);
  const { first, second } = await admitWithReinvocation(prometheusPod(), opts(server));
  t.equal(first.changed, true);
  t.equal(second.changed, false);
  t.same(second.ops, []);
  t.same(second.object, first.object);
  const [r1, r2] = server.received.map((r) => requestOf(r.review));
  t.not(r1?.uid, r2?.uid, 'fresh uid');
  t.equal(r1?.name, 'prometheus-k8s-0', 'name defaults to metadata.name');
  t.same(r2?.object, first.object);
});

void t.test('(a) a non-idempotent webhook is visible on reinvocation', async (t) => {
  const server = await startWebhook(t, (review) =>
    answer(review, { patchType: 'JSONPatch', patch: b64([{ op: 'add', path: '/spec/containers/0/args/-', value: '--x' }]) }),
  );
  const { second } = await admitWithReinvocation(prometheusPod(), opts(server));
  t.equal(second.changed, true);
  t.match(second.object, { spec: { containers: [{ args: ['--storage.tsdb.path=/prometheus', '--x', '--x'] }] } });
});

void t.test('(b) a wrong uid is a webhook error: Fail throws, Ignore fails open', async (t) => {
  const server = await startWebhook(t, (review) => ({
    ...goodInjector(review),
    response: { uid: 'not-the-uid', allowed: true },
  }));
  await t.rejects(admit(prometheusPod(), opts(server)), /^failed calling webhook: expected response\.uid=".*", got "not-the-uid"$/);
  await t.rejects(admit(prometheusPod(), opts(server, { failurePolicy: 'Fail' })), /failed calling webhook/);

  const ignored = await admit(prometheusPod(), opts(server, { failurePolicy: 'Ignore' }));
  t.equal(ignored.allowed, true);
  t.match(ignored.webhookError, /expected response\.uid/);
  t.same(ignored.ops, []);
  t.equal(ignored.changed, false);
  t.same(ignored.object, ignored.sentObject, 'object unchanged');
});

void t.test('(c) a patch with a missing parent fails even with Ignore', async (t) => {
  const server = await startWebhook(t, (review) =>
    answer(review, {
      patchType: 'JSONPatch',
      // spec.volumes exists, but metadata.annotations does not
      patch: b64([{ op: 'add', path: '/metadata/annotations/thanos-injector~1status', value: 'injected' }]),
    }),
  );
  for (const failurePolicy of ['Fail', 'Ignore'] as const) {
    await t.rejects(
      admit(prometheusPod(), opts(server, { failurePolicy })),
      /^patch does not apply: json patch op 0 \(add "\/metadata\/annotations\/thanos-injector~1status"\).*doc is missing path/,
      failurePolicy,
    );
  }
});

void t.test('(d) allowed: false is a denial, not an exception', async (t) => {
  const server = await startWebhook(t, (review) =>
    answer(review, { allowed: false, status: { message: 'no thanos for you', reason: 'Forbidden' }, warnings: ['denied'] }),
  );
  for (const failurePolicy of ['Fail', 'Ignore'] as const) {
    const result = await admit(prometheusPod(), opts(server, { failurePolicy }));
    t.equal(result.allowed, false);
    t.same(result.status, { code: 403, message: 'no thanos for you', reason: 'Forbidden' });
    t.same(result.warnings, ['denied']);
    t.same(result.ops, []);
  }
  const coded = await startWebhook(t, (review) => answer(review, { allowed: false, status: { code: 422, message: 'x' } }));
  t.match((await admit(prometheusPod(), opts(coded))).status, { code: 422 });
  // a response without `allowed` decodes as allowed=false
  const silent = await startWebhook(t, (review) => ({ ...answer(review), response: { uid: requestOf(review).uid } }));
  t.equal((await admit(prometheusPod(), opts(silent))).allowed, false);
});

void t.test('response checks in the apiserver order', async (t) => {
  const cases: [string, (review: JsonRecord) => Answer, RegExp][] = [
    ['HTTP 500', () => ({ httpStatus: 500, raw: 'boom' }), /HTTP 500/],
    ['not JSON', () => ({ httpStatus: 200, raw: '<html>' }), /not JSON/],
    ['wrong content type', () => ({ httpStatus: 200, contentType: 'text/plain', raw: '{}' }), /serializer for text\/plain/],
    ['response absent', (r) => ({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: requestOf(r) }), /webhook response was absent/],
    ['v1beta1 answer', (r) => ({ ...answer(r), apiVersion: 'admission.k8s.io/v1beta1' }), /expected webhook response of admission\.k8s\.io\/v1, Kind=AdmissionReview/],
    ['wrong kind', (r) => ({ ...answer(r), kind: 'Status' }), /Kind=Status/],
    ['patch without patchType', (r) => answer(r, { patch: b64([]) }), /response\.patch but not response\.patchType/],
    ['bad patchType', (r) => answer(r, { patch: b64([]), patchType: 'MergePatch' }), /invalid response\.patchType of "MergePatch"/],
    ['patch is not base64', (r) => answer(r, { patch: '{not base64}', patchType: 'JSONPatch' }), /illegal base64/],
    ['warnings not strings', (r) => answer(r, { warnings: [1] }), /response\.warnings/],
    // the uid is checked before apiVersion/kind
    ['uid before kind', (r) => ({ ...answer(r), kind: 'Status', response: { uid: 'x', allowed: true } }), /expected response\.uid/],
  ];
  for (const [name, handler, expected] of cases) {
    const server = await startWebhook(t, handler);
    await t.rejects(admit(prometheusPod(), opts(server)), expected, name);
    const ignored = await admit(prometheusPod(), opts(server, { failurePolicy: 'Ignore' }));
    t.ok(ignored.allowed && ignored.webhookError !== undefined, `${name}: Ignore fails open`);
  }
});

void t.test('patchType without a patch, an empty patch and [] are no change', async (t) => {
  for (const response of [{ patchType: 'JSONPatch' }, { patchType: 'JSONPatch', patch: '' }, { patchType: 'JSONPatch', patch: b64([]) }, {}]) {
    const server = await startWebhook(t, (r) => answer(r, response));
    const result = await admit(prometheusPod(), opts(server));
    t.equal(result.allowed, true);
    t.equal(result.changed, false, JSON.stringify(response));
  }
});

void t.test('a patch that is not a JSON array fails even with Ignore', async (t) => {
  const server = await startWebhook(t, (r) => answer(r, { patchType: 'JSONPatch', patch: Buffer.from('{"op":"add"}').toString('base64') }));
  await t.rejects(admit(prometheusPod(), opts(server, { failurePolicy: 'Ignore' })), /^patch does not apply: patch is not a JSON array/);
});

void t.test('a patch that yields an invalid pod is rejected', async (t) => {
  const server = await startWebhook(t, (r) =>
    answer(r, {
      patchType: 'JSONPatch',
      patch: b64([
        { op: 'add', path: '/spec/containers/-', value: { name: 'prometheus', image: 'quay.io/thanos/thanos:v0.37.2' } },
        { op: 'add', path: '/spec/containers/0/volumeMounts/-', value: { name: 'tsdb', mountPath: '/tsdb' } },
      ]),
    }),
  );
  await t.rejects(
    admit(prometheusPod(), opts(server, { failurePolicy: 'Ignore' })),
    /^invalid pod after patch: .*spec\.containers\[0\]\.volumeMounts\[1\]\.name: Not found: "tsdb".*spec\.containers\[1\]\.name: Duplicate value: "prometheus"/,
  );
});

void t.test('TLS: the certificate is verified against the CA bundle', async (t) => {
  const server = await startWebhook(t, goodInjector);
  const other = await cert([{ type: 7, ip: '127.0.0.1' }]);
  await t.rejects(admit(prometheusPod(), { ...opts(server), ca: other.cert }), /^failed calling webhook: Post "https:\/\/127\.0\.0\.1:\d+\/mutate\?timeout=10s": /);
  const ignored = await admit(prometheusPod(), { ...opts(server), ca: other.cert, failurePolicy: 'Ignore' });
  t.equal(ignored.httpStatus, 0);
  t.ok(ignored.webhookError);

  // A serving cert for the Service DNS name: verified with `servername`.
  const svcCert = await cert([{ type: 2, value: SERVICE_NAME }], SERVICE_NAME);
  const svc = await startWebhook(t, goodInjector, svcCert);
  await t.rejects(admit(prometheusPod(), opts(svc)), /failed calling webhook/, 'an IP URL does not match a DNS-only SAN');
  const ok = await admit(prometheusPod(), opts(svc, { servername: SERVICE_NAME }));
  t.equal(ok.allowed, true);
  t.equal(ok.changed, true);
});

void t.test('timeoutSeconds is sent and enforced', async (t) => {
  const server = await startWebhook(t, goodInjector);
  await admit(prometheusPod(), opts(server, { timeoutSeconds: 3 }));
  t.equal(server.received[0]?.url, '/mutate?timeout=3s');

  const slow = await startWebhook(t, () => HANG);
  const started = Date.now();
  await t.rejects(admit(prometheusPod(), opts(slow, { timeoutSeconds: 1 })), /^failed calling webhook: .*context deadline exceeded/);
  t.ok(Date.now() - started < 5000, 'gave up after about timeoutSeconds');
  const ignored = await admit(prometheusPod(), opts(slow, { timeoutSeconds: 1, failurePolicy: 'Ignore' }));
  t.match(ignored.webhookError, /context deadline exceeded/);
});

void t.test('UPDATE and DELETE requests', async (t) => {
  const server = await startWebhook(t, goodInjector);
  const old = prometheusPod();
  // Adding containers on UPDATE is forbidden for Pods.
  await t.rejects(admit(prometheusPod(), opts(server, { operation: 'UPDATE', oldObject: old })), /pod updates may not add or remove containers/);
  const upd = requestOf(server.received[0]?.review ?? {});
  t.equal(upd.operation, 'UPDATE');
  t.same(upd.oldObject, old);
  t.same(upd.options, { apiVersion: 'meta.k8s.io/v1', kind: 'UpdateOptions' });

  const noop = await startWebhook(t, (r) => answer(r));
  const del = await admit(prometheusPod(), opts(noop, { operation: 'DELETE', dryRun: true }));
  t.equal(del.allowed, true);
  const delReq = requestOf(noop.received[0]?.review ?? {});
  t.equal(delReq.object, null);
  t.match(delReq.oldObject, { metadata: { name: 'prometheus-k8s-0' } });
  t.equal(delReq.dryRun, true);
  t.same(delReq.options, { apiVersion: 'meta.k8s.io/v1', kind: 'DeleteOptions' });

  // A patch on DELETE cannot be applied.
  await t.rejects(admit(prometheusPod(), opts(server, { operation: 'DELETE', failurePolicy: 'Ignore' })), /patch does not apply/);
});
