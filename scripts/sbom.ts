// The release's SBOMs (CycloneDX 1.5, JSON): the npm package's production dependencies, read from
// package-lock.json (what `npm ci --omit=dev` installs, at the locked versions and integrity), and
// the image's: those same packages, the Node and npm releases of its base and the files its base
// copies from the build machine, each with the Debian package that ships it. `npm sbom --omit dev`
// is not used: npm 11.19 leaves out 34 of the 152 production packages (form-data and the others
// that only @kubernetes/client-node needs).
import { spawnSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';

interface LockEntry {
  version?: string;
  integrity?: string;
  license?: string;
  dev?: boolean;
  link?: boolean;
}

export interface Component {
  type: 'library' | 'application' | 'platform' | 'file' | 'container';
  'bom-ref': string;
  name: string;
  group?: string;
  version?: string;
  purl?: string;
  licenses?: ({ license: { id: string } | { name: string } } | { expression: string })[];
  hashes?: { alg: 'SHA-256' | 'SHA-512'; content: string }[];
}

export interface Bom {
  bomFormat: 'CycloneDX';
  specVersion: '1.5';
  serialNumber: string;
  version: 1;
  metadata: { timestamp: string; tools: { components: Component[] }; component: Component };
  components: Component[];
}

/** An npm package's purl: the scope's @ percent-encoded, as the purl specification says. */
export const npmPurl = (name: string, version: string) => `pkg:npm/${name.replace(/^@/, '%40')}@${version}`;

function licenses(license: string | undefined): Component['licenses'] {
  if (license === undefined || license === '') return undefined;
  if (/^[A-Za-z0-9.+-]+$/.test(license)) return [{ license: { id: license } }];
  if (/\b(OR|AND|WITH)\b/.test(license)) return [{ expression: license.replace(/^\((.*)\)$/, '$1') }];
  return [{ license: { name: license } }];
}

/** The production packages of a package-lock.json (v2 or v3), one component per name and version. */
export function lockComponents(lockText: string): Component[] {
  const lock = JSON.parse(lockText) as { lockfileVersion?: number; packages?: Record<string, LockEntry> };
  if (lock.packages === undefined) throw new Error(`package-lock.json: lockfileVersion ${lock.lockfileVersion ?? '?'} has no "packages" (npm 7 or later writes it)`);
  const components = new Map<string, Component>();
  for (const [where, entry] of Object.entries(lock.packages)) {
    if (where === '' || entry.dev === true || entry.link === true || entry.version === undefined) continue;
    const name = where.slice(where.lastIndexOf('node_modules/') + 'node_modules/'.length);
    const purl = npmPurl(name, entry.version);
    if (components.has(purl)) continue;
    const scope = name.startsWith('@') ? name.slice(0, name.indexOf('/')) : undefined;
    const sha512 = entry.integrity?.startsWith('sha512-') ? Buffer.from(entry.integrity.slice(7), 'base64').toString('hex') : undefined;
    const license = licenses(entry.license);
    components.set(purl, {
      type: 'library',
      'bom-ref': purl,
      name: scope === undefined ? name : name.slice(scope.length + 1),
      ...(scope === undefined ? {} : { group: scope }),
      version: entry.version,
      purl,
      ...(license === undefined ? {} : { licenses: license }),
      ...(sha512 === undefined ? {} : { hashes: [{ alg: 'SHA-512' as const, content: sha512 }] }),
    });
  }
  return [...components.values()].sort((a, b) => a['bom-ref'].localeCompare(b['bom-ref']));
}

export function bom(subject: Component, components: Component[]): Bom {
  return {
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    serialNumber: `urn:uuid:${randomUUID()}`,
    version: 1,
    metadata: {
      timestamp: new Date().toISOString(),
      tools: { components: [{ type: 'application', 'bom-ref': 'tool:thanos-sidecar-injector-release', name: 'scripts/release.ts', group: 'thanos-sidecar-injector' }] },
      component: subject,
    },
    components,
  };
}

const sha256 = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

function dpkg(args: string[]): string | undefined {
  const result = spawnSync('dpkg-query', args, { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

function debianComponent(name: string, version: string, arch: string): Component {
  const purl = `pkg:deb/debian/${name}@${encodeURIComponent(version)}?arch=${arch}`;
  return { type: 'library', 'bom-ref': purl, name, version, purl };
}

/** The Debian package that ships `file` (by its path, its real path, or its path under the merged /usr), if any. */
function debianPackageOf(file: string): Component | undefined {
  const real = fs.realpathSync(file);
  const candidates = [...new Set([file, real, ...[file, real].filter((p) => !p.startsWith('/usr/')).map((p) => `/usr${p}`)])];
  for (const candidate of candidates) {
    const owner = dpkg(['--search', candidate])?.split('\n')[0]?.split(':')[0];
    if (owner === undefined || owner === '') continue;
    const [version, arch] = (dpkg(['--show', '--showformat=${Version} ${Architecture}', owner]) ?? '').split(' ');
    if (!version) continue;
    return debianComponent(owner, version, arch ?? 'unknown');
  }
  return undefined;
}

/** The Debian package a file came from, for a file of a package downloaded, not installed. */
export interface DebianOrigin { name: string; version: string; arch: string }

/** What one platform's base holds (test/cluster/images.ts nodeBaseContents): files here, and the Debian origin of those no installed package ships. */
export interface BaseContents { node: string; npm: string; files: string[]; origins: Record<string, DebianOrigin> }

/**
 * The image's components: its production npm packages, the Node and npm releases of its base, and
 * each file the base of each platform copies from this machine (by SHA-256) with the Debian
 * package shipping it.
 */
export function imageComponents(npm: Component[], bases: BaseContents[]): Component[] {
  const [base] = bases;
  if (base === undefined) throw new Error('imageComponents: no base');
  const runtime: Component[] = [
    { type: 'platform', 'bom-ref': `pkg:generic/node@${base.node}`, name: 'node', version: base.node, purl: `pkg:generic/node@${base.node}`, licenses: [{ license: { id: 'MIT' } }] },
    { type: 'application', 'bom-ref': npmPurl('npm', base.npm), name: 'npm', version: base.npm, purl: npmPurl('npm', base.npm), licenses: [{ license: { id: 'Artistic-2.0' } }] },
  ];
  const packages = new Map<string, Component>();
  const files = new Map<string, Component>();
  for (const { files: paths, origins } of bases) {
    for (const file of paths) {
      files.set(file, { type: 'file', 'bom-ref': `file:${file}`, name: file, hashes: [{ alg: 'SHA-256', content: sha256(file) }] });
      const origin = origins[file];
      const owner = origin === undefined ? debianPackageOf(file) : debianComponent(origin.name, origin.version, origin.arch);
      if (owner !== undefined) packages.set(owner['bom-ref'], owner);
    }
  }
  return [...runtime, ...[...packages.values()].sort((a, b) => a['bom-ref'].localeCompare(b['bom-ref'])), ...files.values(), ...npm.filter((c) => c.purl !== runtime[1]!.purl)];
}
