// The one error tree: every error a user can cause is a CommandError with its exit code, reported
// by main as one line on stderr (no stack trace). Anything else is a bug: "unexpected", exit 70.

export class CommandError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** Wrong flags or arguments: exit code 2, like most CLIs. */
export class UsageError extends CommandError {
  constructor(message: string) {
    super(message, 2);
  }
}

/** A configuration file that cannot be read or is not valid: the field, the value and the accepted form. */
export class ConfigError extends CommandError {}

/** A JSON patch that does not apply to its document: the operation and why. */
export class PatchError extends CommandError {}

/** The message of anything thrown (an Error's message, else the value as text). */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
