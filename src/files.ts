// Why a file could not be read, in words, for one-line errors ("cannot read X: no such file").
// Shared by the commands and the config loader; imports nothing, so any module can use it.

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
