// Flag parsing for every command (node:util parseArgs), with usage errors that name the flag.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { messageOf, UsageError } from '../errors.ts';

export type Options = NonNullable<ParseArgsConfig['options']>;

export function parseFlags<T extends Options>(argv: string[], options: T, command: string) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: false, strict: true });
  } catch (error) {
    throw new UsageError(`${messageOf(error).replace(/\. To specify.*$/s, '')}\nRun 'thanos-injector ${command} --help' for usage.`);
  }
}

export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
export const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** A flag whose value must be a Kubernetes name: returns it, or a usage error naming the form. */
export function checkName(flag: string, value: string, pattern: RegExp, accepted: string): string {
  if (!pattern.test(value)) throw new UsageError(`--${flag}: "${value}" is not valid; expected ${accepted}`);
  return value;
}

/** A numeric flag: its value, `fallback` when absent, or a usage error naming the accepted range. */
export function numberFlag(flag: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < min || value > max) {
    throw new UsageError(`--${flag}: "${text}" is not valid; expected a number from ${min} to ${max}`);
  }
  return value;
}

/** A TCP port flag: a whole number from 0 (any free port) to 65535. */
export function portFlag(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const port = Number(text);
  if (!/^[0-9]+$/.test(text) || port > 65535) throw new UsageError(`--${flag}: "${text}" is not valid; expected a port number from 0 to 65535`);
  return port;
}
