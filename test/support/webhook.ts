// Starts the real webhook server in-process on 127.0.0.1 with freshly generated certificates,
// for tests that talk to it over HTTPS like the apiserver does.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { buildConfig } from '../../src/config/load.ts';
import { writeCertificates } from '../../src/certs/files.ts';
import { startServer, type RunningServer, type ServerOptions } from '../../src/server/server.ts';

export interface TestWebhook {
  server: RunningServer;
  url: string;
  ca: string;
  certDir: string;
  close(): Promise<void>;
}

export async function startTestWebhook(config: unknown = {}, overrides: Partial<ServerOptions> = {}): Promise<TestWebhook> {
  const certDir = await mkdtemp(join(tmpdir(), 'thanos-injector-test-'));
  const files = await writeCertificates(certDir, ['localhost', '127.0.0.1']);
  const server = await startServer({
    config: buildConfig(config),
    kubernetesVersion: '1.33',
    certFile: files.certFile,
    keyFile: files.keyFile,
    address: '127.0.0.1',
    port: 0,
    healthAddress: '127.0.0.1',
    healthPort: 0,
    logLevel: 'silent',
    drainTimeoutMs: 5000,
    shutdownDelayMs: 0,
    ...overrides,
  });
  return {
    server,
    url: `https://127.0.0.1:${server.port}/mutate`,
    ca: await readFile(files.caFile, 'utf8'),
    certDir,
    close: async () => {
      await server.shutdown();
      await rm(certDir, { recursive: true, force: true });
    },
  };
}
