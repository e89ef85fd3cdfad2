// Errors a command reports as one line on stderr (no stack trace), with its exit code.
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
