// The prometheus-community chart's Prometheus server as the node tests run it.
import { SHORT_BLOCKS } from './node.ts';

export interface ChartStatefulSetOptions {
  /** The Prometheus image (a node image). */
  image: string;
  /** Flags that set the block duration (default: SHORT_BLOCKS, blocks every 20 s). */
  blockFlags?: string[];
}

/**
 * The prometheus-community chart's server as a StatefulSet (server.statefulSet.enabled,
 * server.replicaCount=2): its ConfigMap and labels, container names, flags and pod securityContext.
 * Changed for the test node: emptyDir instead of the volumeClaimTemplates (no provisioner here), no
 * config-reloader container (its image is not built here), small requests, Parallel start.
 * `externalLabels`: the `external_labels:` block of its global section, indented, or ''.
 */
export function chartStatefulSet(namespace: string, externalLabels: string, { image, blockFlags = SHORT_BLOCKS }: ChartStatefulSetOptions): string {
  const labels = { 'app.kubernetes.io/component': 'server', 'app.kubernetes.io/name': 'prometheus', 'app.kubernetes.io/instance': 'prometheus' };
  const configMap = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'prometheus-server', namespace, labels },
    data: {
      'prometheus.yml': `global:\n  evaluation_interval: 1m\n  scrape_interval: 5s\n  scrape_timeout: 5s\n${externalLabels}rule_files:\n- /etc/config/recording_rules.yml\nscrape_configs:\n- job_name: prometheus\n  static_configs:\n  - targets:\n    - localhost:9090\n`,
      'recording_rules.yml': '{}\n',
    },
  };
  const statefulSet = {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: 'prometheus-server', namespace, labels },
    spec: {
      serviceName: 'prometheus-server-headless',
      podManagementPolicy: 'Parallel',
      replicas: 2,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          serviceAccountName: 'default',
          containers: [{
            name: 'prometheus-server',
            image,
            imagePullPolicy: 'IfNotPresent',
            args: ['--storage.tsdb.retention.time=15d', '--config.file=/etc/config/prometheus.yml', '--storage.tsdb.path=/data', '--web.enable-lifecycle', ...blockFlags],
            ports: [{ containerPort: 9090 }],
            readinessProbe: { httpGet: { path: '/-/ready', port: 9090, scheme: 'HTTP' }, periodSeconds: 5 },
            resources: { requests: { cpu: '100m', memory: '128Mi' } },
            volumeMounts: [{ name: 'config-volume', mountPath: '/etc/config' }, { name: 'storage-volume', mountPath: '/data', subPath: '' }],
          }],
          securityContext: { fsGroup: 65534, runAsGroup: 65534, runAsNonRoot: true, runAsUser: 65534 },
          terminationGracePeriodSeconds: 30,
          volumes: [{ name: 'config-volume', configMap: { name: 'prometheus-server' } }, { name: 'storage-volume', emptyDir: {} }],
        },
      },
    },
  };
  return `${JSON.stringify(configMap)}\n---\n${JSON.stringify(statefulSet)}\n`;
}
