// The chart's Thanos Query as the node tests read it: through the apiserver's pod proxy.
import type { Cluster } from '../cluster/cluster.ts';
import { waitFor } from './node.ts';

export interface Store { name: string; lastError: string | null; labelSets: Record<string, string>[]; minTime: number; maxTime: number }
export interface Series { metric: Record<string, string>; value?: [number, string]; values?: [number, string][] }

/** The Query pod of the chart in `namespace` (its only pod with component query), once Ready. */
export function queryClient(cluster: Cluster, namespace: string) {
  const queryPod = () => waitFor('the chart\'s Query pod Ready', async () => {
    const pods = (JSON.parse(await cluster.kubectlOk(['-n', namespace, 'get', 'pods', '-l', 'app.kubernetes.io/component=query', '-o', 'json'])) as {
      items: { metadata: { name: string }; status: { conditions?: { type: string; status: string }[] } }[];
    }).items;
    return pods.find((p) => p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))?.metadata.name;
  }, 240_000, 2000);

  /** GET a path of the Query pod's HTTP port, parsed. */
  async function api<T>(path: string): Promise<T> {
    return JSON.parse(await cluster.kubectlOk(['get', '--raw', `/api/v1/namespaces/${namespace}/pods/${await queryPod()}:10902/proxy${path}`])) as T;
  }
  /** The stores Query lists without an error. */
  async function healthyStores(): Promise<Store[]> {
    const stores = await api<{ data: Record<string, Store[]> }>('/api/v1/stores');
    return Object.values(stores.data).flat().filter((s) => s.lastError === null);
  }
  async function instant(query: string, dedup: boolean): Promise<Series[]> {
    const answer = await api<{ status: string; data: { result: Series[] } }>(`/api/v1/query?query=${encodeURIComponent(query)}&dedup=${dedup}`);
    if (answer.status !== 'success') throw new Error(`query ${query}: ${JSON.stringify(answer)}`);
    return answer.data.result;
  }
  return { api, healthyStores, instant };
}
