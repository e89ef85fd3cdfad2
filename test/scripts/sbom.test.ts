// The release's SBOM components from package-lock.json: production packages only, one per name and
// version (however often the lock nests it), scoped names split as CycloneDX wants them, the
// license as an id, an expression or a name, the lock's integrity as a SHA-512 hash.
import t from 'tap';
import { lockComponents, npmPurl } from '../../scripts/sbom.ts';

const integrity = `sha512-${Buffer.alloc(64, 7).toString('base64')}`;
const lock = JSON.stringify({
  lockfileVersion: 3,
  packages: {
    '': { name: 'app', version: '1.0.0' },
    'node_modules/@scope/lib': { version: '2.1.0', integrity, license: 'Apache-2.0' },
    'node_modules/plain': { version: '1.0.0', integrity, license: '(MIT OR Apache-2.0)' },
    'node_modules/plain/node_modules/nested': { version: '3.0.0', license: 'SEE LICENSE IN LICENSE.md' },
    'node_modules/other/node_modules/nested': { version: '3.0.0' },
    'node_modules/nested': { version: '4.0.0' },
    'node_modules/tool': { version: '9.9.9', dev: true },
    'node_modules/linked': { resolved: 'packages/linked', link: true },
  },
});

void t.test('the production packages of a lock, once each', (t) => {
  const components = lockComponents(lock);
  t.same(components.map((c) => c.purl), ['pkg:npm/%40scope/lib@2.1.0', 'pkg:npm/nested@3.0.0', 'pkg:npm/nested@4.0.0', 'pkg:npm/plain@1.0.0'], 'no dev package, no link, nested 3.0.0 once');
  t.match(components[0], { type: 'library', 'bom-ref': 'pkg:npm/%40scope/lib@2.1.0', group: '@scope', name: 'lib', version: '2.1.0', licenses: [{ license: { id: 'Apache-2.0' } }], hashes: [{ alg: 'SHA-512', content: '07'.repeat(64) }] });
  t.same(components[3]?.licenses, [{ expression: 'MIT OR Apache-2.0' }], 'an SPDX expression');
  t.same(components[1]?.licenses, [{ license: { name: 'SEE LICENSE IN LICENSE.md' } }], 'a license that is no SPDX id, by name');
  t.notOk('hashes' in components[2]!, 'no integrity, no hash');
  t.equal(npmPurl('@scope/lib', '2.1.0'), 'pkg:npm/%40scope/lib@2.1.0');
  t.end();
});

void t.test('a lock without "packages" (npm 6) is refused with the reason', (t) => {
  t.throws(() => lockComponents(JSON.stringify({ lockfileVersion: 1, dependencies: {} })), /lockfileVersion 1 has no "packages" \(npm 7 or later writes it\)/);
  t.end();
});
