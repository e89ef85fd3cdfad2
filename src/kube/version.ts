// The cluster's Kubernetes version (for sidecarMode auto), read once at start-up from /version
// when a cluster is configured (in-cluster or a kubeconfig); undefined when none answers in time.
// The request is made with node:https and destroyed at the deadline, so a silent API can neither
// delay start-up past it nor keep the process alive afterwards.
import { existsSync } from 'node:fs';
import { request, type RequestOptions } from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';

export function clusterConfigured(): boolean {
  return (
    Boolean(process.env.KUBECONFIG) ||
    Boolean(process.env.KUBERNETES_SERVICE_HOST) ||
    existsSync(join(homedir(), '.kube', 'config'))
  );
}

export async function discoverKubernetesVersion(timeoutMs = 3000): Promise<string | undefined> {
  if (!clusterConfigured()) return undefined;
  const deadline = Date.now() + timeoutMs;
  try {
    const { KubeConfig } = await import('@kubernetes/client-node');
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromDefault();
    const server = kubeConfig.getCurrentCluster()?.server;
    if (!server) return undefined;
    const options: RequestOptions = {};
    await kubeConfig.applyToHTTPSOptions(options);
    return await new Promise<string | undefined>((resolve) => {
      const req = request(new URL('/version', server), { ...options, method: 'GET', timeout: Math.max(1, deadline - Date.now()) }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          try {
            resolve(res.statusCode === 200 ? (JSON.parse(body) as { gitVersion?: string }).gitVersion : undefined);
          } catch {
            resolve(undefined);
          }
        });
      });
      const timer = setTimeout(() => req.destroy(), Math.max(1, deadline - Date.now())).unref();
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(undefined));
      req.on('close', () => {
        clearTimeout(timer);
        resolve(undefined);
      });
      req.end();
    });
  } catch {
    return undefined;
  }
}
