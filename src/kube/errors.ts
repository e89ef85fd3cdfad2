// A failed Kubernetes API call in one line, for every command and the certificate keeper: the
// operation, the HTTP status with its name and the apiserver's own message, or why no answer came.
// Reads client-node's errors by their shape, so importing it never loads client-node.
import { messageOf } from '../errors.ts';

/** The HTTP status of a failed API call (client-node's ApiException `code`, a refused watch's `statusCode`), or undefined when no answer came. */
export function statusOf(error: unknown): number | undefined {
  const { code, statusCode } = (error ?? {}) as { code?: unknown; statusCode?: unknown };
  for (const status of [code, statusCode]) if (typeof status === 'number' && status >= 100 && status < 600) return status;
  return undefined;
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

/** The apiserver's own explanation: the message (else the reason) of the Status object it answered with, or a text body's first line. */
function statusMessage(body: unknown): string | undefined {
  let status: unknown = body;
  if (typeof body === 'string') {
    try {
      status = JSON.parse(body);
    } catch {
      return body.trim().split('\n')[0] || undefined;
    }
  }
  const { message, reason } = (status ?? {}) as { message?: unknown; reason?: unknown };
  if (typeof message === 'string' && message !== '') return message;
  return typeof reason === 'string' && reason !== '' ? reason : undefined;
}

/**
 * One line: `<operation>: HTTP 403 Forbidden: <apiserver message>`, or
 * `<operation>: no answer from the API server[ <server>]: <network failure>`.
 */
/** What `call` answers, or undefined when the object is not there (404). */
export async function undefinedOn404<T>(call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (error) {
    if (statusOf(error) === 404) return undefined;
    throw error;
  }
}

export function describeApiError(operation: string, error: unknown, server?: string): string {
  const code = statusOf(error);
  if (code !== undefined) {
    const text = STATUS_TEXT[code];
    const message = statusMessage((error as { body?: unknown }).body);
    return `${operation}: HTTP ${code}${text ? ` ${text}` : ''}${message ? `: ${message}` : ''}`;
  }
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  const reason = typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : messageOf(error);
  return `${operation}: no answer from the API server${server ? ` ${server}` : ''}: ${reason.split('\n')[0]}`;
}
