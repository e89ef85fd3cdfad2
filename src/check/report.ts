// How `check` prints its rows: an aligned table with a one-line tally, or JSON for scripts.
import { table } from '../table.ts';
import type { CheckRow, CheckStatus } from './rows.ts';

export type OutputFormat = 'table' | 'json';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['table', 'json'];

export function tally(rows: readonly CheckRow[]): Record<CheckStatus, number> {
  const counts: Record<CheckStatus, number> = { ok: 0, warn: 0, fail: 0, skip: 0 };
  for (const row of rows) counts[row.status] += 1;
  return counts;
}

export function formatTable(rows: readonly CheckRow[]): string {
  const counts = tally(rows);
  const verdict = counts.fail > 0 ? 'FAILED' : counts.warn > 0 ? 'passed with warnings' : 'passed';
  return table(['CHECK', 'STATUS', 'DETAIL'], rows.map((row) => [row.name, row.status, row.detail])) +
    `\n${verdict}: ${counts.ok} ok, ${counts.warn} warn, ${counts.fail} fail, ${counts.skip} skip\n`;
}

export function formatJson(rows: readonly CheckRow[]): string {
  return `${JSON.stringify({ checks: rows, summary: tally(rows) }, null, 2)}\n`;
}

export function format(rows: readonly CheckRow[], output: OutputFormat): string {
  return output === 'json' ? formatJson(rows) : formatTable(rows);
}
