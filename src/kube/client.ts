// The commands' connection to the API (client-node; register and check), every call under a
// deadline, and API failures turned into one line that names the operation and the HTTP status.
import { ApiException, CoreV1Api, createConfiguration, KubeConfig, ServerConfiguration } from '@kubernetes/client-node';
import { CommandError, messageOf } from '../errors.ts';
import { readFailure } from '../files.ts';
import { deadline } from './deadline.ts';

export interface Kube {
  kubeConfig: KubeConfig;
  core: CoreV1Api;
  /** The API server's URL, for messages. */
  server: string;
}

/**
 * From `--kubeconfig FILE`, else KUBECONFIG, ~/.kube/config or the in-cluster service account.
 * Each call of `core` gives up after `timeoutMs` (a call may set a shorter deadline of its own);
 * watches are made from `kubeConfig` and are not bounded.
 */
export function connect(kubeconfigFile: string | undefined, timeoutMs = 30_000): Kube {
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
    middleware: deadline(timeoutMs).middleware,
  });
  return { kubeConfig, core: new CoreV1Api(configuration), server: cluster.server };
}

/** The HTTP status of a failed API call, or undefined when the request never got an answer. */
export function statusOf(error: unknown): number | undefined {
  if (error instanceof ApiException) return error.code;
  // client-node's Watch reports a refused watch as an Error with statusCode.
  const statusCode = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof statusCode === 'number' ? statusCode : undefined;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  410: 'Gone',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** The apiserver's own explanation: the message of the Status object it answered with. */
function statusMessage(body: unknown): string | undefined {
  let status: unknown = body;
  if (typeof body === 'string') {
    try {
      status = JSON.parse(body);
    } catch {
      return body.trim().split('\n')[0] || undefined;
    }
  }
  const message = (status as { message?: unknown } | null)?.message;
  return typeof message === 'string' && message !== '' ? message : undefined;
}

/** One line: `<operation>: HTTP 403 Forbidden: <apiserver message>` or `<operation>: <network failure> (<server>)`. */
export function describeApiError(operation: string, error: unknown, server: string): string {
  const code = statusOf(error);
  if (code !== undefined) {
    const text = STATUS_TEXT[code];
    const message = error instanceof ApiException ? statusMessage(error.body) : undefined;
    return `${operation}: HTTP ${code}${text ? ` ${text}` : ''}${message ? `: ${message}` : ''}`;
  }
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  const reason = typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : messageOf(error);
  return `${operation}: no answer from the API server ${server}: ${reason.split('\n')[0]}`;
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
