/**
 * Smoke proof of the test control plane (see ./README.md):
 *
 *   node test/cluster/smoke.ts
 *
 * Starts a cluster, then checks: the server version, that the controller-manager turns a
 * Deployment into a (Pending) Pod, helm, that a MutatingWebhookConfiguration with a
 * https://127.0.0.1:<port>/mutate URL is accepted (failurePolicy Ignore with nothing
 * listening: the Pod is still created), that a real webhook served by this Node process
 * on 127.0.0.1 is called and its JSONPatch applied, and that stop() leaves no process
 * and no state dir behind. Ends with "N passed, N failed" and exit code 0 when all passed.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { startCluster } from './cluster.ts';

let passed = 0;
let failed = 0;
function check(name: string, ok: boolean, detail = ''): void {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? 'ok    ' : 'FAILED'} ${name}${detail ? ` — ${detail}` : ''}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function unusedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const a = s.address() as net.AddressInfo;
      s.close(() => resolve(a.port));
    });
  });
}

function webhookConfig(name: string, url: string, caBundle: string, namespace: string): string {
  return JSON.stringify({
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name },
    webhooks: [
      {
        name: `${name}.smoke.test`,
        clientConfig: { url, caBundle },
        rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } },
        failurePolicy: 'Ignore',
        sideEffects: 'None',
        admissionReviewVersions: ['v1'],
        timeoutSeconds: 5,
      },
    ],
  });
}

function pod(name: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: { containers: [{ name: 'c', image: 'nginx' }] },
  });
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const cluster = await startCluster({ log: (m) => console.log(`  [cluster] ${m}`) });
  console.log(`cluster up in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${cluster.server}, dir ${cluster.dir}`);
  const binaries = [cluster.bin.etcd, cluster.bin.kubeApiserver, cluster.bin.kubeControllerManager];
  let webhookServer: https.Server | undefined;
  try {
    // Versions.
    const v = JSON.parse(await cluster.kubectlOk(['version', '-o', 'json'])) as {
      clientVersion: { gitVersion: string };
      serverVersion: { gitVersion: string };
    };
    const want = cluster.bin.versions.kubernetes;
    check(`kubectl version: server and client ${want}`, v.serverVersion.gitVersion === want && v.clientVersion.gitVersion === want, `server ${v.serverVersion.gitVersion}, client ${v.clientVersion.gitVersion}`);
    const hv = await cluster.helm(['version', '--short']);
    check(`helm version ${cluster.bin.versions.helm}`, hv.code === 0 && hv.stdout.startsWith(cluster.bin.versions.helm), hv.stdout.trim() || hv.stderr.trim());

    // Deployment -> ReplicaSet -> Pod (Pending: no scheduler).
    await cluster.kubectlOk(['create', 'namespace', 'monitoring']);
    await cluster.kubectlOk(['-n', 'monitoring', 'create', 'deployment', 'web', '--image=nginx']);
    let podLine = '';
    for (let i = 0; i < 120 && !podLine; i++) {
      const out = await cluster.kubectlOk(['-n', 'monitoring', 'get', 'pods', '-l', 'app=web', '-o', 'jsonpath={range .items[*]}{.metadata.name} {.status.phase}{"\\n"}{end}']);
      podLine = out.trim().split('\n')[0] ?? '';
      if (!podLine) await sleep(250);
    }
    check('controller-manager created a Pod for deployment web', /^web-\S+ Pending$/.test(podLine), podLine || 'no pod after 30 s');

    // helm talks to the cluster.
    const chartDir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoke-chart-'));
    try {
      fs.mkdirSync(path.join(chartDir, 'templates'));
      fs.writeFileSync(path.join(chartDir, 'Chart.yaml'), 'apiVersion: v2\nname: smoke\nversion: 0.1.0\n');
      fs.writeFileSync(
        path.join(chartDir, 'templates', 'cm.yaml'),
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cm\ndata:\n  kube: {{ .Capabilities.KubeVersion.Version | quote }}\n',
      );
      const hi = await cluster.helm(['install', 'smoke', chartDir, '-n', 'monitoring', '--wait', '--timeout', '60s']);
      const cm = await cluster.kubectl(['-n', 'monitoring', 'get', 'configmap', 'smoke-cm', '-o', 'jsonpath={.data.kube}']);
      check('helm install of a chart', hi.code === 0 && cm.code === 0 && cm.stdout === v.serverVersion.gitVersion, hi.code === 0 ? `Capabilities.KubeVersion ${cm.stdout}` : hi.stderr.trim());
    } finally {
      fs.rmSync(chartDir, { recursive: true, force: true });
    }

    const caBundle = fs.readFileSync(cluster.certs.ca).toString('base64');

    // A webhook URL on 127.0.0.1 that nothing listens on, failurePolicy Ignore: accepted, pod still created.
    const deadPort = await unusedPort();
    const cfg1 = await cluster.kubectl(['apply', '-f', '-'], webhookConfig('smoke-unreachable', `https://127.0.0.1:${deadPort}/mutate`, caBundle, 'monitoring'));
    check('MutatingWebhookConfiguration with url https://127.0.0.1:<port>/mutate accepted', cfg1.code === 0, (cfg1.stdout + cfg1.stderr).trim());
    const p1 = await cluster.kubectl(['-n', 'monitoring', 'create', '-f', '-'], pod('through-unreachable-webhook'));
    check('pod created despite the unreachable webhook (failurePolicy Ignore)', p1.code === 0, (p1.stdout + p1.stderr).trim());
    const apiLog = fs.readFileSync(path.join(cluster.dir, 'logs', 'kube-apiserver.log'), 'utf8');
    check('apiserver tried to call it', apiLog.includes('smoke-unreachable.smoke.test'), 'found "smoke-unreachable.smoke.test" in the apiserver log');
    await cluster.kubectlOk(['delete', 'mutatingwebhookconfiguration', 'smoke-unreachable']);

    // A real webhook served by this process on 127.0.0.1 with a cert from cluster.issueCert().
    const cert = await cluster.issueCert('smoke-webhook', { dnsNames: ['localhost'], ips: ['127.0.0.1'] });
    let calls = 0;
    webhookServer = https.createServer({ cert: fs.readFileSync(cert.cert), key: fs.readFileSync(cert.key) }, (req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('end', () => {
        calls++;
        const review = JSON.parse(body) as { request: { uid: string } };
        const patch = [{ op: 'add', path: '/metadata/labels', value: { 'smoke-mutated': 'yes' } }];
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            apiVersion: 'admission.k8s.io/v1',
            kind: 'AdmissionReview',
            response: { uid: review.request.uid, allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') },
          }),
        );
      });
    });
    await new Promise<void>((r) => webhookServer!.listen(0, '127.0.0.1', r));
    const port = (webhookServer.address() as net.AddressInfo).port;
    await cluster.kubectlOk(['apply', '-f', '-'], webhookConfig('smoke-live', `https://127.0.0.1:${port}/mutate`, caBundle, 'monitoring'));
    const p2 = await cluster.kubectl(['-n', 'monitoring', 'create', '-f', '-', '-o', 'jsonpath={.metadata.labels.smoke-mutated}'], pod('through-live-webhook'));
    check('live webhook on 127.0.0.1 called and its patch applied', p2.code === 0 && p2.stdout === 'yes' && calls === 1, `label smoke-mutated=${p2.stdout || '(none)'}, calls ${calls} ${p2.stderr.trim()}`);
  } finally {
    webhookServer?.close();
    const t1 = Date.now();
    await cluster.stop();
    console.log(`cluster stopped in ${((Date.now() - t1) / 1000).toFixed(1)} s`);
  }
  const alive = Object.entries(cluster.pids).filter(([, pid]) => {
    try {
      process.kill(pid, 0);
      return !/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch {
      return false;
    }
  });
  check('all control-plane processes exited', alive.length === 0, alive.map(([n, p]) => `${n}=${p}`).join(' ') || Object.values(cluster.pids).join(' '));
  // `pgrep -f` also lists the processes of other clusters on this machine (another test run, `cli.ts up`):
  // ours must not be among them, and none may still refer to our state dir.
  const pgrep = (pattern: string): number[] =>
    spawnSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l).map(Number);
  const all = [...new Set(['kube-apiserver', 'kube-controller-manager', 'etcd', ...binaries].flatMap(pgrep))];
  const ours = all.filter((pid) => Object.values(cluster.pids).includes(pid));
  const inDir = pgrep(cluster.dir);
  check(
    'pgrep -f kube-apiserver|kube-controller-manager|etcd: none of ours',
    ours.length === 0 && inDir.length === 0,
    all.length === 0 ? 'empty' : `ours: ${ours.join(' ') || 'none'}; others (another cluster on this machine): ${all.filter((p) => !ours.includes(p)).join(' ')}`,
  );
  check('state dir removed', !fs.existsSync(cluster.dir), cluster.dir);
}

main().then(
  () => {
    console.log(`${passed} passed, ${failed} failed`);
    process.exit(failed === 0 ? 0 : 1);
  },
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    console.log(`${passed} passed, ${failed + 1} failed`);
    process.exit(1);
  },
);
