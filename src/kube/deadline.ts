// A deadline for each Kubernetes API call (client-node's request middleware): a hung apiserver
// costs a bounded wait, never a stuck command or server.
import { Observable, type ConfigurationOptions, type ObservableMiddleware, type RequestContext, type ResponseContext } from '@kubernetes/client-node';

/** Request options that abort the call after `timeoutMs`, or as soon as `signal` aborts. */
export function deadline(timeoutMs: number, signal?: AbortSignal): ConfigurationOptions<ObservableMiddleware> {
  const middleware: ObservableMiddleware = {
    pre: (request: RequestContext) => {
      const timeout = AbortSignal.timeout(timeoutMs);
      request.setSignal(signal === undefined ? timeout : AbortSignal.any([timeout, signal]));
      return new Observable(Promise.resolve(request));
    },
    post: (response: ResponseContext) => new Observable(Promise.resolve(response)),
  };
  return { middleware: [middleware], middlewareMergeStrategy: 'append' };
}
