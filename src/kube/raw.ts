// A GET of one of the apiserver's own paths that is no API resource (/metrics), with the
// kubeconfig's credentials, under a deadline. Its body, or an ApiError naming the path and the
// answer (403 when the account may not read it).
import type { RequestOptions } from 'node:https';
import { ApiError, type Kube } from './client.ts';
import { HttpStatusError, send } from './light.ts';

export async function getRaw(kube: Pick<Kube, 'kubeConfig' | 'server'>, path: string, timeoutMs: number): Promise<string> {
  const options = async () => {
    const applied: RequestOptions = {};
    await kube.kubeConfig.applyToHTTPSOptions(applied);
    return applied;
  };
  try {
    return await send({ server: kube.server, options }, path, { timeoutMs });
  } catch (error) {
    if (error instanceof HttpStatusError) {
      const body = error.body.trim();
      throw new ApiError(`cannot read ${path} of ${kube.server}: HTTP ${error.code}${body === '' ? '' : `: ${body.split('\n')[0]!.slice(0, 200)}`}`);
    }
    const cause = (error as { cause?: Error }).cause ?? (error as Error);
    throw new ApiError(`cannot read ${path} of ${kube.server}: ${cause.message}`);
  }
}
