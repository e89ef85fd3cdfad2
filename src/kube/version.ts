// The cluster's Kubernetes version (for sidecarMode auto), read once at start-up from /version
// when a cluster is configured (in-cluster or a kubeconfig); undefined when none answers in time.
import { existsSync } from 'node:fs';
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
  const { KubeConfig, VersionApi } = await import('@kubernetes/client-node');
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
  const api = kubeConfig.makeApiClient(VersionApi);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), timeoutMs);
  });
  try {
    const info = await Promise.race([api.getCode(), timeout]);
    return info?.gitVersion;
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}
