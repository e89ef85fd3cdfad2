// A GET of one of the apiserver's own paths that is no API resource (/metrics), with the
// kubeconfig's credentials, under a deadline. Its body, or an ApiError naming the path and the
// answer (403 when the account may not read it).
import { ApiError, type Kube } from './client.ts';
import { describeApiError } from './errors.ts';
import { kubeConfigConnection, send } from './light.ts';

export async function getRaw(kube: Pick<Kube, 'kubeConfig' | 'server'>, path: string, timeoutMs: number): Promise<string> {
  try {
    return await send(kubeConfigConnection(kube.kubeConfig, kube.server), path, { timeoutMs });
  } catch (error) {
    throw new ApiError(describeApiError(`cannot read ${path}`, error, kube.server));
  }
}
