/**
 * The node tests' whole stack for working by hand: control plane, a Ready node with the images
 * imported, and MinIO (bucket `thanos`, objstore YAML in the work folder), then an interactive
 * shell with KUBECONFIG, kubectl and helm ready. Everything stops when the shell exits (it all
 * lives in the namespaces of netns.ts, which end with it).
 *
 *   npm run cluster:node        # = node test/cluster/prepare-node.ts && node test/cluster/netns.ts node test/cluster/node-shell.ts
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startCluster } from './cluster.ts';
import { NODE_IP, startNode } from './node.ts';
import { prepareNode } from './prepare-node.ts';
import { Minio } from '../support/node.ts';

const log = (message: string) => console.error(`[cluster:node] ${message}`);

async function main(): Promise<number> {
  const { tools, nodeTools, images } = await prepareNode();
  const cluster = await startCluster({ tools, node: { ip: NODE_IP }, log });
  const work = path.join(cluster.dir, 'work');
  fs.mkdirSync(work);
  try {
    const node = await startNode(cluster, { bin: nodeTools, images: Object.values(images.tars), pauseImage: images.pause, log });
    const minio = new Minio(nodeTools.minio, path.join(work, 'minio'));
    try {
      await minio.ready();
      await minio.createBucket('thanos');
      fs.writeFileSync(path.join(work, 'objstore.yml'), minio.objstore('thanos'));
      const bin = path.join(work, 'bin');
      fs.mkdirSync(bin);
      for (const [name, target] of [['kubectl', tools.kubectl], ['helm', tools.helm], ['thanos', nodeTools.thanos]] as const) fs.symlinkSync(target, path.join(bin, name));
      log(`node ${node.name} (${node.ip}) Ready; images: ${Object.keys(images.tars).join(', ')}`);
      log(`MinIO on ${minio.endpoint}, bucket thanos; objstore config: ${path.join(work, 'objstore.yml')}`);
      log('exit the shell to stop everything');
      return await new Promise<number>((resolve) => {
        const shell = spawn(process.env.SHELL || 'bash', [], {
          stdio: 'inherit',
          cwd: work,
          env: { ...process.env, ...cluster.env, PATH: `${bin}:${process.env.PATH ?? ''}`, PS1: '[thanos-injector node] \\w $ ' },
        });
        shell.on('exit', (code) => resolve(code ?? 0));
      });
    } finally {
      await minio.stop();
      await node.stop();
    }
  } finally {
    await cluster.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  },
);
