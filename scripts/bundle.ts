// The CLI and its dependencies bundled by esbuild, with the version written in (nothing read from
// package.json at run time):
//   `node scripts/bundle.ts OUTDIR`: what the image runs (the Dockerfile's build stage; `npm run
//   bench` measures the same): ES modules split into chunks, so that `serve` loads its own code
//   and never the code only `check`, `register` or `certs` need (the Kubernetes client, the
//   certificate generator). A few files instead of ~1 100 modules: in the benchmark, idle RSS
//   94 -> 84 MB (certificate files) and start to ready about 1.0 -> 0.28 s. OUTDIR/packages.json lists the npm
//   packages whose code is in it (name@version, from esbuild's metafile), for the image's SBOM.
//   bundle({ outfile, format: 'cjs' }): one CommonJS file, what the one-file CLI (a single executable
//   application, which runs one script) embeds (scripts/release.ts).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { build, type BuildOptions } from 'esbuild';

const root = path.resolve(import.meta.dirname, '..');
const { version } = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };

/**
 * Packages package-lock.json installs for development only. They stay out of the bundle even when
 * a production package asks for them inside a try (debug's optional supports-color), as they stay
 * out of an `npm ci --omit=dev` install.
 */
function devOnly(): string[] {
  const lock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  const names = (dev: boolean) => new Set(Object.entries(lock.packages).filter(([where, entry]) => where !== '' && (entry.dev === true) === dev).map(([where]) => where.split('node_modules/').at(-1)!));
  const production = names(false);
  return [...names(true)].filter((name) => !production.has(name));
}

/**
 * Bundles src/main.ts (or `entry`, a file of this repository: the benchmark bundles its bare-fastify
 * baseline the same way): to `outdir` as split ES modules, or to `outfile` as one CommonJS file.
 */
export async function bundle(target: { outdir: string } | { outfile: string }, entry = 'src/main.ts'): Promise<void> {
  const esm = 'outdir' in target;
  const options: BuildOptions = {
    entryPoints: [path.join(root, entry)],
    bundle: true,
    platform: 'node',
    target: 'node24',
    minify: true,
    logLevel: 'warning',
    metafile: esm,
    external: devOnly(),
    ...(esm
      ? {
          outdir: target.outdir,
          format: 'esm',
          splitting: true,
          // CommonJS dependencies call require() for Node's own modules; an ES module has none.
          banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
        }
      : {
          outfile: target.outfile,
          format: 'cjs',
          // One script has no module file of its own to run again (src/certs/generate.ts then
          // makes certificates in-process).
          define: { 'import.meta.url': 'undefined', 'import.meta.main': 'false' },
        }),
    plugins: [{
      name: 'version',
      setup(builder) {
        builder.onLoad({ filter: /[\\/]src[\\/]version\.ts$/ }, () => ({ contents: `export const VERSION = ${JSON.stringify(version)};`, loader: 'ts' }));
      },
    }],
  };
  const result = await build(options);
  if (esm && result.metafile) {
    const packages = new Set<string>();
    for (const input of Object.keys(result.metafile.inputs)) {
      const dir = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input)?.[1];
      if (dir === undefined) continue;
      const meta = JSON.parse(fs.readFileSync(path.join(root, dir, 'package.json'), 'utf8')) as { name: string; version: string };
      packages.add(`${meta.name}@${meta.version}`);
    }
    fs.writeFileSync(path.join(target.outdir, 'packages.json'), `${JSON.stringify([...packages].sort(), null, 2)}\n`);
  }
}

if (import.meta.main) {
  const [outdir] = process.argv.slice(2);
  if (outdir === undefined) {
    console.error('usage: node scripts/bundle.ts OUTDIR');
    process.exit(2);
  }
  await bundle({ outdir: path.resolve(outdir) });
}
