// One version for everything a release ships: package.json's is what --version prints, the chart's
// version and appVersion (the image tag its values default to), and the release's file names
// (scripts/release.ts packages the chart with it).
import t from 'tap';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { VERSION } from '../src/version.ts';

const root = new URL('..', import.meta.url).pathname;
const { version } = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { version: string };

void t.test("the chart's version and appVersion are package.json's", (t) => {
  const chart = parse(readFileSync(`${root}charts/thanos-sidecar-injector/Chart.yaml`, 'utf8')) as { version: string; appVersion: string };
  t.equal(chart.version, version, 'bump Chart.yaml version with package.json');
  t.equal(chart.appVersion, version, 'bump Chart.yaml appVersion with package.json');
  t.end();
});

void t.test('--version prints it', (t) => {
  t.equal(VERSION, version);
  t.end();
});
