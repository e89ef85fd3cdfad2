// The small facts about certificates that generation, upkeep and `check` share.

/** Milliseconds in a day (certificate lifetimes and margins are counted in days). */
export const DAY_MS = 24 * 3600 * 1000;

/** The PEM certificates of a bundle, in order. */
export function pemCertificates(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}
