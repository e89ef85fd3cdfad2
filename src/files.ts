// Files and paths, shared by every layer (it imports only Node): why a file could not be read, in
// words, for one-line errors ("cannot read X: no such file"), and paths as the kubelet mounts them.
import { posix } from 'node:path';

const REASONS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EISDIR: 'is a directory',
};

/** The reason for a failed read: plain words for the common errno codes, else the error's first message line. */
export function readFailure(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (typeof code === 'string' && REASONS[code] !== undefined) return REASONS[code];
  if (error instanceof Error) return error.message.split('\n')[0] || error.name;
  return String(error);
}

/** A path as the kubelet mounts it: normalised, without a trailing slash (normalised only when it
 * needs it, which keeps the admission path cheap). */
export function cleanPath(path: string): string {
  return /\/\/|\/\.|.\/$/.test(path) ? posix.normalize(path).replace(/(.)\/+$/, '$1') : path;
}
