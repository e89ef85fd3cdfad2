// Puts the webhook together: TLS (loaded, watched, reloaded), the admission app, the health app,
// and a graceful shutdown that stops readiness, drains in-flight reviews and closes.
import type { FastifyInstance } from 'fastify';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config/schema.ts';
import { buildHealthApp, type HealthState } from './health.ts';
import { buildWebhookApp } from './app.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { reduceMemoryWhenQuiet } from './quiet.ts';
import { CertificateReloader, expiryOf, loadKeyPair, type KeyPair } from './tls.ts';

export interface ServerOptions {
  config: Config;
  kubernetesVersion: string;
  certFile: string;
  keyFile: string;
  clientCa?: string;
  address: string;
  port: number;
  healthAddress: string;
  healthPort: number;
  logLevel: string;
  /** How long in-flight reviews may take to finish after a shutdown starts. */
  drainTimeoutMs: number;
  /** Readiness goes 503 this long before the listener closes (endpoints catch up meanwhile). */
  shutdownDelayMs: number;
  certPollMs?: number;
}

export interface RunningServer {
  webhook: FastifyInstance;
  health: FastifyInstance;
  metrics: Metrics;
  port: number;
  healthPort: number;
  /** Resolves once everything is closed; idempotent. */
  shutdown(): Promise<void>;
  /** Reads the certificate files now, without waiting for the watch (whoever just wrote them). */
  reloadCertificate(): Promise<void>;
}

/** Watches the certificate files and swaps the serving certificate in place, counted and logged. */
function watchCertificate(options: ServerOptions, webhook: FastifyInstance, metrics: Metrics, tls: KeyPair): CertificateReloader {
  return new CertificateReloader(
    options.certFile,
    options.keyFile,
    tls,
    {
      onReload: (pair, expiresAt) => {
        (webhook.server as HttpsServer).setSecureContext({
          cert: pair.cert,
          key: pair.key,
          minVersion: 'TLSv1.2',
          ...(options.clientCa !== undefined ? { ca: options.clientCa } : {}),
        });
        metrics.certificateExpiry.set(expiresAt.getTime() / 1000);
        metrics.tlsReloads.inc({ result: 'success' });
        webhook.log.info({ certFile: options.certFile, expiresAt }, 'serving certificate reloaded');
      },
      onError: (message) => {
        metrics.tlsReloads.inc({ result: 'failure' });
        webhook.log.warn({ certFile: options.certFile, error: message }, 'serving certificate not reloaded; keeping the previous one');
      },
    },
    options.certPollMs,
  );
}

interface Parts {
  webhook: FastifyInstance;
  health: FastifyInstance;
  state: HealthState;
  reloader: CertificateReloader;
  /** Marks the webhook as draining: each answer then closes its connection. */
  startDraining: () => void;
  stopReducingMemory: () => void;
}

/**
 * The graceful shutdown (idempotent): readiness off, the optional delay for endpoints to catch up,
 * in-flight reviews drained within the timeout, then everything closed.
 */
function shutdownOnce(options: ServerOptions, parts: Parts): () => Promise<void> {
  const { webhook, health, state, reloader } = parts;
  let closing: Promise<void> | undefined;
  return () => {
    closing ??= (async () => {
      state.ready = false;
      parts.startDraining();
      webhook.log.info({ drainTimeoutMs: options.drainTimeoutMs }, 'shutting down: readiness off, draining in-flight reviews');
      if (options.shutdownDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, options.shutdownDelayMs));
      reloader.close();
      parts.stopReducingMemory();
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          webhook.log.warn('drain timeout reached; closing remaining connections');
          (webhook.server as HttpsServer).closeAllConnections();
          resolve();
        }, options.drainTimeoutMs);
      });
      await Promise.race([webhook.close(), deadline]);
      clearTimeout(timer);
      await health.close();
    })();
    return closing;
  };
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const metrics = createMetrics();
  let draining = false;
  const tls = await loadKeyPair(options.certFile, options.keyFile);
  metrics.certificateExpiry.set(expiryOf(tls.cert).getTime() / 1000);
  const webhook = buildWebhookApp({
    config: options.config,
    kubernetesVersion: options.kubernetesVersion,
    tls,
    metrics,
    clientCa: options.clientCa,
    draining: () => draining,
    logger: { level: options.logLevel, redact: ['req.headers.authorization'] },
  });
  const state: HealthState = { ready: false };
  const health = buildHealthApp(state, metrics.registry);
  const reloader = watchCertificate(options, webhook, metrics, tls);
  try {
    await webhook.listen({ host: options.address, port: options.port });
    await health.listen({ host: options.healthAddress, port: options.healthPort });
  } catch (error) {
    reloader.close();
    await Promise.allSettled([webhook.close(), health.close()]);
    throw error;
  }
  state.ready = true;
  const stopReducingMemory = reduceMemoryWhenQuiet(webhook.server);
  return {
    webhook,
    health,
    metrics,
    port: (webhook.server.address() as AddressInfo).port,
    healthPort: (health.server.address() as AddressInfo).port,
    shutdown: shutdownOnce(options, { webhook, health, state, reloader, startDraining: () => (draining = true), stopReducingMemory }),
    reloadCertificate: () => reloader.reload(),
  };
}
