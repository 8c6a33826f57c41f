// The seed's load-balancer example: discover the healthy instances of a service and spread requests
// over them round-robin. Run: node dist/examples/library/load-balancer.js
import { newServiceEntry, newServiceQuery, type DiscoveryApi, type ServiceEntry } from "../../src/index.js";
import { isMain, runExample } from "./run.js";

/** Round-robin over the instances a query returns; re-query to pick up changes. */
export class RoundRobin {
  private next = 0;
  constructor(private readonly instances: readonly ServiceEntry[]) {}
  pick(): ServiceEntry | undefined {
    if (this.instances.length === 0) return undefined;
    return this.instances[this.next++ % this.instances.length];
  }
}

export async function loadBalancerExample(api: DiscoveryApi) {
  for (const [i, node] of ["node-1", "node-2", "node-3"].entries()) {
    await api.registerService({ ...newServiceEntry(`backend-${i + 1}`, "backend", "3.0.0", node, `10.0.3.${10 + i}`, 9000), tags: ["http"] });
  }
  const healthy = await api.discoverServices(newServiceQuery().withName("backend").withHealthStatus("healthy"));
  const balancer = new RoundRobin(healthy);
  const picks = Array.from({ length: 6 }, () => balancer.pick()?.id);
  return { upstreams: healthy.map((s) => `${s.address}:${s.port}`), picks };
}

if (isMain(import.meta.url)) await runExample(loadBalancerExample);
