// A container's log lines, read for one row of `check`: the line that names a failure, shortened
// to what it says (the msg and err of a logfmt or JSON line, without the stack trace Thanos adds).
// Pure.

const MAX_MESSAGE = 300;

function shorten(text: string): string {
  return text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE - 3)}...` : text;
}

/** A logfmt value as written: `\"` and `\\` unescaped, and only its first line (Thanos appends the stack there). */
function firstLineOf(escaped: string): string {
  const value = escaped.replace(/\\(.)/g, (_whole, char: string) => (char === 'n' ? '\n' : char === 't' ? '\t' : char));
  return value.split('\n')[0] ?? '';
}

/** What a log line says: its msg and err values (`msg: err`), else the line itself. */
export function logMessage(line: string): string {
  const trimmed = line.trim();
  if (trimmed.startsWith('{')) {
    try {
      const entry = JSON.parse(trimmed) as Record<string, unknown>;
      const parts = ['msg', 'err', 'error'].map((key) => entry[key]).filter((value): value is string => typeof value === 'string' && value !== '');
      if (parts.length > 0) return shorten(parts.map((part) => part.split('\n')[0] ?? '').join(': '));
    } catch {
      // Not JSON after all: read it as text.
    }
  }
  const fields = /(?:^|\s)(?:msg|err)=(?:"((?:[^"\\]|\\.)*)"|(\S+))/g;
  const parts = [...trimmed.matchAll(fields)].map((m) => (m[1] === undefined ? (m[2] ?? '') : firstLineOf(m[1])));
  return shorten(parts.length > 0 ? parts.join(': ') : trimmed);
}

/** The last log line matching `pattern`, as its message; undefined when none matches. */
export function lastLine(log: string, pattern: RegExp): string | undefined {
  const lines = log.split('\n').filter((line) => pattern.test(line));
  const line = lines[lines.length - 1];
  return line === undefined ? undefined : logMessage(line);
}

const ERROR_LINE = /\blevel=(?:error|fatal|ERROR|FATAL)\b|"level":"(?:error|fatal)"|^panic:|^Error:|^error:/;

/** The line of a log that says why the process ended: the last error line, else the last line. */
export function lastError(log: string): string | undefined {
  const lines = log.split('\n').filter((line) => line.trim() !== '');
  const errors = lines.filter((line) => ERROR_LINE.test(line));
  const line = errors[errors.length - 1] ?? lines[lines.length - 1];
  return line === undefined ? undefined : logMessage(line);
}
