// The cluster's Kubernetes version (for sidecarMode auto), read once at start-up from /version
// when a cluster is configured (in-cluster or a kubeconfig); undefined when none answers in time.
// The request is destroyed at the deadline, so a silent API can neither delay start-up past it nor
// keep the process alive afterwards.
import { connectLight, sendJson } from './light.ts';

export { clusterConfigured } from './light.ts';

export async function discoverKubernetesVersion(timeoutMs = 3000): Promise<string | undefined> {
  try {
    const connection = await connectLight();
    if (connection === undefined) return undefined;
    return (await sendJson<{ gitVersion?: string }>(connection, '/version', { timeoutMs })).gitVersion;
  } catch {
    return undefined;
  }
}
