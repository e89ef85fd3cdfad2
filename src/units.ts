// Parsing of Prometheus durations and Kubernetes quantities, as far as the injector compares them.

const DURATION_UNITS: Record<string, number> = {
  y: 365 * 24 * 3600e3,
  w: 7 * 24 * 3600e3,
  d: 24 * 3600e3,
  h: 3600e3,
  m: 60e3,
  s: 1e3,
  ms: 1,
};

/** Prometheus' duration syntax (model.ParseDuration): units largest first, each at most once. */
export const DURATION_PATTERN = /^(?:[0-9]+y)?(?:[0-9]+w)?(?:[0-9]+d)?(?:[0-9]+h)?(?:[0-9]+m)?(?:[0-9]+s)?(?:[0-9]+ms)?$/;

/** Milliseconds of a Prometheus duration (`2h`, `1h30m`, `90s`), or undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  if (text === '' || !DURATION_PATTERN.test(text)) return undefined;
  let total = 0;
  let amount = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 48 && code <= 57) {
      amount = amount * 10 + (code - 48);
      continue;
    }
    const unit = text[i] === 'm' && text[i + 1] === 's' ? 'ms' : (text[i] as string);
    if (unit === 'ms') i++;
    total += amount * (DURATION_UNITS[unit] ?? 0);
    amount = 0;
  }
  return total;
}

/** A TSDB block duration Prometheus will accept and that makes sense for uploads: 1m to 31d
 * (Prometheus' own ceiling for --storage.tsdb.max-block-duration). */
export function isBlockDuration(text: string): boolean {
  const ms = parseDuration(text);
  return ms !== undefined && ms >= 60_000 && ms <= 31 * DURATION_UNITS.d!;
}

const QUANTITY_SUFFIX: Record<string, number> = {
  '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};
export const QUANTITY_PATTERN = /^\+?([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|e[0-9]+)?$/;

/** The value of a Kubernetes quantity (`100m` -> 0.1, `1Gi` -> 1073741824), or undefined. */
export function parseQuantity(text: string): number | undefined {
  const match = QUANTITY_PATTERN.exec(text);
  if (!match) return undefined;
  const amount = Number(match[1]);
  const suffix = match[2] ?? '';
  if (suffix.startsWith('e')) return amount * 10 ** Number(suffix.slice(1));
  return amount * (QUANTITY_SUFFIX[suffix] ?? 1);
}

/** A span of milliseconds as people read it, at most two units: `3h`, `1h30m`, `45s`, `2d4h` (under a second: `0s`). */
export function formatDuration(ms: number): string {
  let seconds = Math.max(0, Math.round(ms / 1000));
  const parts: string[] = [];
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    if (seconds < size && !(unit === 's' && parts.length === 0)) continue;
    parts.push(`${Math.floor(seconds / size)}${unit}`);
    seconds %= size;
    if (parts.length === 2 || seconds === 0) break;
  }
  return parts.join('');
}
