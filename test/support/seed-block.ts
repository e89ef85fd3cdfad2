// A TSDB block the size of the seed's (not a test file): its Prometheus scrapes itself every 5 s, so a
// 2 h block holds its own series at 1440 samples each. Built by the real promtool from an
// OpenMetrics file of the series the running Prometheus exposes, counters rising and gauges moving a
// little as they do, over a 2 h window days back (no overlap with what Prometheus holds).
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exec } from '../cluster/cluster.ts';

const SCRAPE_SECONDS = 5;
const BLOCK_SECONDS = 2 * 3600;

export interface SeedBlock {
  /** The folder holding the block (its name is the ULID). */
  dir: string;
  ulid: string;
  series: number;
  samples: number;
}

/** `exposition`: Prometheus' own /metrics text. `start`: the window's start, Unix seconds, aligned to 2 h. */
export async function seedSizeBlock(promtool: string, exposition: string, work: string, start: number): Promise<SeedBlock> {
  const series = exposition.split('\n').filter((line) => line !== '' && !line.startsWith('#')).map((line) => {
    const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0] ?? '';
    const labels = /^[^{ ]*(\{.*\})? /.exec(line)?.[1] ?? '';
    return { name, labels, value: Number(line.slice(line.lastIndexOf(' ') + 1)) || 0 };
  }).filter((s) => s.name !== '');
  const families = new Map<string, typeof series>();
  for (const s of series) families.set(s.name, [...(families.get(s.name) ?? []), s]);
  const lines: string[] = [];
  let seed = 1;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) % 7;
  for (const [name, members] of families) {
    lines.push(`# TYPE ${name} gauge`);
    const rising = /_(total|count|sum|bucket)$/.test(name);
    for (const { labels, value } of members) {
      let current = value;
      for (let t = 0; t < BLOCK_SECONDS; t += SCRAPE_SECONDS) {
        current = rising ? current + next() : value + next();
        lines.push(`${name}${labels} ${current} ${start + t}`);
      }
    }
  }
  lines.push('# EOF', '');
  const input = join(work, 'seed-size.om');
  await writeFile(input, lines.join('\n'));
  const out = join(work, 'seed-size-blocks');
  await mkdir(out, { recursive: true });
  const created = await exec(promtool, ['tsdb', 'create-blocks-from', 'openmetrics', input, out], undefined, { timeoutMs: 300_000 });
  if (created.code !== 0) throw new Error(`promtool tsdb create-blocks-from openmetrics failed: ${created.stderr.slice(-2000)}`);
  const ulids = (await readdir(out)).filter((name) => /^[0-9A-Z]{26}$/.test(name));
  if (ulids.length !== 1) throw new Error(`expected one block from promtool, got ${ulids.join(', ') || 'none'}`);
  return { dir: join(out, ulids[0]!), ulid: ulids[0]!, series: series.length, samples: series.length * (BLOCK_SECONDS / SCRAPE_SECONDS) };
}
