// One source of truth for the injector's settings: the chart's values.schema.json `injection`
// block is the TypeBox config schema (src/config/schema.ts) less defaults (values.yaml holds
// them) and less `required` (every field is optional), without the two fields the chart fills in
// itself. This test fails when they differ; `UPDATE_SCHEMA=1 npx tap test/config/chart-schema.test.ts`
// writes the generated block into values.schema.json.
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigSchema } from '../../src/config/schema.ts';
import { loadConfig } from '../../src/config/load.ts';

const file = join(new URL('../..', import.meta.url).pathname, 'charts/thanos-sidecar-injector/values.schema.json');
/** Set by the chart's ConfigMap template from the release and from webhook.excludedNamespaces. */
const CHART_OWNED = ['injectorNamespace', 'excludedNamespaces'];

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function withoutDefaults(value: Json): Json {
  if (Array.isArray(value)) return value.map(withoutDefaults);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).filter(([key]) => key !== 'default' && key !== 'required').map(([key, inner]) => [key, withoutDefaults(inner)]));
}

function generated(): { [key: string]: Json } {
  const schema = withoutDefaults(JSON.parse(JSON.stringify(ConfigSchema)) as Json) as { properties: Record<string, Json> };
  for (const key of CHART_OWNED) delete schema.properties[key];
  return schema;
}

void t.test("values.schema.json's injection block is generated from the config schema", (t) => {
  const values = JSON.parse(readFileSync(file, 'utf8')) as { properties: Record<string, Json> };
  const expected = generated();
  if (process.env.UPDATE_SCHEMA === '1') {
    values.properties.injection = expected;
    writeFileSync(file, `${JSON.stringify(values, null, 2)}\n`);
  }
  t.same(values.properties.injection, expected, 'no drift (UPDATE_SCHEMA=1 rewrites it)');
  t.end();
});

void t.test('the two schemas refuse the same values: a block duration of 2h2h is not a Prometheus duration', async (t) => {
  const injection = (JSON.parse(readFileSync(file, 'utf8')) as { properties: { injection: { properties: { blockDuration: { pattern: string } } } } }).properties.injection;
  const pattern = new RegExp(injection.properties.blockDuration.pattern);
  t.notOk(pattern.test('2h2h'), "the chart's pattern refuses 2h2h");
  t.ok(pattern.test('1h30m'), 'and takes 1h30m');
  const dir = await mkdtemp(join(tmpdir(), 'chart-schema-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const config = join(dir, 'config.yaml');
  writeFileSync(config, 'blockDuration: 2h2h\n');
  await t.rejects(loadConfig(config), /blockDuration/, 'the config loader refuses it too');
});
