// A GET of one of the apiserver's own paths that is no API resource (/metrics), with the
// kubeconfig's credentials, under a deadline. Its body, or an ApiError naming the path and the
// answer (403 when the account may not read it).
import { request, type RequestOptions } from 'node:https';
import { ApiError, type Kube } from './client.ts';

export async function getRaw(kube: Pick<Kube, 'kubeConfig' | 'server'>, path: string, timeoutMs: number): Promise<string> {
  const options: RequestOptions = {};
  await kube.kubeConfig.applyToHTTPSOptions(options);
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, kube.server), { ...options, method: 'GET', timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        if (res.statusCode === 200) resolve(body);
        else reject(new ApiError(`cannot read ${path} of ${kube.server}: HTTP ${res.statusCode ?? 0}${body.trim() === '' ? '' : `: ${body.trim().split('\n')[0]!.slice(0, 200)}`}`));
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs / 1000}s`)));
    req.on('error', (error) => reject(new ApiError(`cannot read ${path} of ${kube.server}: ${error.message}`)));
    req.end();
  });
}
