// The connection to the API (client-node) of register, check and the certificate keeper: every call
// under a deadline; a failed call becomes an ApiError whose line names the operation (kube/errors.ts).
import { AdmissionregistrationV1Api, CoreV1Api, createConfiguration, KubeConfig, ServerConfiguration } from '@kubernetes/client-node';
import { CommandError } from '../errors.ts';
import { readFailure } from '../files.ts';
import { deadline } from './deadline.ts';
import { describeApiError } from './errors.ts';

export interface Kube {
  kubeConfig: KubeConfig;
  core: CoreV1Api;
  admission: AdmissionregistrationV1Api;
  /** The API server's URL, for messages. */
  server: string;
}

/**
 * From `--kubeconfig FILE`, else KUBECONFIG, ~/.kube/config or the in-cluster service account.
 * Each call gives up after `timeoutMs` (a call may set a shorter deadline of its own), or when
 * `signal` aborts (a shutdown); watches are made from `kubeConfig` and are not bounded.
 */
export function connect(kubeconfigFile: string | undefined, timeoutMs = 30_000, signal?: AbortSignal): Kube {
  const kubeConfig = new KubeConfig();
  try {
    if (kubeconfigFile === undefined) kubeConfig.loadFromDefault();
    else kubeConfig.loadFromFile(kubeconfigFile);
  } catch (error) {
    throw new CommandError(`cannot load kubeconfig ${kubeconfigFile ?? '(default)'}: ${readFailure(error)}`);
  }
  const cluster = kubeConfig.getCurrentCluster();
  if (cluster === null) throw new CommandError(`kubeconfig ${kubeconfigFile ?? '(default)'}: no current cluster; set current-context`);
  // What KubeConfig.makeApiClient does, with the deadline as the client's own middleware.
  const configuration = createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    authMethods: { default: kubeConfig },
    middleware: deadline(timeoutMs, signal).middleware,
  });
  return { kubeConfig, core: new CoreV1Api(configuration), admission: new AdmissionregistrationV1Api(configuration), server: cluster.server };
}

export class ApiError extends CommandError {}

/** Runs one API call; a failure becomes an ApiError (exit code 1) describing `operation`. */
export async function call<T>(kube: Pick<Kube, 'server'>, operation: string, request: () => Promise<T>): Promise<T> {
  try {
    return await request();
  } catch (error) {
    throw new ApiError(describeApiError(operation, error, kube.server));
  }
}
