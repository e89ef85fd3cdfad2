/**
 * Everything the node tests need that comes from outside, done before they enter their network
 * namespace (which has no route out): the Debian packages (containerd, runc, CNI plugins, buildah,
 * busybox-static, iptables), the control plane and node binaries (build.ts), the OCI registry the
 * install scenario pulls from (build.ts ensureRegistry(); for the newest Kubernetes release only,
 * the one that scenario runs on), and the images (images.ts). Each step is cached and redone only
 * when its inputs change.
 *
 *   node test/cluster/prepare-node.ts [--json]
 */
import { ensureCosign, ensureNodeTools, ensureRegistry, ensureTools, kubernetesRelease } from './build.ts';
import { ensureNodeImages, ensureNodePackages } from './images.ts';

const log = (message: string) => console.error(`[test/cluster/prepare-node] ${message}`);

export async function prepareNode() {
  const started = Date.now();
  const step = async <T>(what: string, work: () => Promise<T> | T): Promise<T> => {
    const at = Date.now();
    const result = await work();
    log(`${what}: ${((Date.now() - at) / 1000).toFixed(1)} s`);
    return result;
  };
  await step('Debian packages', () => ensureNodePackages(log));
  const tools = await step('control plane binaries', () => ensureTools({ log }));
  const nodeTools = await step('node binaries', () => ensureNodeTools({ log }));
  const registry = kubernetesRelease() === 'newest' ? await step('OCI registry', () => ensureRegistry({ log })) : undefined;
  // The install scenario signs and verifies the image in that registry.
  if (registry !== undefined) await step('cosign', () => ensureCosign({ log }));
  const images = await step('images', () => ensureNodeImages(nodeTools, log));
  log(`ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { tools, nodeTools, registry, images };
}

if (import.meta.main) {
  prepareNode().then(
    (prepared) => {
      if (process.argv.includes('--json')) console.log(JSON.stringify(prepared, null, 2));
    },
    (error: unknown) => {
      console.error(error instanceof Error ? error.message : error);
      process.exit(1);
    },
  );
}
